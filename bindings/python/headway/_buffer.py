"""A faster argument buffer for the generated bindings.

UniFFI's generated Python serializes every record or string argument into a Rust-owned
buffer, growing it through the FFI as it goes: a `ProgressUpdate` costs one allocation and
three `reserve` calls into Rust, and a context manager, a `struct.pack` and a `memmove` per
field. `BufferingBuilder` writes the same bytes into a Python `bytearray` and hands them to
Rust in one allocation and one copy. The bytes are identical (the tests compare both
builders on every argument type the API has), so nothing on the Rust side changes.
"""

import ctypes
import struct

# The fixed-size writers of the generated builder and the `struct` format of each.
_FORMATS = {
    "write_i8": ">b", "write_u8": ">B", "write_i16": ">h", "write_u16": ">H",
    "write_i32": ">i", "write_u32": ">I", "write_i64": ">q", "write_u64": ">Q",
    "write_float": ">f", "write_double": ">d", "write_c_size_t": "@N",
}


def _writer(pack):
    def write_packed(self, v):
        self._bytes += pack(v)

    return write_packed


def make_builder(rust_buffer):
    """A drop-in for the generated `_UniffiRustBufferBuilder`, allocating `rust_buffer`s."""

    class BufferingBuilder:
        __slots__ = ("_bytes",)

        def __init__(self):
            self._bytes = bytearray()

        def finalize(self):
            data, self._bytes = self._bytes, None
            size = len(data)
            rbuf = rust_buffer.alloc(size)
            try:
                if size:
                    ctypes.memmove(rbuf.data, (ctypes.c_char * size).from_buffer(data), size)
                rbuf.len = size
            except BaseException:
                # Until it is returned, the Rust buffer is only ours: free it on the way out.
                rbuf.free()
                raise
            return rbuf

        def discard(self):
            self._bytes = None

        def write(self, value):
            # The caller wrote `len(value)` as the length: for an object whose items are not
            # single bytes (array('H'), a cast memoryview) that is not its size in bytes.
            if not isinstance(value, bytes) and memoryview(value).nbytes != len(value):
                raise TypeError(f"a bytes-like object of single bytes is needed, not {value!r}")
            self._bytes += value

    for name, fmt in _FORMATS.items():
        setattr(BufferingBuilder, name, _writer(struct.Struct(fmt).pack))
    return BufferingBuilder


def writer_methods(cls):
    """The public writing methods of a builder class (`write`, `write_i32`, ...)."""
    return sorted(name for name in dir(cls) if name == "write" or name.startswith("write_"))


def install(generated):
    """Makes the generated module serialize arguments through `BufferingBuilder`.

    Refuses (ImportError) when the generated builder has a writing method this one lacks,
    so a newer UniFFI cannot silently bypass or break it.
    """
    original = generated._UniffiRustBufferBuilder
    # Installed already (the package reloaded): keep the generated builder as the original.
    original = getattr(original, "generated", original)
    buffering = make_builder(generated._UniffiRustBuffer)
    missing = set(writer_methods(original)) - set(writer_methods(buffering))
    if missing:
        raise ImportError(f"headway's argument buffer lacks {sorted(missing)}: update _buffer.py")
    buffering.generated = original
    generated._UniffiRustBufferBuilder = buffering
