"""Which endpoints receive a message: Svix's event-type and channel filter rules."""

from __future__ import annotations

from collections.abc import Collection


def endpoint_accepts(
    endpoint_event_types: Collection[str] | None,
    endpoint_channels: Collection[str] | None,
    event_type: str,
    message_channels: Collection[str] | None,
) -> bool:
    """No event-type filter accepts every type; an endpoint with channels needs a shared one.

    An endpoint without channels receives every message, with or without channels, as in
    Svix. Disabled endpoints are excluded by the caller.
    """
    if endpoint_event_types and event_type not in endpoint_event_types:
        return False
    if endpoint_channels:
        return any(c in endpoint_channels for c in message_channels or ())
    return True
