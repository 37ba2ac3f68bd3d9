"""How a write the database refused reads to a client, worded once for both dialects.

Each connector translates its driver's unique violation into ``Conflict`` here, from a
driver-neutral signal: the name of what refused the write (PostgreSQL's constraint name,
SQLite's ``table.column`` list). Wording that depends on the operation (an event type's
name, a message's eventId) is the repository's or the batch writer's, over these.
"""

from __future__ import annotations

from hookline.domain.errors import Conflict


def unique_violation(refused_by: str) -> Conflict:
    """The conflict for a row that clashes with a stored one on ``refused_by``."""
    if "uid" in refused_by:
        return Conflict("An object with this uid already exists")
    return Conflict("The object conflicts with an existing one")


def duplicate_event_id() -> Conflict:
    """The conflict for a publish whose eventId its application already holds."""
    return Conflict(
        "A message with this eventId already exists in this application", code="conflict"
    )
