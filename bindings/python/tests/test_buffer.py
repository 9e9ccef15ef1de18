"""The package's argument buffer (`headway._buffer`) must hand Rust exactly the bytes the
generated builder would, for every kind of argument the API takes, and must refuse to install
over a generated builder that has grown a method it does not know."""

import array
import ctypes
import importlib
import types

import pytest

import headway
from headway import CourseContext, ProgressUpdate, Status, SunbirdServer, _buffer
from headway.headway import headway as generated

BUFFERING = generated._UniffiRustBufferBuilder
ORIGINAL = BUFFERING.generated


def lowered_bytes(converter, value, builder):
    """The bytes `converter` gives Rust for `value` when arguments go through `builder`."""
    saved = generated._UniffiRustBufferBuilder
    generated._UniffiRustBufferBuilder = builder
    try:
        rbuf = converter.lower(value)
    finally:
        generated._UniffiRustBufferBuilder = saved
    try:
        return bytes(rbuf.data[: rbuf.len])
    finally:
        rbuf.free()


ARGUMENTS = [
    (generated._UniffiFfiConverterTypeProgressUpdate,
     ProgressUpdate(user_id="learner-1", course_id="do_course", batch_id="0130",
                    content_id="do_1", status=Status.IN_PROGRESS, progress=50,
                    consumed_at_ms=None)),
    (generated._UniffiFfiConverterTypeProgressUpdate,
     ProgressUpdate(user_id="ученик", course_id="कोर्स" * 40, batch_id="", content_id="do_ü",
                    status=Status.COMPLETED, progress=100,
                    consumed_at_ms=-(2**63))),
    (generated._UniffiFfiConverterTypeCourseContext,
     CourseContext(user_id="learner-1", course_id="do_course", batch_id="0130",
                   batch_status=1)),
    (generated._UniffiFfiConverterTypeSunbirdServer,
     SunbirdServer(base_url="http://127.0.0.1:9", api_key=None, user_token="t" * 1000)),
    (generated._UniffiFfiConverterOptionalString, None),
    (generated._UniffiFfiConverterOptionalString, "since-peer"),
    (generated._UniffiFfiConverterString, ""),
    (generated._UniffiFfiConverterString, "x" * 100_000),
    (generated._UniffiFfiConverterBytes, bytes(range(256)) * 300),
]


def test_the_package_installs_its_buffer_over_the_generated_builder():
    assert BUFFERING is not ORIGINAL
    assert BUFFERING.__name__ == "BufferingBuilder"


@pytest.mark.parametrize("converter,value", ARGUMENTS)
def test_buffered_arguments_are_byte_for_byte_what_the_generated_builder_writes(converter, value):
    fast = lowered_bytes(converter, value, BUFFERING)
    slow = lowered_bytes(converter, value, ORIGINAL)
    assert fast == slow
    assert len(fast) > 0 or value == ""


def test_the_buffer_refuses_a_generated_builder_with_a_writer_it_lacks():
    class NewerBuilder(ORIGINAL):
        def write_i128(self, v):
            raise NotImplementedError

    module = types.SimpleNamespace(_UniffiRustBufferBuilder=NewerBuilder,
                                   _UniffiRustBuffer=generated._UniffiRustBuffer)
    with pytest.raises(ImportError, match="write_i128"):
        _buffer.install(module)
    assert module._UniffiRustBufferBuilder is NewerBuilder


def test_bytes_like_arguments_of_single_bytes_are_written_whole_and_others_refused():
    data = bytearray(b"headway")
    assert lowered_bytes(generated._UniffiFfiConverterBytes, memoryview(data), BUFFERING) == \
        lowered_bytes(generated._UniffiFfiConverterBytes, bytes(data), BUFFERING)
    # Two bytes per item: the length written first would not be its size in bytes.
    with pytest.raises(TypeError, match="single bytes"):
        lowered_bytes(generated._UniffiFfiConverterBytes, array.array("H", [1, 2, 3]), BUFFERING)


def test_a_failure_while_copying_frees_the_rust_buffer(monkeypatch):
    freed = []
    real_free = generated._UniffiRustBuffer.free
    monkeypatch.setattr(generated._UniffiRustBuffer, "free",
                        lambda self: (freed.append(1), real_free(self))[1])

    def failing_memmove(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(ctypes, "memmove", failing_memmove)
    builder = BUFFERING()
    builder.write(b"progress")
    with pytest.raises(KeyboardInterrupt):
        builder.finalize()
    assert freed == [1]


def test_reloading_the_package_keeps_the_generated_builder_as_the_original():
    importlib.reload(headway)
    reloaded = generated._UniffiRustBufferBuilder
    assert reloaded.__name__ == "BufferingBuilder"
    assert reloaded.generated is ORIGINAL
