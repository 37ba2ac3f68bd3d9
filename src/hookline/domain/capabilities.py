"""What an application-scoped token may do: Svix's portal capabilities, plus hookline's own.

An admin token may do everything. A token scoped to one application holds a set of
capabilities; each API route declares the one it needs (``Route.capability``) and the
server refuses the call with 403 when the token lacks it. The Svix names are the wire
names of ``AppPortalCapability``; two hookline capabilities cover what Svix's portal
tokens cannot do at all (publish messages, expunge their content) but hookline's
application tokens always could.

Implications follow Svix's descriptions: ``ManageEndpoint`` reads and changes any field
of an endpoint, secrets included; ``ManageEndpointSecret`` rotates *and views* the
secret. ``ViewBase`` is always held. ``readOnly`` keeps only the capabilities that
change nothing, whatever else was asked for, and shows secrets only if
``ViewEndpointSecret`` was named.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum


class Capability(Enum):
    VIEW_BASE = "ViewBase"
    """Read the application, its endpoints (not their secrets or headers), messages, attempts."""
    VIEW_ENDPOINT_SECRET = "ViewEndpointSecret"
    """Read endpoint signing secrets and custom header values."""
    MANAGE_ENDPOINT_SECRET = "ManageEndpointSecret"
    """Rotate endpoint signing secrets (and read them)."""
    MANAGE_TRANSFORMATIONS = "ManageTransformations"
    """Change endpoint transformations (hookline has none yet: their routes answer 501)."""
    CREATE_ATTEMPTS = "CreateAttempts"
    """Resend, replay, recover, redrive, send examples: cause new delivery attempts."""
    MANAGE_ENDPOINT = "ManageEndpoint"
    """Create, change and delete endpoints and their headers; everything about secrets."""
    PUBLISH_MESSAGES = "PublishMessages"
    """hookline: publish messages to the application and expunge their content."""


ALL = frozenset(Capability)
READING = frozenset({Capability.VIEW_BASE, Capability.VIEW_ENDPOINT_SECRET})
"""The capabilities that change nothing: all a ``readOnly`` token keeps."""

_IMPLIES: dict[Capability, frozenset[Capability]] = {
    Capability.MANAGE_ENDPOINT: frozenset(
        {Capability.VIEW_ENDPOINT_SECRET, Capability.MANAGE_ENDPOINT_SECRET}
    ),
    Capability.MANAGE_ENDPOINT_SECRET: frozenset({Capability.VIEW_ENDPOINT_SECRET}),
}


class UnknownCapability(ValueError):
    """A capability name that is neither Svix's nor hookline's."""


def parse(names: Iterable[str]) -> frozenset[Capability]:
    """Capabilities by wire name; ``UnknownCapability`` names the first unknown one."""
    found = set()
    for name in names:
        try:
            found.add(Capability(name))
        except ValueError:
            known = ", ".join(c.value for c in Capability)
            raise UnknownCapability(f"unknown capability {name!r}; known: {known}") from None
    return frozenset(found)


def grant(requested: Iterable[Capability] | None, *, read_only: bool) -> frozenset[Capability]:
    """What a token holds: the requested capabilities (all when none were named, as Svix
    does) with what they imply, and ``ViewBase``. A read-only token keeps ``ViewBase`` and
    only those reading capabilities that were named explicitly: read-only alone shows no
    secret."""
    if read_only:
        return frozenset((set(requested or ()) & READING) | {Capability.VIEW_BASE})
    held = set(ALL if requested is None else requested)
    for capability in list(held):
        held |= _IMPLIES.get(capability, frozenset())
    held.add(Capability.VIEW_BASE)
    return frozenset(held)


def encode(held: frozenset[Capability]) -> str:
    """How a set is stored: sorted wire names, comma-separated."""
    return ",".join(sorted(c.value for c in held))


def decode(text: str | None) -> frozenset[Capability]:
    """A stored set; NULL (tokens stored before capabilities existed) holds them all, as
    those tokens always could do everything in their application."""
    if text is None:
        return ALL
    return frozenset(Capability(name) for name in text.split(",") if name)
