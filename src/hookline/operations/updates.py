"""How every update is written: read, apply a pure change, write; again if someone won.

Two clients changing one object at the same time, or a client and the worker (a 410
disables an endpoint), must never lose each other's change, and a client must never get a
2xx for a change that is not in the final state. So an update reads the current object,
applies its change with a pure function, and writes it only if the object has not moved
meanwhile (the store answers None when it has); then it reads and applies again, a bounded
number of times, and finally answers 409 ``concurrent_update``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import fields
from enum import Enum
from typing import TYPE_CHECKING, Any, TypeVar

from hookline.domain.errors import Conflict

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T")

UPDATE_TRIES = 5
"""Reads and writes one update may take before it gives up with a 409."""


class Unset(Enum):
    """A field a partial update leaves alone (as opposed to setting it to None)."""

    UNSET = "unset"


UNSET = Unset.UNSET


async def update_with_retry(
    read: Callable[[], Awaitable[T]],
    apply: Callable[[T], T],
    write: Callable[[T], Awaitable[T | None]],
    *,
    current: T | None = None,
    tries: int = UPDATE_TRIES,
) -> T:
    """Apply ``apply`` to the latest state until a write lands; return what was stored.

    ``read`` raises ``NotFound`` if the object is gone; ``current`` spares the first read
    when the caller has just read the object. ``write`` returns None when the object moved.
    """
    for _ in range(tries):
        if current is None:
            current = await read()
        written = await write(apply(current))
        if written is not None:
            return written
        current = None
    raise Conflict(
        "The object was changed by another request at the same time; retry",
        code="concurrent_update",
    )


def changed_fields(patch: DataclassInstance, required: tuple[str, ...] = ()) -> dict[str, Any]:
    """The fields a partial update sets; a None for a ``required`` field means "keep it".

    Svix's PATCH bodies mark every field nullable, but a name or a URL cannot be removed.
    """
    changes = {
        f.name: getattr(patch, f.name) for f in fields(patch) if getattr(patch, f.name) is not UNSET
    }
    for name in required:
        if name in changes and changes[name] is None:
            del changes[name]
    return changes
