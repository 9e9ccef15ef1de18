"""Issue 17 from Python: a refused user token, or one that belongs to another learner, raises
`HeadwayError.CredentialsRefused` (not `ServerUnavailable`: it is not the network) and changes
nothing."""

import asyncio
import time

import pytest

from headway import HeadwayError, ProgressUpdate, Status, Store, SunbirdServer

COURSE, BATCH = "do_fractions", "0130000000000000001"
LEAVES = [f"do_fractions_{i}" for i in range(1, 5)]


def update(user, content):
    return ProgressUpdate(user_id=user, course_id=COURSE, batch_id=BATCH, content_id=content,
                          status=Status.COMPLETED, progress=100, consumed_at_ms=None)


def test_a_refused_token_raises_credentials_refused(start_server, tmp_path):
    # Issue 17, fault 4: a refused token was raised as ServerUnavailable, like a network failure.
    user = f"learner-py-credentials-{time.time_ns()}"
    strict = start_server("--token", f"good-token={user}")
    strict.course(COURSE, BATCH, LEAVES, user)
    phone = Store(str(tmp_path / "phone.db"))
    phone.record(update(user, LEAVES[0]))
    bad = SunbirdServer(base_url=strict.url, api_key=None, user_token="expired-token")
    with pytest.raises(HeadwayError.CredentialsRefused) as refused:
        asyncio.run(phone.sync(user, bad))
    assert not isinstance(refused.value, HeadwayError.ServerUnavailable)
    assert "expired-token" not in str(refused.value)
    with pytest.raises(HeadwayError.CredentialsRefused):
        asyncio.run(phone.refresh_courses(user, bad))
    assert len(phone.pending(user)) == 1


def test_another_learners_token_raises_credentials_refused_and_changes_nothing(start_server,
                                                                               tmp_path):
    # Issue 17, fault 1: with another learner's token, their progress became this learner's.
    asha, bob = f"asha-{time.time_ns()}", f"bob-{time.time_ns()}"
    strict = start_server("--token", f"asha-token={asha}", "--token", f"bob-token={bob}")
    strict.course(COURSE, BATCH, LEAVES, asha)
    strict.course(COURSE, BATCH, LEAVES, bob)
    ashas = Store(str(tmp_path / "asha.db"))
    ashas.record(update(asha, LEAVES[0]))
    as_asha = SunbirdServer(base_url=strict.url, api_key=None, user_token="asha-token")
    assert asyncio.run(ashas.sync(asha, as_asha)).acknowledged == 1
    tablet = Store(str(tmp_path / "bob.db"))
    with pytest.raises(HeadwayError.CredentialsRefused):
        asyncio.run(tablet.refresh_courses(bob, as_asha))
    assert tablet.courses(bob) == []
    assert tablet.pending(bob) == []
