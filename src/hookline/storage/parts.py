"""The parts a dialect supplies to the repository (``repository.py``), and nothing more.

A dialect is four objects: a ``Connector`` (its driver), a ``BatchWriter`` (how the group
commit's batches and the worker's attempt records reach it), a ``Claimer`` (how due
deliveries are leased) and a ``Pruner`` (how rows past the retention horizon go, and the
space they leave is reused). Each is small enough to read in one sitting; what they share is
the repository's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from hookline.storage import sql
from hookline.storage.base import AttemptOutcome, EndpointChanged, PruneBatch
from hookline.storage.group_commit import GroupCommit, PendingPublish, Routed
from hookline.storage.handoff import DeliveryRows

Leased = tuple[list[Any], list[Any], list[Any]]
"""A claim's leased delivery rows, and the rows of their messages and endpoints."""
NOTHING: Leased = ([], [], [])


class Connector(Protocol):
    """A dialect's database: named queries (``:name`` parameters) and writes, each write in
    its own transaction; driver errors come out as ``Conflict`` or ``Unavailable``.

    A transaction with Python between its statements belongs to a dialect's part, not to
    the repository: PostgreSQL's connector has ``transaction()``, SQLite's runs such work
    whole on its connection's thread (``run``), since across awaits it would hold the
    file's write lock through event-loop turns."""

    dialect: sql.Dialect

    @property
    def queries(self) -> Mapping[str, str]:
        """The dialect's named SQL, shared and its own (``queries.py``)."""
        ...

    async def open(self) -> None: ...
    async def migrate(self) -> list[int]: ...
    async def close(self) -> None: ...
    async def query(self, name_or_sql: str, params: dict[str, Any]) -> list[Any]: ...
    async def execute(self, name: str, params: dict[str, Any]) -> int:
        """One statement; the rows it changed."""
        ...

    async def execute_many(self, name: str, params: Sequence[dict[str, Any]]) -> None:
        """One statement per parameter set, all in one transaction."""
        ...

    async def script(self, name: str, params: dict[str, Any]) -> None:
        """A ``;``-separated block of statements in one transaction."""
        ...

    async def write_returning(
        self, name: str, params: Sequence[dict[str, Any]], *, durable: bool = True
    ) -> list[list[Any]]:
        """One writing statement per parameter set, and the rows each returned. Each holds
        its row locks no longer than it must (its own commit where the dialect has row
        locks), so workers contending for one row wait for a statement, not a batch. Not
        ``durable``: a power cut may lose the write (SQLite skips the fsync), never a
        killed process."""
        ...

    async def listen(
        self, wake: Callable[[], None], endpoint_changed: EndpointChanged | None
    ) -> None: ...


class BatchWriter(Protocol):
    """How a dialect writes what the group commit gathered (``group_commit.py``)."""

    async def write(
        self,
        batch: Sequence[PendingPublish],
        deliveries: DeliveryRows,
        outcomes: Sequence[AttemptOutcome],
    ) -> list[Routed | Exception]:
        """A batch of publishes, and the attempt records ``complete`` gave ``group``; per
        request, what it was routed to or why it failed."""
        ...

    async def complete(self, outcomes: Sequence[AttemptOutcome], group: GroupCommit) -> None:
        """Record attempt outcomes: in the group's next commit, or on their own."""
        ...


class Claimer(Protocol):
    async def lease(self, params: dict[str, Any]) -> Leased:
        """Lease due deliveries as ``rows.claim_params`` and ``busy`` (endpoint ids) say."""
        ...


class Pruner(Protocol):
    """Retention's transactions (``Store.prune_batch``, ``reclaim_space``, ``compact``)."""

    async def prune(self, params: dict[str, Any], dry_run: bool) -> PruneBatch:
        """One batch as ``pruning.scan_params`` describes it, removed or only counted."""
        ...

    async def reclaim(self, max_pages: int) -> int: ...
    async def compact(self) -> bool: ...
