"""Ordered delivery, the pure rules (docs/delivery.md, "Ordered delivery").

An endpoint whose policy has ``ordering`` receives the messages of one sequence strictly in
creation order: the next is not sent until the one before it succeeded or was exhausted.
A sequence is an endpoint and a message's ordering key; messages without a key form one
sequence of their own. Which delivery heads its sequence is decided by the store, in the
claim (an earlier delivery of the same endpoint and key that is pending or sending blocks
it), because only the store sees every worker's deliveries. What is decided here:

- the sequence a delivery belongs to, fixed when it is written: the message's key, ``""``
  for none, or None when its endpoint is not ordered (its claims then check nothing);
- that an ordered endpoint's deliveries are never handed over to the publishing worker,
  since whether one heads its sequence is known only to the claim;
- what an exhausted delivery of an ordered endpoint becomes: failed (``skip``: a dead letter,
  the line moves on), or held (``hold``): pending with no next attempt, so that it still
  blocks its sequence and no claim takes it until an operator resends, recovers or skips it.
"""

from __future__ import annotations

from datetime import datetime

from hookline.domain.models import Delivery, Endpoint, Message, MessageStatus
from hookline.domain.policy import OnExhausted

NO_KEY = ""
"""The sequence of an ordered endpoint's messages that have no ordering key."""


def sequence_of(endpoint: Endpoint, msg: Message) -> str | None:
    """The sequence a delivery of ``msg`` to ``endpoint`` joins; None when not ordered."""
    if endpoint.policy.ordering is None:
        return None
    return msg.ordering_key or NO_KEY


def may_hand_over(endpoint: Endpoint) -> bool:
    """Whether a publish may lease a delivery to ``endpoint`` straight to its local worker."""
    return endpoint.policy.ordering is None


def ended(
    endpoint: Endpoint, status: MessageStatus, next_attempt_at: datetime | None
) -> tuple[MessageStatus, datetime | None]:
    """A delivery's state after an attempt: a failed one of an endpoint that holds its
    line on exhaustion is held (pending, no next attempt) instead."""
    ordering = endpoint.policy.ordering
    if (
        status is MessageStatus.FAIL
        and ordering is not None
        and ordering.on_exhausted is OnExhausted.HOLD
    ):
        return MessageStatus.PENDING, None
    return status, next_attempt_at


def is_held(delivery: Delivery) -> bool:
    """A held delivery heads a stopped line: pending, and nothing will try it by itself."""
    return delivery.status is MessageStatus.PENDING and delivery.next_attempt_at is None
