"""Fixtures: `headway serve` started on 127.0.0.1 for the tests, and helpers to set its scene."""

import json
import os
import pathlib
import subprocess
import urllib.request

import pytest

REPO = pathlib.Path(__file__).resolve().parents[3]


def headway_binary() -> str:
    """The `headway` command: $HEADWAY_BIN, else the workspace's debug build."""
    path = os.environ.get("HEADWAY_BIN") or str(REPO / "target" / "debug" / "headway")
    if not os.path.exists(path):
        raise RuntimeError(
            f"no headway binary at {path}: run `cargo build -p headway-cli` or set HEADWAY_BIN"
        )
    return path


class Server:
    """One `headway serve` process on a free port of 127.0.0.1."""

    def __init__(self, *args: str):
        self.process = subprocess.Popen(
            [headway_binary(), "serve", "--addr", "127.0.0.1:0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        line = self.process.stdout.readline()
        if "listening on" not in line:
            self.process.kill()
            raise RuntimeError(f"headway serve did not start: {line!r} {self.process.stderr.read()}")
        self.url = line.strip().rsplit(" ", 1)[-1]

    def admin(self, path: str, body=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + path,
            data=data,
            method="GET" if body is None else "POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            return json.loads(answer.read())

    def course(self, course_id: str, batch_id: str, leaves: list, learner: str):
        """A course with `leaves`, an ongoing batch, and `learner` enrolled in it."""
        self.admin("/admin/course", {"courseId": course_id, "leafNodes": leaves})
        self.admin("/admin/batch", {"batchId": batch_id, "courseId": course_id, "status": 1})
        self.admin("/admin/enrol", {"userId": learner, "courseId": course_id, "batchId": batch_id})

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="module")
def server():
    """`headway serve` with Sunbird's list lag: the enrollment list's progress trails updates."""
    started = Server("--progress-lag-ms", "60000")
    yield started
    started.stop()


@pytest.fixture
def start_server():
    """Starts extra servers (with other flags) for one test; stops them after it."""
    started = []

    def start(*args: str) -> Server:
        started.append(Server(*args))
        return started[-1]

    yield start
    for s in started:
        s.stop()
