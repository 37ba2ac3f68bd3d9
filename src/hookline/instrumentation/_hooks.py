"""``Hook`` and ``Instrumentation``: who listens to what, decided once at start.

A consumer that raises must not break delivery or a request, so every call is guarded and
the failure logged; a consumer that needs to do I/O (an operational webhook, a remote
exporter) queues the event and does the work elsewhere, because hooks run inline on the
event loop.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Protocol

from hookline.instrumentation._events import Event

log = logging.getLogger("hookline.instrumentation")


class Hook(Protocol):
    """A consumer of events; ``events`` names the kinds it wants (the others never reach it)."""

    events: frozenset[type[Event]]

    def __call__(self, event: Event) -> None: ...


class Instrumentation:
    """Dispatches each event to the hooks that asked for its kind."""

    __slots__ = ("_by_kind", "_wanted")

    def __init__(self, hooks: Iterable[Hook] = ()) -> None:
        by_kind: dict[type[Event], list[Hook]] = {}
        for hook in hooks:
            for kind in hook.events:
                by_kind.setdefault(kind, []).append(hook)
        self._by_kind: dict[type[Event], Sequence[Hook]] = {
            kind: tuple(found) for kind, found in by_kind.items()
        }
        self._wanted = frozenset(self._by_kind)

    def wants(self, kind: type[Event]) -> bool:
        """Whether any hook listens for ``kind``: ask before building an event."""
        return kind in self._wanted

    def emit(self, event: Event) -> None:
        for hook in self._by_kind.get(type(event), ()):
            try:
                hook(event)
            except Exception:
                log.exception("instrumentation hook %r failed on %s", hook, type(event).__name__)


NO_INSTRUMENTATION = Instrumentation()
"""Listens to nothing: the default of every emitter, and what tests use unless they listen."""
