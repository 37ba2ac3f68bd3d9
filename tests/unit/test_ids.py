"""Prefixed, time-sortable ids."""

from __future__ import annotations

from datetime import UTC, datetime

from ksuid import KsuidMs

from hookline.domain import ids


def test_ids_have_prefix_and_ksuid_body() -> None:
    """An id is the prefix, an underscore and 27 base62 characters."""
    value = ids.new_id(ids.MESSAGE)
    prefix, _, body = value.partition("_")
    assert prefix == "msg"
    assert len(body) == 27 and body.isalnum()


def test_ids_sort_in_creation_order_even_within_a_millisecond() -> None:
    """Ids made one after another sort strictly increasing as strings."""
    made = [ids.new_id(ids.ATTEMPT) for _ in range(5000)]
    assert made == sorted(made)
    assert len(set(made)) == len(made)


def test_ids_decode_as_millisecond_ksuids() -> None:
    """Our fast encoder writes exactly what svix-ksuid reads back (same bytes, same time)."""
    body = ids.new_id(ids.MESSAGE).removeprefix("msg_")
    parsed = KsuidMs.from_base62(body)
    assert str(parsed) == body
    assert abs((parsed.datetime - datetime.now(UTC)).total_seconds()) < 1
