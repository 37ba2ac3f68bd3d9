"""``AttemptRunner``: one attempt at one delivery — sign, send, and say what it did.

The request carries the Standard Webhooks headers (``webhook-id``, ``webhook-timestamp``,
``webhook-signature``; or Svix's ``svix-*`` names, or both, as ``HOOKLINE_SIGNATURE_HEADERS``
says) over the exact payload bytes stored at publish; the answer becomes an
``AttemptOutcome`` whose verdict (success, retry when, fail, endpoint gone) is decided by the
pure rule in ``domain/outcome.py``.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime, timedelta

from hookline.domain import ids
from hookline.domain.models import Attempt, AttemptTrigger, ClaimedDelivery, MessageStatus
from hookline.domain.ordering import ended
from hookline.domain.outcome import Verdict, decide
from hookline.domain.retry import RetrySchedule
from hookline.domain.signing import HeaderStyle, sign, signature_header_names
from hookline.instrumentation import (
    NO_INSTRUMENTATION,
    AttemptFinished,
    DeliveryExhausted,
    Instrumentation,
)
from hookline.storage.base import AttemptOutcome
from hookline.transport import HttpResult, Transport


class AttemptRunner:
    """Sends deliveries through ``transport`` and turns its answers into outcomes."""

    def __init__(
        self,
        transport: Transport,
        *,
        retry_schedule: RetrySchedule,
        request_timeout: float,
        clock: Callable[[], datetime],
        rng: random.Random,
        signature_headers: HeaderStyle = HeaderStyle.WEBHOOK,
        instrumentation: Instrumentation = NO_INSTRUMENTATION,
    ) -> None:
        self._transport = transport
        self._signature_names = signature_header_names(signature_headers)
        self._retry_schedule = retry_schedule
        self._request_timeout = request_timeout
        self._instrumentation = instrumentation
        self._attempts_heard = instrumentation.wants(AttemptFinished)
        self._exhaustion_heard = instrumentation.wants(DeliveryExhausted)
        self._clock = clock
        self._rng = rng

    async def send(self, claimed: ClaimedDelivery, now: datetime) -> HttpResult:
        """The signed request; a message whose content was expunged is not sent."""
        msg, endpoint = claimed.message, claimed.endpoint
        if msg.payload is None:
            return HttpResult(0, b"", "message content was expunged", 0, None)
        timestamp = int(now.timestamp())
        signature = sign(msg.id, timestamp, msg.payload, endpoint.signing_secrets(now))
        stamp = str(timestamp)
        headers = dict(endpoint.headers)
        for id_name, timestamp_name, signature_name in self._signature_names:
            headers[id_name] = msg.id
            headers[timestamp_name] = stamp
            headers[signature_name] = signature
        headers["content-type"] = "application/json"
        return await self._transport.post(endpoint.url, msg.payload, headers, self._request_timeout)

    def outcome(
        self, claimed: ClaimedDelivery, result: HttpResult, started: datetime
    ) -> AttemptOutcome:
        """The attempt record and what it does to its delivery."""
        manual = claimed.trigger is AttemptTrigger.MANUAL
        scheduled_attempts = claimed.attempt_count + (0 if manual else 1)
        decision = decide(
            result.status_code,
            result.retry_after,
            max(scheduled_attempts, 1),
            self._retry_schedule,
            started,
            self._rng,
        )
        succeeded = decision.verdict is Verdict.SUCCEEDED
        next_at = None
        if decision.verdict is Verdict.RETRY:
            status = MessageStatus.PENDING
            next_at = self._clock() + timedelta(seconds=decision.delay_seconds or 0.0)
        else:
            status = MessageStatus.SUCCESS if succeeded else MessageStatus.FAIL
            if not succeeded:
                status, next_at = ended(claimed.endpoint, status, next_at)
        response = result.body.decode("utf-8", errors="replace") if result.status_code else ""
        attempt = Attempt(
            id=ids.new_id(ids.ATTEMPT),
            app_id=claimed.endpoint.app_id,
            msg_id=claimed.message.id,
            endpoint_id=claimed.endpoint.id,
            url=claimed.endpoint.url,
            status=MessageStatus.SUCCESS if succeeded else MessageStatus.FAIL,
            response_status_code=result.status_code,
            response=response if result.status_code else (result.error or ""),
            response_duration_ms=result.duration_ms,
            trigger=claimed.trigger,
            timestamp=started,
        )
        if self._attempts_heard:
            self._instrumentation.emit(
                _finished(attempt, result, decision.verdict, scheduled_attempts)
            )
        if self._exhaustion_heard and decision.verdict is Verdict.EXHAUSTED:
            exhausted = DeliveryExhausted(
                attempt.app_id, attempt.msg_id, attempt.endpoint_id, scheduled_attempts
            )
            self._instrumentation.emit(exhausted)
        return AttemptOutcome(
            claimed=claimed,
            attempt=attempt,
            delivery_status=status,
            next_attempt_at=next_at,
            scheduled_attempts=scheduled_attempts,
            disable_endpoint=decision.verdict is Verdict.ENDPOINT_GONE,
        )


_OUTCOMES = {
    Verdict.SUCCEEDED: "success",
    Verdict.RETRY: "retry",
    Verdict.EXHAUSTED: "fail",
    Verdict.ENDPOINT_GONE: "gone",
}


def _finished(
    attempt: Attempt, result: HttpResult, verdict: Verdict, scheduled_attempts: int
) -> AttemptFinished:
    return AttemptFinished(
        app_id=attempt.app_id,
        msg_id=attempt.msg_id,
        endpoint_id=attempt.endpoint_id,
        attempt_id=attempt.id,
        status_code=result.status_code,
        error=result.error,
        duration_ms=result.duration_ms,
        attempt_number=max(scheduled_attempts, 1),
        manual=attempt.trigger is AttemptTrigger.MANUAL,
        outcome=_OUTCOMES[verdict],
        started_at=attempt.timestamp,
    )
