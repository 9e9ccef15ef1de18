"""A script may end at any moment while headway's threads call into Python (an event
listener, a token provider). CPython ends a thread that asks for the GIL while the interpreter
finalizes with an unwind that aborted the process (`FATAL: exception not rethrown`, exit 134);
the package's `atexit` hook (`headway.shutdown`) stops those calls first. Each script runs
several times because the abort depended on timing (18 runs of 20 aborted before the fix)."""

import os
import subprocess
import sys
import tempfile
import textwrap

import pytest

RUNS = 10

LISTENER_SCRIPT = textwrap.dedent(
    """
    import asyncio, sys, tempfile, time
    import headway
    from headway import ProgressUpdate, Status, Store, SunbirdServer

    class Slow(headway.EventListener):
        def on_event(self, event):
            print("listener called", flush=True)
            time.sleep(0.02)  # releases the GIL mid-call, as a listener doing IO does

    store = Store(tempfile.mkdtemp() + "/phone.db")
    store.subscribe(Slow())
    for i in range(3):
        store.record(ProgressUpdate(user_id="asha", course_id="do_course", batch_id="0130",
                                    content_id=f"do_{i}", status=Status.COMPLETED, progress=100))
    asyncio.run(store.sync("asha", SunbirdServer(base_url=sys.argv[1], user_token="token")))
    print("synced", flush=True)
    # The script ends here, while the sync's events are being delivered.
    """
)

TOKEN_SCRIPT = textwrap.dedent(
    """
    import sys, tempfile, threading, time
    import headway
    from headway import ProgressUpdate, Status, Store, SunbirdServer

    asked = threading.Event()

    class SlowTokens(headway.TokenProvider):
        def token(self, user_id):
            asked.set()
            time.sleep(0.005)  # releases the GIL while headway's thread waits for the token
            return "token"

        def refresh(self, user_id):
            return "token"

    store = Store(tempfile.mkdtemp() + "/phone.db")
    store.record(ProgressUpdate(user_id="asha", course_id="do_course", batch_id="0130",
                                content_id="do_1", status=Status.COMPLETED, progress=100))
    store.start_background_sync("asha", SunbirdServer(base_url=sys.argv[1],
                                                      token_provider=SlowTokens()))
    store.network_up()
    assert asked.wait(10), "the background sync never asked for a token"
    print("provider called", flush=True)
    # The script ends here, while headway's thread is inside the app's token provider.
    """
)


def run_script(script: str, url: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", script, url],
        capture_output=True,
        text=True,
        timeout=60,
        env=os.environ.copy(),
        # Not the tests' folder: `-c` puts the working folder first on the path, and
        # bindings/python/headway (the sources, without the generated module) would shadow
        # the package.
        cwd=tempfile.gettempdir(),
    )


def assert_every_run_exits_cleanly(script: str, url: str, reached: str) -> int:
    """Runs `script` RUNS times; each must exit 0. Returns how many runs printed `reached`."""
    times_reached = 0
    for run in range(RUNS):
        done = run_script(script, url)
        assert done.returncode == 0, (
            f"run {run} exited {done.returncode}: {done.stdout[-500:]} {done.stderr[-1500:]}"
        )
        times_reached += reached in done.stdout
    return times_reached


def test_a_script_ending_while_a_listener_is_called_exits_cleanly(server):
    server.course("do_course", "0130", ["do_0", "do_1", "do_2"], "asha")
    called = assert_every_run_exits_cleanly(LISTENER_SCRIPT, server.url, "listener called")
    # The window the abort needs (a listener running when the script ends) was open.
    assert called > 0, "no run called the listener: the test did not exercise the exit"


def test_a_script_ending_while_a_token_provider_is_called_exits_cleanly(server):
    server.course("do_course", "0130", ["do_0", "do_1", "do_2"], "asha")
    called = assert_every_run_exits_cleanly(TOKEN_SCRIPT, server.url, "provider called")
    assert called == RUNS


def test_shutdown_stops_deliveries_and_local_calls_keep_working(tmp_path):
    script = textwrap.dedent(
        """
        import sys, time
        import headway
        from headway import ProgressUpdate, Status, Store

        heard = []
        class Listener(headway.EventListener):
            def on_event(self, event):
                heard.append(type(event).__name__)

        store = Store(sys.argv[1])
        store.subscribe(Listener())
        update = dict(user_id="asha", course_id="do_course", batch_id="0130", status=Status.COMPLETED,
                      progress=100)
        store.record(ProgressUpdate(content_id="do_1", **update))
        deadline = time.time() + 10
        while not heard and time.time() < deadline:
            time.sleep(0.01)
        assert heard, "the listener never heard the first record"
        headway.shutdown()
        before = len(heard)
        assert store.record(ProgressUpdate(content_id="do_2", **update)) is True
        time.sleep(0.3)
        assert len(heard) == before, f"a listener was called after shutdown: {heard[before:]}"
        assert len(store.pending("asha")) == 2
        print("ok")
        """
    )
    done = run_script(script, str(tmp_path / "store.db"))
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-1500:]


# The script's server: it holds the sync's request and answers it from the last `atexit` hook
# (registered before headway is imported, so it runs after `headway.shutdown`). The sync then
# completes on headway's runtime thread while the interpreter finalizes, and UniFFI wakes the
# awaiting coroutine by calling into Python from that thread.
ASYNC_SYNC_SCRIPT = textwrap.dedent(
    """
    import atexit, socket
    listener = socket.create_server(("127.0.0.1", 0))
    held = []
    def answer():
        for conn in held:
            conn.sendall(b"HTTP/1.1 400 Bad Request\\r\\nContent-Type: application/json\\r\\n"
                         b"Content-Length: 2\\r\\nConnection: close\\r\\n\\r\\n{}")
            conn.close()
    atexit.register(answer)

    import asyncio, tempfile, threading
    import headway
    from headway import ProgressUpdate, Status, Store, SunbirdServer

    store = Store(tempfile.mkdtemp() + "/phone.db")
    store.record(ProgressUpdate(user_id="asha", course_id="do_course", batch_id="0130",
                                content_id="do_1", status=Status.COMPLETED, progress=100))
    url = "http://127.0.0.1:%d" % listener.getsockname()[1]
    def sync():
        asyncio.run(store.sync("asha", SunbirdServer(base_url=url, user_token="token")))
    threading.Thread(target=sync, daemon=True).start()
    conn, _ = listener.accept()
    conn.recv(65536)
    held.append(conn)
    print("request held", flush=True)
    # The script ends here; the sync's answer arrives as the interpreter finalizes.
    """
)


def test_a_script_ending_while_an_async_sync_completes_exits_cleanly():
    # Before the wake-up passed the gate, 15 of 20 runs aborted (exit 134).
    held = assert_every_run_exits_cleanly(ASYNC_SYNC_SCRIPT, "", "request held")
    assert held == RUNS


def test_after_shutdown_a_sync_raises_at_once_and_refresh_answers_the_cached_list(server):
    # The coroutine of a sync started after shutdown could not be woken: it must not hang.
    server.course("do_course", "0130", ["do_1"], "asha")
    script = textwrap.dedent(
        """
        import asyncio, sys, tempfile
        import headway
        from headway import HeadwayError, ProgressUpdate, Status, Store, SunbirdServer

        store = Store(tempfile.mkdtemp() + "/phone.db")
        store.record(ProgressUpdate(user_id="asha", course_id="do_course", batch_id="0130",
                                    content_id="do_1", status=Status.COMPLETED, progress=100))
        server = SunbirdServer(base_url=sys.argv[1], user_token="token")
        headway.shutdown()
        try:
            asyncio.run(asyncio.wait_for(store.sync("asha", server), 10))
            raise SystemExit("a sync after shutdown did not raise")
        except HeadwayError.ServerUnavailable:
            pass
        courses = asyncio.run(asyncio.wait_for(store.refresh_courses("asha", server), 10))
        assert courses == store.courses("asha"), courses
        assert len(store.pending("asha")) == 1
        print("ok")
        """
    )
    done = run_script(script, server.url)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-1500:]


def test_two_listeners_calling_shutdown_at_once_do_not_wait_for_each_other():
    # Before calls waiting in shutdown were parked, both blocked the full 5 s (3 of 3 runs).
    script = textwrap.dedent(
        """
        import tempfile, threading, time
        import headway
        from headway import ProgressUpdate, Status, Store

        both_inside = threading.Barrier(2, timeout=10)
        took = []
        class ShutsDown(headway.EventListener):
            def on_event(self, event):
                both_inside.wait()  # both calls are in flight before either shuts down
                started = time.monotonic()
                headway.shutdown()
                took.append(time.monotonic() - started)

        stores = [Store(tempfile.mkdtemp() + "/phone.db") for _ in range(2)]
        for store in stores:
            store.subscribe(ShutsDown())
        for store in stores:
            store.record(ProgressUpdate(user_id="asha", course_id="do_course", batch_id="0130",
                                        content_id="do_1", status=Status.COMPLETED, progress=100))
        deadline = time.monotonic() + 20
        while len(took) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        print(" ".join(f"{t:.2f}" for t in took))
        """
    )
    done = run_script(script, "")
    assert done.returncode == 0, done.stderr[-1500:]
    took = [float(t) for t in done.stdout.split()]
    assert len(took) == 2, done.stdout
    # Waiting for each other, each waited out shutdown's whole 5 s.
    assert max(took) < 4, f"the shutdowns waited for each other: {took} s"


def test_a_listener_awaiting_a_sync_at_exit_is_woken_and_the_exit_is_not_delayed():
    # shutdown waits for the listener, which ends only once its coroutine is woken: the
    # wake-up passes the gate while shutdown waits (dropping it delayed every exit by 5 s).
    script = textwrap.dedent(
        """
        import atexit, os, socket, time
        server = socket.create_server(("127.0.0.1", 0))
        # Registered before headway is imported: runs after headway.shutdown returned.
        atexit.register(lambda: print("shutdown took %.2f" % (time.monotonic() - exit_started)))
        import asyncio, tempfile, threading
        import headway
        from headway import ProgressUpdate, Status, Store, SunbirdServer

        url = "http://127.0.0.1:%d" % server.getsockname()[1]
        class Syncs(headway.EventListener):
            def __init__(self, store):
                self.store, self.once = store, False
            def on_event(self, event):
                if not self.once:
                    self.once = True
                    asyncio.run(self.store.sync("asha", SunbirdServer(base_url=url,
                                                                      user_token="token")))
                    print("listener's sync ended", flush=True)

        store = Store(tempfile.mkdtemp() + "/phone.db")
        store.subscribe(Syncs(store))
        store.record(ProgressUpdate(user_id="asha", course_id="do_course", batch_id="0130",
                                    content_id="do_1", status=Status.COMPLETED, progress=100))
        conn, _ = server.accept()
        conn.recv(65536)  # the listener's sync is in flight
        def answer_during_shutdown():
            time.sleep(0.3)
            conn.sendall(b"HTTP/1.1 400 Bad Request\\r\\nContent-Type: application/json\\r\\n"
                         b"Content-Length: 2\\r\\nConnection: close\\r\\n\\r\\n{}")
            conn.close()
        threading.Thread(target=answer_during_shutdown, daemon=True).start()
        exit_started = time.monotonic()
        """
    )
    done = run_script(script, "")
    assert done.returncode == 0, done.stderr[-1500:]
    assert "listener's sync ended" in done.stdout, done.stdout + done.stderr[-1500:]
    took = float(done.stdout.split("shutdown took")[1])
    assert took < 4, f"shutdown waited out its 5 s for a listener it did not wake: {took} s"


def test_a_child_forked_while_a_listener_is_called_exits_without_waiting_for_it():
    # Before the gate kept its process id, the child's shutdown waited 5 s (4 of 4 runs).
    script = textwrap.dedent(
        """
        import os, tempfile, threading, time, warnings
        import headway
        from headway import ProgressUpdate, Status, Store

        inside = threading.Event()
        class Slow(headway.EventListener):
            def on_event(self, event):
                inside.set()
                time.sleep(1)

        store = Store(tempfile.mkdtemp() + "/phone.db")
        store.subscribe(Slow())
        store.record(ProgressUpdate(user_id="asha", course_id="do_course", batch_id="0130",
                                    content_id="do_1", status=Status.COMPLETED, progress=100))
        assert inside.wait(10)
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.12: fork with threads
        child = os.fork()
        if child == 0:
            started = time.monotonic()
            headway.shutdown()  # what atexit does when the child ends
            print("child's shutdown took %.2f" % (time.monotonic() - started), flush=True)
            os._exit(0)
        os.waitpid(child, 0)
        """
    )
    done = run_script(script, "")
    assert done.returncode == 0, done.stderr[-1500:]
    took = float(done.stdout.split("took")[1])
    assert took < 4, f"the child waited for its parent's listener: {took} s"


def test_a_script_ending_while_a_listener_waits_in_shutdown_exits_cleanly():
    # The atexit shutdown must wait for a listener parked in its own shutdown: that listener
    # goes on into Python once it returns (2 of 10 runs aborted when it was not waited for).
    script = textwrap.dedent(
        """
        import tempfile, threading, time
        import headway
        from headway import ProgressUpdate, Status, Store

        slow_inside, shutting_down = threading.Event(), threading.Event()
        class Slow(headway.EventListener):
            def on_event(self, event):
                slow_inside.set()
                time.sleep(0.3)
        class ShutsDown(headway.EventListener):
            def on_event(self, event):
                slow_inside.wait(10)
                shutting_down.set()
                headway.shutdown()  # waits for Slow
                time.sleep(0.05)  # goes on after its shutdown returned

        stores = [Store(tempfile.mkdtemp() + "/phone.db") for _ in range(2)]
        stores[0].subscribe(Slow())
        stores[1].subscribe(ShutsDown())
        for store in stores:
            store.record(ProgressUpdate(user_id="asha", course_id="do_course", batch_id="0130",
                                        content_id="do_1", status=Status.COMPLETED, progress=100))
        assert shutting_down.wait(10)
        print("listener in shutdown", flush=True)
        """
    )
    reached = assert_every_run_exits_cleanly(script, "", "listener in shutdown")
    assert reached == RUNS
