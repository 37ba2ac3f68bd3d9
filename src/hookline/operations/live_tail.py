"""The console's live tail: attempts of every application as they are recorded, read from
the store after a cursor, since another process (a worker elsewhere) may record them.

Attempt ids sort by the time they were minted (``domain/ids.py``), but a batch is written
when the recorder flushes it, and several workers flush independently: an attempt minted
just before the last one shown may commit just after it. Each read therefore starts a short
``LAG`` behind the newest id shown, and the ``Cursor`` remembers what it already gave, so a
late attempt is still shown, once.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from hookline.domain import ids
from hookline.domain.models import Attempt
from hookline.domain.rollups import outcome_class
from hookline.operations import applications
from hookline.operations.context import Operations
from hookline.operations.principal import Principal

LAG = timedelta(seconds=2)
"""How far behind the newest attempt shown each read starts: longer than a recorder's flush
(ids are minted when an attempt completes) and than a small clock skew between hosts."""
BATCH = 200
"""At most this many attempts per read; the next read continues after them."""
REMEMBERED = 5000
"""Ids kept to avoid showing one twice within ``LAG``; far more than ``LAG`` holds in practice."""
SUCCESS = "success"
FAILURE = "failure"


@dataclass
class Cursor:
    """Where a tail is: the newest id shown and the ids shown recently, and its filters."""

    after: str
    app_id: str | None = None
    outcome: str | None = None
    """``success``, ``failure``, or an outcome class of ``domain/rollups.py`` (``5xx`` …)."""
    shown: OrderedDict[str, None] = field(default_factory=OrderedDict)

    @classmethod
    def starting(cls, now: datetime, app_id: str | None, outcome: str | None) -> Cursor:
        """A tail that shows what completes from ``now`` on (and what the lag still holds)."""
        return cls(ids.first_id_at(ids.ATTEMPT, _ms(now)), app_id, outcome)

    def wants(self, attempt: Attempt) -> bool:
        if self.outcome is None:
            return True
        ok = attempt.response_status_code // 100 == 2
        if self.outcome == SUCCESS:
            return ok
        if self.outcome == FAILURE:
            return not ok
        error = attempt.response if not attempt.response_status_code else None
        return outcome_class(attempt.response_status_code, error) == self.outcome

    def take(self, found: list[Attempt]) -> list[Attempt]:
        """The attempts of a read not shown before; the cursor moves past them."""
        fresh = [a for a in found if a.id not in self.shown]
        for attempt in fresh:
            self.shown[attempt.id] = None
            if attempt.id > self.after:
                self.after = attempt.id
        while len(self.shown) > REMEMBERED:
            self.shown.popitem(last=False)
        return [a for a in fresh if self.wants(a)]


async def resolve_filter(ops: Operations, principal: Principal, app_key: str | None) -> str | None:
    """The id of the application a tail keeps to (by id or uid; another tenant's is a 404)."""
    principal.require_admin()
    if not app_key:
        return None
    return (await applications.resolve(ops, principal, app_key)).id


async def next_attempts(ops: Operations, principal: Principal, cursor: Cursor) -> list[Attempt]:
    """The attempts recorded since the cursor's last read that its filters keep (admins
    only: the tail spans every application)."""
    principal.require_admin()
    behind = ids.first_id_at(ids.ATTEMPT, _ms(ops.clock() - LAG))
    start = min(cursor.after, behind)
    again = sum(1 for shown in cursor.shown if shown > start)
    found = await ops.store.tail_attempts(start, BATCH + again, cursor.app_id)
    return cursor.take(found)


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)
