"""Failure groups: failed attempts grouped by endpoint and error, for an operator's triage.

**The key** is (endpoint, outcome class, status code): the outcome class is the rollups'
(``domain/rollups.py`` ``outcome_class``: ``4xx``, ``5xx``, ``timeout``, ``connection``,
``dns``, ``tls``, ``ssrf_blocked``, ``3xx``, ``other``), and the status code is the answer's
for an HTTP answer, 0 otherwise. So a 503 and a 500 of one endpoint are two groups (they
usually have two causes), and all of an endpoint's timeouts are one.

**A group opens** with the first failed attempt of its key while the store holds none of
that key, and **reopens** (the same row, its counters started again) with the first failed
attempt after it was resolved. Its counters: failed attempts, affected messages (a message
is counted once per grouping pass it failed in, or per chunk of a pass that reads many:
exact when its failures fall within one, more when its retries span several), first seen
(ever), opened (this episode), last seen, and the last error as a sample
(``SAMPLE_CHARS`` of the response body or of the transport's reason; never a header, a URL
or a secret).

**Acknowledged** means an operator saw it: it stays listed, new failures still count, and
it stays acknowledged until resolved. **Resolved** means over: by an operator, or on its own
once no failure of its key came for ``RESOLVE_QUIET`` and the endpoint delivered at least
one attempt successfully since (so a dead or disabled endpoint's group stays open: silence
alone is not health), or was deleted. A failure after that reopens it.

Groups are kept by a background pass (``operations/failure_groups.py``) over what the
recorder already wrote, so the delivery path pays nothing for them. Times come from the
caller.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from hookline.domain.rollups import MINUTE_SECONDS, floor_to, outcome_class

SAMPLE_CHARS = 200
"""The longest error sample kept: enough to recognise an error page or a reason."""
RESOLVE_QUIET = timedelta(minutes=15)
"""A group resolves on its own after this long without a failure of its key, once its
endpoint has delivered successfully since."""
SETTLE = timedelta(seconds=30)
"""A pass reads attempts whose ids are older than this: an attempt's id is minted when it
ends and the recorder writes it within a second or two, so by then every attempt of the
range has landed (one written later, after a long outage of the store, is not grouped)."""
CATCH_UP = timedelta(hours=1)
"""The most a pass reads back: after a longer stop of every worker, older failures are not
grouped (the rollups and the attempt log still hold them)."""
START_SLACK = timedelta(minutes=5)
"""How far before a pass's range the rollups are read for failing endpoints: a rollup
counts an attempt at its start, its id at its end, a request timeout later at most."""
NO_ANSWER = 0
"""The status code of a group whose attempts got no HTTP answer."""


class GroupStatus(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class ResolvedBy(StrEnum):
    OPERATOR = "operator"
    AUTOMATIC = "automatic"


@dataclass(frozen=True, slots=True)
class FailedAttempt:
    """A failed attempt as the pass reads it from the attempt log."""

    id: str
    app_id: str
    msg_id: str
    endpoint_id: str
    status_code: int
    response: str
    at: datetime


@dataclass(frozen=True, slots=True)
class Sighting:
    """What one pass saw of one key: added to its group (or opening it)."""

    app_id: str
    endpoint_id: str
    outcome: str
    status_code: int
    attempts: int
    messages: int
    first_at: datetime
    last_at: datetime
    sample: str


@dataclass(frozen=True, slots=True)
class FailureGroup:
    id: str
    app_id: str
    endpoint_id: str
    outcome: str
    status_code: int
    status: GroupStatus
    first_seen_at: datetime
    """The first failure of the key ever grouped (kept across reopenings)."""
    opened_at: datetime
    """The first failure of this episode: since it opened, or last reopened."""
    last_seen_at: datetime
    attempts: int
    """Failed attempts since ``opened_at``."""
    messages: int
    sample: str
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    resolved_by: ResolvedBy | None
    reopened: int
    """How many times a failure reopened it after it was resolved."""


@dataclass(frozen=True, slots=True)
class GroupFilter:
    """Which groups a list shows; None keeps all."""

    status: GroupStatus | None = None
    app_id: str | None = None
    endpoint_id: str | None = None


def key_of(status_code: int, response: str) -> tuple[str, int]:
    """The (outcome class, status code) part of a failed attempt's key."""
    return outcome_class(status_code, None if status_code else response), status_code


def sample_of(response: str) -> str:
    """At most ``SAMPLE_CHARS`` of an error, control characters turned into spaces, so a
    list shows one readable line."""
    clipped = response[:SAMPLE_CHARS]
    return "".join(c if c.isprintable() else " " for c in clipped).strip()


def gather(attempts: Iterable[FailedAttempt]) -> list[Sighting]:
    """One sighting per key of a pass's failed attempts: counts, distinct messages, first
    and last times, and the latest attempt's error as the sample."""
    seen: dict[tuple[str, str, int], list[FailedAttempt]] = {}
    for attempt in attempts:
        outcome, code = key_of(attempt.status_code, attempt.response)
        seen.setdefault((attempt.endpoint_id, outcome, code), []).append(attempt)
    found: list[Sighting] = []
    for (endpoint_id, outcome, code), group in seen.items():
        latest = max(group, key=lambda a: (a.at, a.id))
        found.append(
            Sighting(
                app_id=latest.app_id,
                endpoint_id=endpoint_id,
                outcome=outcome,
                status_code=code,
                attempts=len(group),
                messages=len({a.msg_id for a in group}),
                first_at=min(a.at for a in group),
                last_at=latest.at,
                sample=sample_of(latest.response),
            )
        )
    return found


def merge(held: Iterable[Sighting], more: Iterable[Sighting]) -> list[Sighting]:
    """Sightings of one pass gathered in several chunks, one per key: counts add, the
    earliest first and the latest last time, and the latest chunk's sample. A message is
    counted once per chunk it failed in."""
    by_key = {(s.endpoint_id, s.outcome, s.status_code): s for s in held}
    for seen in more:
        key = (seen.endpoint_id, seen.outcome, seen.status_code)
        before = by_key.get(key)
        if before is not None:
            seen = Sighting(
                app_id=seen.app_id,
                endpoint_id=seen.endpoint_id,
                outcome=seen.outcome,
                status_code=seen.status_code,
                attempts=before.attempts + seen.attempts,
                messages=before.messages + seen.messages,
                first_at=min(before.first_at, seen.first_at),
                last_at=max(before.last_at, seen.last_at),
                sample=seen.sample if seen.last_at >= before.last_at else before.sample,
            )
        by_key[key] = seen
    return list(by_key.values())


def scan_range(scanned_until: datetime | None, now: datetime) -> tuple[datetime, datetime] | None:
    """The attempts a pass at ``now`` reads, by the time their ids were minted: from where
    the last pass ended (at most ``CATCH_UP`` back, as the first pass starts) to ``SETTLE``
    ago; None when there is nothing new."""
    end = now - SETTLE
    start = end - CATCH_UP if scanned_until is None else max(scanned_until, end - CATCH_UP)
    return (start, end) if start < end else None


def rollup_start(start: datetime) -> datetime:
    """The first minute rollup that may count an attempt of a range starting at ``start``."""
    return floor_to(start - START_SLACK, MINUTE_SECONDS)


def quiet_before(now: datetime) -> datetime:
    """Groups whose last failure started before this may resolve on their own; it is a
    minute's start, so the successes of the minute rollups from it on all started after
    those groups' last failure."""
    return floor_to(now - RESOLVE_QUIET, MINUTE_SECONDS)


def resolves_on_its_own(
    group: FailureGroup, successes: int, now: datetime, endpoint_exists: bool = True
) -> bool:
    """Unresolved, no failure of its key since ``quiet_before(now)``, and the endpoint
    delivered at least once since then, or was deleted (nothing will deliver to it, and
    nobody could act on the group through it)."""
    return (
        group.status is not GroupStatus.RESOLVED
        and group.last_seen_at < quiet_before(now)
        and (successes > 0 or not endpoint_exists)
    )


def acknowledged(group: FailureGroup) -> bool:
    """Whether acknowledging changes it: only an open group becomes acknowledged; one
    already acknowledged stays so, and a resolved one cannot be (it reopens on its own)."""
    return group.status is GroupStatus.OPEN


def replay_codes(group: FailureGroup) -> tuple[int | None, int | None]:
    """The (status code, status code class) a replay of the group selects dead letters by:
    the exact code of an HTTP answer; for no answer, every delivery that last got none
    (a delivery keeps its last code, not why there was no answer)."""
    if group.status_code == NO_ANSWER:
        return None, 0
    return group.status_code, None


def opened_by(groups: Iterable[FailureGroup], sightings: Iterable[Sighting]) -> list[FailureGroup]:
    """The groups that ``sightings`` opened or reopened, read back after they were added: a
    group's ``opened_at`` is its sighting's ``first_at`` only when that sighting opened it
    (an open group keeps the earlier time, from a range an earlier pass read). Times are
    stored to the millisecond."""
    first_at = {(s.endpoint_id, s.outcome, s.status_code): s.first_at for s in sightings}
    opened = []
    for group in groups:
        seen = first_at.get((group.endpoint_id, group.outcome, group.status_code))
        if seen is not None and abs(group.opened_at - seen) < timedelta(milliseconds=1):
            opened.append(group)
    return opened
