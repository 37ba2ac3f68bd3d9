"""Svix's routing rules: event-type filters and channels."""

from __future__ import annotations

import pytest

from hookline.domain.routing import endpoint_accepts


@pytest.mark.parametrize(
    ("types", "channels", "event", "msg_channels", "expected"),
    [
        (None, None, "a", None, True),
        ((), None, "a", ("x",), True),
        (("a",), None, "a", None, True),
        (("b",), None, "a", None, False),
        (None, ("eu",), "a", None, False),
        (None, ("eu",), "a", ("us",), False),
        (None, ("eu", "us"), "a", ("us",), True),
        (("a",), ("eu",), "a", ("eu",), True),
        (("b",), ("eu",), "a", ("eu",), False),
        (None, None, "a", ("eu",), True),
    ],
)
def test_endpoint_accepts(
    types: tuple[str, ...] | None,
    channels: tuple[str, ...] | None,
    event: str,
    msg_channels: tuple[str, ...] | None,
    expected: bool,
) -> None:
    """No filter accepts all; a type filter must list the type; channels must overlap."""
    assert endpoint_accepts(types, channels, event, msg_channels) is expected
