"""``AttemptRunner``: one attempt at one delivery — sign, send, and say what it did.

The request carries the Standard Webhooks headers (``webhook-id``, ``webhook-timestamp``,
``webhook-signature``; or Svix's ``svix-*`` names, or both, as ``HOOKLINE_SIGNATURE_HEADERS``
says) over the exact payload bytes stored at publish; the answer becomes an
``AttemptOutcome`` whose verdict (success, retry when, fail, endpoint gone) is decided by the
pure rule in ``domain/outcome.py``, under the delivery's retry policy: its endpoint's, else
its application's (as the worker last read them), else the server's
(``domain/scheduling.py``). An endpoint with credentials (HTTP Basic, OAuth2, mutual TLS) is
sent through ``credentials.py``.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta

from hookline.delivery import fallback
from hookline.delivery.credentials import Credentials
from hookline.domain import ids
from hookline.domain.models import Attempt, AttemptTrigger, ClaimedDelivery, Message, MessageStatus
from hookline.domain.operational import attempt_event_type
from hookline.domain.ordering import ended
from hookline.domain.outcome import Verdict, decide
from hookline.domain.policy import ApplicationPolicy, RetryPolicy
from hookline.domain.retry import RetrySchedule
from hookline.domain.scheduling import EffectiveRetry, effective_retry
from hookline.domain.signing import HeaderStyle, sign, signature_header_names
from hookline.domain.tracecontext import from_stored
from hookline.instrumentation import (
    NO_INSTRUMENTATION,
    AttemptFinished,
    AttemptMilestone,
    AttemptSpan,
    DeliveryExhausted,
    Instrumentation,
    Tracing,
)
from hookline.storage.base import AttemptOutcome
from hookline.transport import HttpResult, Transport

MAX_RETRY_POLICIES_KEPT = 1024
"""Distinct (endpoint, application) retry policies whose effective rules are kept built."""


class AttemptRunner:
    """Sends deliveries through ``transport`` and turns its answers into outcomes."""

    def __init__(
        self,
        transport: Transport,
        *,
        retry_schedule: RetrySchedule,
        retry_max_age: float | None = None,
        request_timeout: float,
        clock: Callable[[], datetime],
        rng: random.Random,
        signature_headers: HeaderStyle = HeaderStyle.WEBHOOK,
        instrumentation: Instrumentation = NO_INSTRUMENTATION,
        tracing: Tracing | None = None,
    ) -> None:
        self._transport = transport
        self.credentials = Credentials(transport)
        """The endpoints' credentials on the wire, and this worker's OAuth tokens."""
        self._signature_names = signature_header_names(signature_headers)
        self._server_retry = EffectiveRetry(retry_schedule, retry_max_age)
        self._app_policies: Mapping[str, ApplicationPolicy] = {}
        self._retries: dict[
            tuple[RetryPolicy | None, ApplicationPolicy | None], EffectiveRetry
        ] = {}
        """Effective retry rules by the policies they come from: built once each."""
        self._request_timeout = request_timeout
        self._instrumentation = instrumentation
        self._attempts_heard = instrumentation.wants(AttemptFinished)
        self._milestones_heard = instrumentation.wants(AttemptMilestone)
        self._exhaustion_heard = instrumentation.wants(DeliveryExhausted)
        self._clock = clock
        self._rng = rng
        self._tracing = tracing
        self._spans: dict[int, AttemptSpan] = {}
        """Attempt spans from ``send`` to ``outcome``, by the claimed delivery's identity."""

    def adopt_application_policies(self, policies: Mapping[str, ApplicationPolicy]) -> None:
        """The applications' policies as last read from the store (each heartbeat)."""
        if policies != self._app_policies:
            self._app_policies = policies
            self._retries.clear()

    def retry_for(self, claimed: ClaimedDelivery) -> EffectiveRetry:
        """The endpoint's retry policy, else its application's, else the server's."""
        endpoint = claimed.endpoint
        own = endpoint.policy.retry
        app = self._app_policies.get(endpoint.app_id) if self._app_policies else None
        if own is None and app is None:
            return self._server_retry
        key = (own, app)
        retry = self._retries.get(key)
        if retry is None:
            if len(self._retries) >= MAX_RETRY_POLICIES_KEPT:
                self._retries.clear()  # policies edited over and over: start again
            retry = self._retries[key] = effective_retry(endpoint.policy, app, self._server_retry)
        return retry

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
        if self._tracing is not None or endpoint.policy.trace_context is not None:
            self._trace(claimed, headers)
            if self._tracing is not None:
                return await self._post_in_span(claimed, headers)
        return await self._post(claimed, headers)

    async def _post_in_span(self, claimed: ClaimedDelivery, headers: dict[str, str]) -> HttpResult:
        """``_post``, ending the attempt's span if the transport raises (it reports
        failures as results, so only a bug or a cancellation does)."""
        try:
            return await self._post(claimed, headers)
        except BaseException as exc:
            span = self._spans.pop(id(claimed), None)
            if span is not None:
                span.finish(0, "error", type(exc).__name__)
            raise

    def _trace(self, claimed: ClaimedDelivery, headers: dict[str, str]) -> None:
        """Start the attempt's span under the message's stored context, and give an
        opted-in endpoint a ``traceparent``: the span's, or with tracing off the stored one
        as the producer sent it (a hop that records nothing passes the context on)."""
        msg, endpoint = claimed.message, claimed.endpoint
        forwarded = stored = from_stored(msg.trace_context)
        if self._tracing is not None:
            manual = claimed.trigger is AttemptTrigger.MANUAL
            span = self._tracing.attempt(
                stored,
                url=endpoint.url,
                endpoint_id=endpoint.id,
                msg_id=msg.id,
                number=max(claimed.attempt_count + (0 if manual else 1), 1),
            )
            self._spans[id(claimed)] = span
            forwarded = span.context()
        if forwarded is not None and endpoint.policy.forwards_trace_context:
            # Not signed (Standard Webhooks signs id, timestamp and body only), so adding
            # it changes no signature; it replaces a custom header of the same name.
            headers["traceparent"] = forwarded.parent.header()
            if forwarded.state:
                headers["tracestate"] = forwarded.state

    def _post(self, claimed: ClaimedDelivery, headers: dict[str, str]) -> Awaitable[HttpResult]:
        """The transport's request, returned unawaited: no coroutine frame of its own on
        the path of every attempt."""
        msg, endpoint = claimed.message, claimed.endpoint
        assert msg.payload is not None
        if endpoint.auth is not None:
            return self.credentials.post(
                endpoint.id,
                endpoint.auth,
                endpoint.url,
                msg.payload,
                headers,
                self._request_timeout,
            )
        return self._transport.post(endpoint.url, msg.payload, headers, self._request_timeout)

    def outcome(
        self, claimed: ClaimedDelivery, result: HttpResult, started: datetime
    ) -> AttemptOutcome:
        """The attempt record and what it does to its delivery."""
        manual = claimed.trigger is AttemptTrigger.MANUAL
        scheduled_attempts = claimed.attempt_count + (0 if manual else 1)
        retry = self.retry_for(claimed)
        deadline = None if retry.max_age_seconds is None else retry.deadline(claimed.message.due_at)
        decision = decide(
            result.status_code,
            result.retry_after,
            max(scheduled_attempts, 1),
            retry.schedule,
            started,
            self._rng,
            deadline=deadline,
        )
        if self._tracing is not None:
            span = self._spans.pop(id(claimed), None)
            if span is not None:
                span.finish(result.status_code, _OUTCOMES[decision.verdict], result.error)
        succeeded = decision.verdict is Verdict.SUCCEEDED
        next_at = None
        if decision.verdict is Verdict.RETRY:
            status = MessageStatus.PENDING
            next_at = self._clock() + timedelta(seconds=decision.delay_seconds or 0.0)
            if deadline is not None and next_at > deadline:
                next_at = deadline  # the attempt took a moment: still never past the max age
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
            fallback_for=claimed.fallback_for,
        )
        if self._attempts_heard:
            self._instrumentation.emit(
                _finished(attempt, result, decision.verdict, scheduled_attempts, claimed.message)
            )
        if self._milestones_heard:
            kind = attempt_event_type(
                max(scheduled_attempts, 1), _OUTCOMES[decision.verdict], manual
            )
            if kind is not None:
                self._instrumentation.emit(
                    AttemptMilestone(
                        kind,
                        attempt.app_id,
                        attempt.msg_id,
                        claimed.message.event_id,
                        attempt.endpoint_id,
                        attempt.id,
                        result.status_code,
                        attempt.timestamp,
                    )
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
            fallback=fallback.stand_in(claimed, started)
            if decision.verdict in _FAILED_FOR_GOOD
            else None,
        )


_FAILED_FOR_GOOD = (Verdict.EXHAUSTED, Verdict.ENDPOINT_GONE)
"""Verdicts after which a delivery goes to its endpoint's fallback destination, if any."""

_OUTCOMES = {
    Verdict.SUCCEEDED: "success",
    Verdict.RETRY: "retry",
    Verdict.EXHAUSTED: "fail",
    Verdict.ENDPOINT_GONE: "gone",
}


def _finished(
    attempt: Attempt,
    result: HttpResult,
    verdict: Verdict,
    scheduled_attempts: int,
    message: Message,
) -> AttemptFinished:
    # Positional: this runs once per attempt when metrics are on (instrumentation/_events.py).
    return AttemptFinished(
        attempt.app_id,
        attempt.msg_id,
        attempt.endpoint_id,
        attempt.id,
        result.status_code,
        result.error,
        result.duration_ms,
        max(scheduled_attempts, 1),
        attempt.trigger is AttemptTrigger.MANUAL,
        _OUTCOMES[verdict],
        attempt.timestamp,
        message.event_id,
        message.timestamp,
        message.due_at,
    )
