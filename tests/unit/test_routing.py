"""Svix's routing rules: event-type filters and channels."""

from __future__ import annotations

import pytest

from hookline.domain.routing import endpoint_accepts

Names = tuple[str, ...] | None


@pytest.mark.parametrize(
    ("types", "event", "expected"),
    [
        (None, "invoice.paid", True),
        ((), "invoice.paid", True),
        (("invoice.paid",), "invoice.paid", True),
        (("invoice.paid", "user.created"), "user.created", True),
        (("user.created",), "invoice.paid", False),
        (("invoice.paid",), "Invoice.Paid", False),
        (("invoice",), "invoice.paid", False),
    ],
)
def test_event_type_filter(types: Names, event: str, expected: bool) -> None:
    """No filter (None or empty) accepts every type; a filter must list the exact type."""
    assert endpoint_accepts(types, None, event, None) is expected


@pytest.mark.parametrize(
    ("channels", "msg_channels", "expected"),
    [
        (None, None, True),
        (None, ("eu",), True),
        ((), ("eu",), True),
        ((), None, True),
        (("eu",), None, False),
        (("eu",), (), False),
        (("eu",), ("us",), False),
        (("eu", "us"), ("us",), True),
        (("eu",), ("us", "eu"), True),
    ],
)
def test_channel_filter(channels: Names, msg_channels: Names, expected: bool) -> None:
    """An endpoint without channels gets every message; with channels it needs a shared one."""
    assert endpoint_accepts(None, channels, "a", msg_channels) is expected


@pytest.mark.parametrize(
    ("types", "channels", "msg_channels", "expected"),
    [
        (("a",), ("eu",), ("eu",), True),
        (("b",), ("eu",), ("eu",), False),
        (("a",), ("eu",), ("us",), False),
    ],
)
def test_both_filters_must_pass(
    types: Names, channels: Names, msg_channels: Names, expected: bool
) -> None:
    """A message must pass the event-type filter and the channel filter together."""
    assert endpoint_accepts(types, channels, "a", msg_channels) is expected


def test_any_collection_works() -> None:
    """Sets and lists are accepted as well as tuples."""
    assert endpoint_accepts({"a", "b"}, ["eu"], "a", frozenset({"eu"}))
