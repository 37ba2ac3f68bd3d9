"""Rows of SQLite's group commit as fixed-width strings (storage/sqlite/fixed_width.py)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from hookline.domain import ids
from hookline.domain.models import (
    Attempt,
    AttemptTrigger,
    ClaimedDelivery,
    MessageStatus,
)
from hookline.storage.base import AttemptOutcome
from hookline.storage.sqlite import fixed_width
from tests.conftest import make_app, make_endpoint, make_message

AT = datetime(2026, 11, 25, 7, 0, 0, 123000, tzinfo=UTC)


def _outcome(duration_ms: int = 12, code: int = 200) -> AttemptOutcome:
    app = make_app()
    app_id = app.id
    endpoint = make_endpoint(app)
    message = make_message(app)
    claimed = ClaimedDelivery(
        delivery_id=ids.new_id(ids.DELIVERY),
        lease_token="token-of-any-length",
        attempt_count=0,
        trigger=AttemptTrigger.SCHEDULED,
        message=message,
        endpoint=endpoint,
    )
    attempt = Attempt(
        id=ids.new_id(ids.ATTEMPT),
        app_id=app_id,
        msg_id=message.id,
        endpoint_id=endpoint.id,
        url=endpoint.url,
        status=MessageStatus.FAIL,
        response_status_code=code,
        response="nope",
        response_duration_ms=duration_ms,
        trigger=AttemptTrigger.SCHEDULED,
        timestamp=AT,
    )
    return AttemptOutcome(
        claimed=claimed,
        attempt=attempt,
        delivery_status=MessageStatus.PENDING,
        next_attempt_at=AT + timedelta(seconds=5),
        scheduled_attempts=1,
        disable_endpoint=False,
    )


def test_ids_a_group_commit_reads_by_position_have_its_fixed_widths() -> None:
    """SQLite's group commit cuts ids out of one string by position, so every id hookline
    mints of those kinds must be exactly as wide as it expects."""
    widths = {
        ids.DELIVERY: fixed_width.ID,
        ids.APP: fixed_width.ID,
        ids.MESSAGE: fixed_width.ID,
        ids.ENDPOINT: fixed_width.ENDPOINT_ID,
        ids.ATTEMPT: fixed_width.ATTEMPT_ID,
    }
    for prefix, width in widths.items():
        assert len(ids.new_id(prefix)) == width
        assert {len(value) for value in ids.new_ids(prefix, 3)} == {width}


def test_a_delivery_record_refuses_an_id_of_another_width() -> None:
    """An id of another width would shift every column after it; it fails the commit."""
    params = {
        "id": ids.new_id(ids.DELIVERY),
        "app_id": ids.new_id(ids.APP) + "x",
        "msg_id": ids.new_id(ids.MESSAGE),
        "endpoint_id": ids.new_id(ids.ENDPOINT),
    }
    with pytest.raises(ValueError, match="fixed widths"):
        fixed_width.delivery(params)
    params["app_id"] = params["app_id"][:-1]
    assert fixed_width.delivery(params).endswith(params["endpoint_id"])


def test_attempt_and_finished_rows_have_their_layouts_lengths() -> None:
    """An attempt row is 193 characters and a finished row 68 plus its lease token, the
    positions queries.sql reads."""
    outcome = _outcome()
    assert len(fixed_width.attempt(outcome.attempt, fixed_width.Texts())) == 193
    assert fixed_width.finished(outcome)[68:] == "token-of-any-length"


@pytest.mark.parametrize(("duration_ms", "code"), [(10**10, 200), (-1, 200), (5, 1000)])
def test_an_attempt_that_does_not_fit_is_refused(duration_ms: int, code: int) -> None:
    """A duration of 11 digits, a negative one or a 4-digit status code is refused, not
    written into the next field."""
    outcome = _outcome(duration_ms, code)
    with pytest.raises(ValueError, match="fixed widths"):
        fixed_width.attempt(outcome.attempt, fixed_width.Texts())


def test_a_finished_row_refuses_a_time_of_another_width() -> None:
    """A retry time before 2001 has fewer than 13 digits; it is refused."""
    outcome = dataclasses.replace(_outcome(), next_attempt_at=datetime(1999, 1, 1, tzinfo=UTC))
    with pytest.raises(ValueError, match="fixed widths"):
        fixed_width.finished(outcome)


def test_texts_store_a_recurring_text_once() -> None:
    """The same text added twice points at the same bytes; the BLOB holds it once."""
    texts = fixed_width.Texts()
    first, other, again = texts.add("é ✓"), texts.add("ok"), texts.add("é ✓")
    assert first == again == "0000000001" + "0000000006"
    assert other == "0000000007" + "0000000002"
    assert texts.blob() == "é ✓ok".encode()
