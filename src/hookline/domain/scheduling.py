"""When a delivery may go: a message's ``deliverAt``, and the retry policy that applies.

Pure rules (time comes from the caller). ``deliverAt`` follows Svix's ``MessageIn``, whose
upper bound hookline keeps (at most 24 hours ahead); Svix also asks for at least one minute
ahead, which hookline relaxes to "not in the past", with a tolerance for clock skew between
producer and server, so a message can be scheduled seconds ahead. The retry policy of a
delivery is its endpoint's ``policy.retry``, else its application's, else the server's
(``HOOKLINE_RETRY_SCHEDULE``, ``HOOKLINE_RETRY_MAX_AGE``), field by field.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hookline.domain.errors import InvalidRequest
from hookline.domain.policy import ApplicationPolicy, EndpointPolicy, RetryPolicy
from hookline.domain.retry import RetrySchedule

DELIVER_AT_MAX_AHEAD = timedelta(hours=24)
"""Svix's bound ("no more than 24 hours in the future")."""
DELIVER_AT_PAST_TOLERANCE = timedelta(seconds=60)
"""A ``deliverAt`` this far in the past is taken as "now": producer clocks drift."""
_FIELD = ("body", "deliverAt")


def check_deliver_at(deliver_at: datetime | None, now: datetime) -> datetime | None:
    """``deliverAt`` as stored (UTC), or a 422 naming the field when it is out of bounds.

    A time without a zone is UTC, as Svix reads it.
    """
    if deliver_at is None:
        return None
    when = deliver_at if deliver_at.tzinfo is not None else deliver_at.replace(tzinfo=UTC)
    when = when.astimezone(UTC)
    if when < now - DELIVER_AT_PAST_TOLERANCE:
        raise InvalidRequest(
            f"deliverAt must not be in the past (more than "
            f"{int(DELIVER_AT_PAST_TOLERANCE.total_seconds())} s before now)",
            loc=_FIELD,
        )
    if when > now + DELIVER_AT_MAX_AHEAD:
        raise InvalidRequest("deliverAt must be at most 24 hours in the future", loc=_FIELD)
    return when


@dataclass(frozen=True, slots=True)
class EffectiveRetry:
    """The retry rules one delivery follows."""

    schedule: RetrySchedule
    max_age_seconds: float | None
    """None: no limit; a delivery retries until its schedule is spent."""

    def deadline(self, due_at: datetime) -> datetime | None:
        """The last moment an attempt may start, for a delivery first due at ``due_at``."""
        if self.max_age_seconds is None:
            return None
        return due_at + timedelta(seconds=self.max_age_seconds)


def effective_retry(
    endpoint: EndpointPolicy, application: ApplicationPolicy | None, server: EffectiveRetry
) -> EffectiveRetry:
    """The endpoint's ``policy.retry`` fields, else its application's, else the server's.

    The server's schedule object is returned as is when nothing overrides it, so that the
    common case builds nothing; an overriding schedule keeps the server's jitter.
    """
    own = endpoint.retry
    if application is not None and application.retry is not None:
        own = application.retry if own is None else own.over(application.retry)
    if own is None:
        return server
    return _over_server(own, server)


def _over_server(own: RetryPolicy, server: EffectiveRetry) -> EffectiveRetry:
    schedule = server.schedule
    if own.schedule is not None and own.schedule != schedule.delays:
        schedule = RetrySchedule(own.schedule, schedule.jitter)
    max_age = own.max_age_seconds if own.max_age_seconds is not None else server.max_age_seconds
    if schedule is server.schedule and max_age == server.max_age_seconds:
        return server
    return EffectiveRetry(schedule, max_age)
