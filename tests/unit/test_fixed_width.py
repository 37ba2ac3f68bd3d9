"""Rows of SQLite's group commit as fixed-width strings (storage/sqlite/group_commit/), written
by the encoders and read by the statement, both from one layout."""

from __future__ import annotations

import dataclasses
import sqlite3
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hookline.domain import ids
from hookline.domain.models import (
    Attempt,
    AttemptTrigger,
    ClaimedDelivery,
    MessageStatus,
)
from hookline.storage.base import AttemptOutcome
from hookline.storage.sqlite.group_commit import fixed_width, layout
from hookline.storage.sqlite.group_commit.statement import STATEMENTS
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
        ids.DELIVERY: layout.ID,
        ids.APP: layout.ID,
        ids.MESSAGE: layout.ID,
        ids.ENDPOINT: layout.ENDPOINT_ID,
        ids.ATTEMPT: layout.ATTEMPT_ID,
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
    """An attempt row is 193 characters and a finished row 68 plus its lease token, as the
    layout has always placed them (a changed width shows here)."""
    outcome = _outcome()
    assert len(fixed_width.attempt(outcome.attempt, fixed_width.Texts())) == 193
    assert fixed_width.finished(outcome)[68:] == "token-of-any-length"
    assert (layout.ATTEMPT.width, layout.FINISHED.width) == (193, 68)


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


def _read_back(row: layout.FixedWidth, encoded: str, texts: bytes = b"") -> dict[str, Any]:
    """Each field of ``encoded`` as the rendered statement reads it, in SQLite itself."""
    names = [f.name for f in row.fields]
    columns = ", ".join(layout.render(f"{{{row.name}.{name}}}") for name in names)
    conn = sqlite3.connect(":memory:")
    try:
        found = conn.execute(
            f"SELECT {columns} FROM (SELECT :texts AS texts) AS NEW, (SELECT :row AS value)",
            {"texts": texts, "row": encoded},
        ).fetchone()
    finally:
        conn.close()
    return dict(zip(names, found, strict=True))


def test_an_attempt_row_reads_back_field_for_field_through_the_rendered_sql() -> None:
    """Every field the encoder writes is where the statement reads it: an attempt row goes
    through the positions rendered from the layout and comes back whole."""
    record = _outcome(duration_ms=98765, code=503).attempt
    texts = fixed_width.Texts()
    texts.add("an earlier text")
    encoded = fixed_width.attempt(record, texts)
    fields = _read_back(layout.ATTEMPT, encoded, texts.blob())
    assert fields == {
        "id": record.id,
        "app_id": record.app_id,
        "msg_id": record.msg_id,
        "endpoint_id": record.endpoint_id,
        "status": str(int(record.status)),
        "response_status_code": "503",
        "trigger_type": str(int(record.trigger)),
        "created_at": str(int(AT.timestamp() * 1000)),
        "duration_ms": "0000098765",
        "url": record.url.encode(),
        "response": b"nope",
    }


@pytest.mark.parametrize("retry", [True, False])
def test_a_finished_row_reads_back_field_for_field_through_the_rendered_sql(retry: bool) -> None:
    """A finished row comes back whole through the rendered positions; no retry time reads
    back as NULL."""
    outcome = _outcome()
    if not retry:
        outcome = dataclasses.replace(outcome, next_attempt_at=None)
    fields = _read_back(layout.FINISHED, fixed_width.finished(outcome))
    next_at = outcome.next_attempt_at
    assert fields == {
        "id": outcome.claimed.delivery_id,
        "status": str(int(outcome.delivery_status)),
        "attempt_count": "0000000001",
        "now": str(int(AT.timestamp() * 1000)),
        "next_attempt_at": None if next_at is None else str(int(next_at.timestamp() * 1000)),
        "lease_token": "token-of-any-length",
    }


def test_a_delivery_row_reads_back_field_for_field_through_the_rendered_sql() -> None:
    """A delivery row comes back whole through the rendered positions."""
    params = {
        "id": ids.new_id(ids.DELIVERY),
        "app_id": ids.new_id(ids.APP),
        "msg_id": ids.new_id(ids.MESSAGE),
        "endpoint_id": ids.new_id(ids.ENDPOINT),
    }
    assert _read_back(layout.DELIVERY, fixed_width.delivery(params)) == params


def test_a_scheduled_row_reads_back_field_for_field_and_refuses_a_short_time() -> None:
    """A scheduled delivery row (a delivery after its due time) comes back whole through
    the rendered positions; a due time of another width is refused."""
    delivery = {
        "id": ids.new_id(ids.DELIVERY),
        "app_id": ids.new_id(ids.APP),
        "msg_id": ids.new_id(ids.MESSAGE),
        "endpoint_id": ids.new_id(ids.ENDPOINT),
    }
    due = int(AT.timestamp() * 1000)
    encoded = fixed_width.scheduled({**delivery, "due": due})
    assert _read_back(layout.SCHEDULED, encoded) == {"due": str(due), **delivery}
    with pytest.raises(ValueError, match="fixed widths"):
        fixed_width.scheduled({**delivery, "due": 12345})


@pytest.mark.parametrize("key", ["", "customer:42"])
def test_an_ordered_delivery_row_reads_back_field_for_field_through_the_rendered_sql(
    key: str,
) -> None:
    """A delivery in an ordered endpoint's sequence comes back whole with its due time (its
    publish's, or its message's deliverAt) and its ordering key, the empty one included."""
    now = int(AT.timestamp() * 1000)
    params = {
        "id": ids.new_id(ids.DELIVERY),
        "app_id": ids.new_id(ids.APP),
        "msg_id": ids.new_id(ids.MESSAGE),
        "endpoint_id": ids.new_id(ids.ENDPOINT),
        "ordering_key": key,
    }
    encoded = fixed_width.ordered({**params, "now": now})
    assert _read_back(layout.ORDERED, encoded) == {"due": str(now), **params}
    scheduled = fixed_width.ordered({**params, "now": now, "due": now + 5000})
    assert _read_back(layout.ORDERED, scheduled) == {"due": str(now + 5000), **params}


def test_an_ordered_delivery_row_refuses_an_endpoint_id_of_another_width() -> None:
    """The ordering key follows the endpoint id, so that id must have its fixed width."""
    params = {
        "id": ids.new_id(ids.DELIVERY),
        "app_id": ids.new_id(ids.APP),
        "msg_id": ids.new_id(ids.MESSAGE),
        "endpoint_id": ids.new_id(ids.ENDPOINT) + "x",
        "ordering_key": "k",
        "now": int(AT.timestamp() * 1000),
    }
    with pytest.raises(ValueError, match="fixed widths"):
        fixed_width.ordered(params)


def test_positions_are_rendered_from_the_layout() -> None:
    """Placeholders become the positions the layout gives: substr() for fixed widths (NULL
    for zeros where a field is optional), ``->>`` for JSON rows, of ``value`` or an alias."""
    assert layout.render("{attempt.status}") == "substr(value, 126, 1)"
    assert layout.render("{delivery.endpoint_id}") == "substr(value, 94)"
    assert layout.render("{finished.next_attempt_at}") == (
        "nullif(substr(value, 56, 13), '0000000000000')"
    )
    assert layout.render("{attempt.url}") == (
        "substr(NEW.texts, substr(value, 154, 10), substr(value, 164, 10))"
    )
    assert layout.render("x = {c.completion.key}") == "x = c.value ->> 1"


@pytest.mark.parametrize("placeholder", ["{attempt.nope}", "{message.nope}", "{nope.id}"])
def test_a_placeholder_the_layout_does_not_declare_is_refused(placeholder: str) -> None:
    """A statement naming a field no row declares fails when it is rendered, at import."""
    with pytest.raises(KeyError):
        layout.render(placeholder)


def test_the_statements_are_rendered_whole() -> None:
    """No placeholder is left in the SQL the store runs."""
    for text in STATEMENTS.values():
        assert "{" not in text and "}" not in text


def test_only_the_last_field_of_a_row_may_take_the_rest() -> None:
    """A field of any width before others would leave them without a position."""
    with pytest.raises(ValueError, match="last field"):
        layout.FixedWidth("bad", layout.rest("a"), layout.text("b", 3))
