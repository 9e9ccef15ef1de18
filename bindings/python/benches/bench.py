"""The Python side of `bindings/bench`: `record` (ProcessCrash durability) and `state` of
10,000 items called from Python, and the resident memory of this process holding the open
store. Prints `name value` lines."""

import os
import subprocess
import sys
import tempfile
import time


def rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def main():
    if len(sys.argv) > 2 and sys.argv[1] == "hold":
        return hold(sys.argv[2])
    items = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    import headway

    with tempfile.TemporaryDirectory() as tmp:
        # The baseline first: UniFFI's own argument builder, which the package replaces.
        generated = headway._generated
        buffering = generated._UniffiRustBufferBuilder
        generated._UniffiRustBufferBuilder = buffering.generated
        record_generated = record_all(headway, os.path.join(tmp, "generated.db"), items)
        generated._UniffiRustBufferBuilder = buffering
        store, record = None, record_all(headway, os.path.join(tmp, "python.db"), items)
        store = headway.Store(os.path.join(tmp, "python.db"))
        started = time.perf_counter()
        read = store.state("learner-bench", None)
        state_ms = (time.perf_counter() - started) * 1e3
        assert len(read) == items
        del store, read
        # A fresh process that opens the 10,000-item store and holds it, as an app would.
        held = subprocess.run([sys.executable, __file__, "hold", os.path.join(tmp, "python.db")],
                              check=True, capture_output=True, text=True).stdout
        print(f"python_record_per_s {record:.0f}")
        print(f"python_record_generated_builder_per_s {record_generated:.0f}")
        print(f"python_state_ms {state_ms:.2f}")
        print(held, end="")


def record_all(headway, path, items):
    """Records `items` distinct contents in a new store at `path`; returns records per second."""
    store = headway.Store(path, headway.Durability.PROCESS_CRASH)
    started = time.perf_counter()
    for i in range(items):
        store.record(headway.ProgressUpdate(
            user_id="learner-bench", course_id="do_course", batch_id="0130",
            content_id=f"do_{i}", status=headway.Status.IN_PROGRESS, progress=50,
            consumed_at_ms=None))
    return items / (time.perf_counter() - started)


def hold(path):
    """Opens the store, reads it once, and reports this process's resident memory."""
    import headway

    baseline = rss_kib()
    store = headway.Store(path)
    assert len(store.pending("learner-bench")) > 0
    print(f"python_rss_baseline_kib {baseline}")
    print(f"python_rss_open_store_kib {rss_kib()}")
    del store


if __name__ == "__main__":
    main()
