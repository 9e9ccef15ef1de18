"""The design note's scenario, from Python, against `headway serve` on 127.0.0.1: a learner's
phone records progress offline, its course list moves offline, a stale update rolls nothing
back, one bulk sync sends everything, the tablet's refresh sees it, events reach the listener,
two devices converge through a file, and bad input or a damaged file raise typed errors that
change nothing."""

import asyncio
import itertools
import json
import socket
import threading
import time

import pytest

import headway
from headway import (
    CourseContext,
    HeadwayError,
    ProgressUpdate,
    Status,
    Store,
    SunbirdServer,
)

_ids = itertools.count()


def learner() -> str:
    """A learner no other test uses (the server is shared by the module)."""
    return f"learner-py-{next(_ids)}-{time.time_ns()}"


def update(user, content, status=Status.COMPLETED, progress=100, at=None, course="do_fractions",
           batch="0130000000000000001"):
    return ProgressUpdate(user_id=user, course_id=course, batch_id=batch, content_id=content,
                          status=status, progress=progress, consumed_at_ms=at)


def end_event(user, content):
    """A content player END event of a video watched to the end, as Sunbird's player sends it."""
    return json.dumps({
        "eid": "END", "ets": int(time.time() * 1000), "ver": "3.0",
        "actor": {"id": user, "type": "User"},
        "context": {"channel": "ORG_001", "env": "contentplayer",
                    "pdata": {"id": "prod.sunbird.app", "pid": "sunbird.app.contentplayer"}},
        "object": {"id": content, "type": "Content"},
        "edata": {"type": "content", "mode": "play", "summary": [
            {"progress": 100}, {"totallength": 312}, {"visitedlength": 312},
            {"visitedcontentend": True}]},
    })


def unreachable() -> SunbirdServer:
    """A server address nothing listens on: the phone is offline."""
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return SunbirdServer(base_url=f"http://127.0.0.1:{port}", api_key=None, user_token=None)


class Listener(headway.EventListener):
    """Collects events with the thread each arrived on."""

    def __init__(self):
        self.events = []
        self.threads = set()
        self.lock = threading.Lock()

    def on_event(self, event):
        with self.lock:
            self.events.append(event)
            self.threads.add(threading.get_ident())

    def wait_for(self, predicate, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                found = [e for e in self.events if predicate(e)]
            if found:
                return found
            time.sleep(0.02)
        raise AssertionError(f"no matching event within {timeout}s; got {self.events}")


LEAVES = [f"do_fractions_{i}" for i in range(1, 11)]


@pytest.fixture
def scene(server, tmp_path):
    """One learner enrolled in a 10-content course; a phone and a tablet (two store files)."""
    user = learner()
    server.course("do_fractions", "0130000000000000001", LEAVES, user)
    online = SunbirdServer(base_url=server.url, api_key=None, user_token="token")
    phone = Store(str(tmp_path / "phone.db"))
    tablet = Store(str(tmp_path / "tablet.db"))
    return user, online, phone, tablet


def test_the_scenario_end_to_end_from_python(server, scene):
    user, online, phone, tablet = scene
    listener = Listener()
    phone.subscribe(listener)

    # Online once: the phone caches the learner's courses.
    courses = asyncio.run(phone.refresh_courses(user, online))
    assert [(c.course_id, c.completion_percentage) for c in courses] == [("do_fractions", 0)]

    # Offline: five contents finished, and the player's END event for a sixth.
    for content in LEAVES[:5]:
        assert phone.record(update(user, content)) is True
    context = CourseContext(user_id=user, course_id="do_fractions",
                            batch_id="0130000000000000001", batch_status=1, mime_type="video/mp4")
    played = phone.record_player_event(end_event(user, LEAVES[5]), context)
    assert played is not None and played.status == Status.COMPLETED and played.progress == 100

    # The offline course list moves; a refresh that cannot reach the server answers from it.
    assert [(c.completion_percentage, c.progress) for c in phone.courses(user)] == [(60, 6)]
    offline = asyncio.run(phone.refresh_courses(user, unreachable()))
    assert [c.completion_percentage for c in offline] == [60]
    with pytest.raises(HeadwayError.ServerUnavailable):
        asyncio.run(phone.sync(user, unreachable()))
    assert len(phone.pending(user)) == 6

    # A stale update from an earlier session rolls nothing back.
    an_hour_ago = int(time.time() * 1000) - 3_600_000
    before = phone.state(user, None)
    assert phone.record(update(user, LEAVES[0], Status.IN_PROGRESS, 10, at=an_hour_ago)) is False
    assert phone.state(user, None) == before

    # Back online: one bulk request carries all six.
    stats_before = server.admin("/admin/stats")
    report = asyncio.run(phone.sync(user, online))
    stats_after = server.admin("/admin/stats")
    assert (report.sent, report.acknowledged, report.retrying, report.rejected) == (6, 6, 0, [])
    assert report.requests < report.sent
    sent_requests = stats_after["updateRequests"] - stats_before["updateRequests"]
    assert sent_requests == report.requests
    assert phone.pending(user) == []

    # The tablet refreshes: the server's own list still lags, but the tablet reads the content
    # states and shows the progress.
    listed = asyncio.run(tablet.refresh_courses(user, online))
    assert [(c.course_id, c.completion_percentage) for c in listed] == [("do_fractions", 60)]
    assert {(i.content_id, i.status) for i in tablet.state(user, "do_fractions")} == {
        (c, Status.COMPLETED) for c in LEAVES[:6]}

    # The listener heard it all, on headway's thread, not the caller's.
    changed = listener.wait_for(lambda e: e.is_content_state_changed())
    assert {e.after.content_id for e in changed} >= set(LEAVES[:6])
    moved = listener.wait_for(lambda e: e.is_course_progress_changed())
    assert moved[-1].new_percentage == 60
    finished = listener.wait_for(lambda e: e.is_sync_finished())
    assert finished[-1].report.acknowledged == 6
    failed = listener.wait_for(lambda e: e.is_sync_failed())
    assert failed[0].user_id == user and failed[0].pending == 6
    assert threading.get_ident() not in listener.threads


def test_devices_converge_through_a_peer_file(scene):
    user, _, phone, tablet = scene
    phone.record(update(user, LEAVES[0]))
    phone.record(update(user, LEAVES[1], Status.IN_PROGRESS, 40))
    tablet.record(update(user, LEAVES[1], Status.IN_PROGRESS, 70))
    tablet.record(update(user, LEAVES[2], Status.IN_PROGRESS, 5))

    # Phone -> tablet raises two items (content 1 is new, content 2's 40 is below 70).
    assert tablet.peer_import(user, phone.peer_export(user, None)) == 1
    # Tablet -> phone, only what the phone lacks: content 2 at 70 and content 3.
    back = tablet.peer_export(user, phone.device_id())
    assert phone.peer_import(user, back) == 2
    assert phone.state(user, None) == tablet.state(user, None)
    progress = {i.content_id: i.progress for i in phone.state(user, None)}
    assert progress == {LEAVES[0]: 100, LEAVES[1]: 70, LEAVES[2]: 5}
    # Importing the same file again raises nothing.
    assert phone.peer_import(user, back) == 0


def pair(path, user):
    """A pairing key for `user` at `path`, made by `headway peer pair`."""
    import subprocess
    from conftest import headway_binary
    subprocess.run([headway_binary(), "peer", "pair", "--user", user, "--out", str(path)],
                   check=True, capture_output=True)
    return str(path)


# Issue 17, fault 5: a sealed peer file opens only with its pairing key, passed as the
# trailing optional `key` (calls without it keep working).
def test_a_sealed_peer_file_opens_only_with_its_key(scene, tmp_path):
    user, _, phone, tablet = scene
    key, other = pair(tmp_path / "k.key", user), pair(tmp_path / "o.key", user)
    phone.record(update(user, LEAVES[0]))
    sealed = phone.peer_export(user, None, key)
    tampered = bytearray(sealed)
    tampered[-1] ^= 1
    for data, key in [(sealed, None), (sealed, other), (bytes(tampered), key)]:
        with pytest.raises(HeadwayError.NotPaired):
            tablet.peer_import(user, data, key)
    with pytest.raises(HeadwayError.InvalidInput):
        tablet.peer_import(user, sealed, key=str(tmp_path / "missing.key"))
    assert tablet.state(user, None) == []
    assert tablet.peer_import(user, sealed, key=key) == 1
    assert tablet.state(user, None) == phone.state(user, None)


def test_bad_input_raises_the_typed_error_and_changes_nothing(scene):
    user, _, phone, _ = scene
    phone.record(update(user, LEAVES[0], Status.IN_PROGRESS, 30))
    before = (phone.state(user, None), phone.pending(user))
    tomorrow_and_more = int(time.time() * 1000) + 3 * 86_400_000
    refused = [
        update(user, LEAVES[0], Status.IN_PROGRESS, 101),
        update(user, "", Status.COMPLETED, 100),
        update(user, "do_\u0007bell", Status.COMPLETED, 100),
        update("x" * 300, LEAVES[0], Status.COMPLETED, 100),
        update(user, LEAVES[0], Status.COMPLETED, 100, at=tomorrow_and_more),
        update(user, LEAVES[0], Status.COMPLETED, 100, at=0),
    ]
    for bad in refused:
        with pytest.raises(HeadwayError.InvalidInput):
            phone.record(bad)
    context = CourseContext(user_id=user, course_id="do_fractions",
                            batch_id="0130000000000000001", batch_status=1)
    with pytest.raises(HeadwayError.InvalidInput):
        phone.record_player_event("{not json", context)
    with pytest.raises(HeadwayError.RefusedPeerData):
        phone.peer_import(user, b"\x00\x00\x00\x05hello")
    with pytest.raises(HeadwayError.InvalidInput):
        asyncio.run(phone.sync(user, SunbirdServer(base_url="ftp://nowhere", api_key=None,
                                                   user_token=None)))
    assert (phone.state(user, None), phone.pending(user)) == before


def test_a_corrupt_file_raises_the_typed_error_and_is_left_untouched(tmp_path):
    damaged = tmp_path / "damaged.db"
    garbage = b"this is not a headway store\n" * 200
    damaged.write_bytes(garbage)
    with pytest.raises(HeadwayError.CorruptStore):
        Store(str(damaged))
    assert damaged.read_bytes() == garbage

    # A real store whose pages were overwritten past the header.
    store_path = tmp_path / "store.db"
    store = Store(str(store_path))
    user = learner()
    for i in range(200):
        store.record(update(user, f"do_{i}", Status.IN_PROGRESS, 50))
    del store
    data = bytearray(store_path.read_bytes())
    for offset in range(4096, len(data), 97):
        data[offset] = 0xA5
    store_path.write_bytes(bytes(data))
    for name in ("store.db-wal", "store.db-shm"):
        (tmp_path / name).unlink(missing_ok=True)
    with pytest.raises(HeadwayError.CorruptStore):
        reopened = Store(str(store_path))
        reopened.state(user, None)


def test_background_sync_sends_after_a_record_and_on_network_up(scene):
    user, online, phone, _ = scene
    phone.start_background_sync(user, online)
    phone.record(update(user, LEAVES[3]))
    phone.network_up()
    phone.app_resumed()
    deadline = time.monotonic() + 15
    while phone.pending(user) and time.monotonic() < deadline:
        time.sleep(0.05)
    phone.stop_background_sync()
    assert phone.pending(user) == []


def test_a_refused_token_is_refreshed_through_the_apps_token_provider(start_server, tmp_path):
    user = learner()
    strict = start_server("--token", f"fresh-token={user}")
    strict.course("do_fractions", "0130000000000000001", LEAVES, user)

    class Tokens(headway.TokenProvider):
        def __init__(self):
            self.refreshed = 0

        def token(self, user_id):
            return "expired-token"

        def refresh(self, user_id):
            self.refreshed += 1
            return "fresh-token"

    tokens = Tokens()
    phone = Store(str(tmp_path / "phone.db"))
    phone.record(update(user, LEAVES[0]))
    server = SunbirdServer(base_url=strict.url, api_key=None, user_token=None,
                           token_provider=tokens)
    report = asyncio.run(phone.sync(user, server))
    assert (report.acknowledged, tokens.refreshed) == (1, 1)
    assert phone.pending(user) == []
