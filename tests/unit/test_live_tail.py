"""The live tail's cursor: each attempt shown once, however often the lag window re-reads
it, and the outcome filters."""

from __future__ import annotations

from datetime import UTC, datetime

from hookline.domain import ids
from hookline.domain.models import Attempt, AttemptTrigger, MessageStatus
from hookline.operations.live_tail import Cursor

NOW = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)


def _attempt(code: int, response: str = "") -> Attempt:
    return Attempt(
        id=ids.new_id(ids.ATTEMPT),
        app_id="app_1",
        msg_id="msg_1",
        endpoint_id="ep_1",
        url="https://example.com/",
        status=MessageStatus.SUCCESS if code == 200 else MessageStatus.FAIL,
        response_status_code=code,
        response=response,
        response_duration_ms=5,
        trigger=AttemptTrigger.SCHEDULED,
        timestamp=NOW,
    )


def test_an_attempt_read_again_within_the_lag_is_shown_once_and_a_late_one_still_is() -> None:
    """A re-read returns what was shown and a late commit with an older id: only the late
    one is new, and the cursor stays at the newest id."""
    early, late_minted, newest = _attempt(200), _attempt(200), _attempt(500)
    cursor = Cursor("atmpt_0")
    assert cursor.take([early, newest]) == [early, newest]
    assert cursor.take([early, late_minted, newest]) == [late_minted]
    assert cursor.after == newest.id
    assert cursor.take([early, late_minted, newest]) == []


def test_the_outcome_filter_keeps_successes_failures_or_one_class() -> None:
    """``success`` is a 2xx, ``failure`` anything else, and a class name matches
    ``domain/rollups.outcome_class`` (a timeout has no status code)."""
    ok, server_error, timeout = _attempt(200), _attempt(503), _attempt(0, "timeout after 15 s")
    found = [ok, server_error, timeout]
    assert Cursor("atmpt_0", outcome="success").take(found) == [ok]
    assert Cursor("atmpt_0", outcome="failure").take(found) == [server_error, timeout]
    assert Cursor("atmpt_0", outcome="5xx").take(found) == [server_error]
    assert Cursor("atmpt_0", outcome="timeout").take(found) == [timeout]


def test_a_new_tail_starts_at_the_first_id_of_its_moment() -> None:
    """Attempts minted before the tail opened sort below its cursor."""
    cursor = Cursor.starting(NOW, None, None)
    assert cursor.after == ids.first_id_at(ids.ATTEMPT, int(NOW.timestamp() * 1000))
