"""Prefixed, time-sortable ids."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hookline.domain import ids


def test_ids_have_prefix_and_ksuid_body() -> None:
    """An id is the prefix, an underscore and 27 base62 characters."""
    value = ids.new_id(ids.MESSAGE)
    assert value.startswith("msg_") and len(value) == 4 + 27
    assert ids.looks_like_id("msg", value)
    assert not ids.looks_like_id("ep", value)
    assert not ids.looks_like_id("msg", "msg_short")


def test_ids_sort_in_creation_order_even_within_a_millisecond() -> None:
    """Ids made one after another sort strictly increasing as strings."""
    made = [ids.new_id(ids.ATTEMPT) for _ in range(5000)]
    assert made == sorted(made)
    assert len(set(made)) == len(made)


def test_id_timestamp_and_floor_bracket_creation_time() -> None:
    """An id's timestamp is its creation time, and the floor of that time sorts before it."""
    before = datetime.now(UTC) - timedelta(milliseconds=5)
    value = ids.new_id(ids.APP)
    stamp = ids.id_timestamp(value)
    assert abs((stamp - datetime.now(UTC)).total_seconds()) < 1
    assert ids.id_floor(ids.APP, before) < value
    assert ids.id_floor(ids.APP, datetime.now(UTC) + timedelta(seconds=1)) > value


def test_ids_decode_as_millisecond_ksuids() -> None:
    """Our fast encoder writes exactly what svix-ksuid reads back (same bytes, same time)."""
    from ksuid import KsuidMs

    value = ids.new_id(ids.MESSAGE)
    body = value.removeprefix("msg_")
    parsed = KsuidMs.from_base62(body)
    assert str(parsed) == body
    assert abs((parsed.datetime - datetime.now(UTC)).total_seconds()) < 1
