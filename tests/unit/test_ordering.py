"""The pure rules of ordered delivery (domain/ordering.py)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from hookline.domain.models import Delivery, MessageStatus
from hookline.domain.ordering import NO_KEY, ended, is_held, may_hand_over, sequence_of
from hookline.domain.policy import EndpointPolicy, OnExhausted, OrderingPolicy
from tests.conftest import make_app, make_endpoint, make_message, utcnow

APP = make_app()
PLAIN = make_endpoint(APP)
SKIPPING = replace(PLAIN, policy=EndpointPolicy(ordering=OrderingPolicy(OnExhausted.SKIP)))
HOLDING = replace(PLAIN, policy=EndpointPolicy(ordering=OrderingPolicy(OnExhausted.HOLD)))


def test_a_delivery_joins_the_sequence_of_its_key_only_on_an_ordered_endpoint() -> None:
    """Keyed messages join their key's sequence, unkeyed ones the no-key sequence, and an
    unordered endpoint's deliveries join none."""
    keyed = replace(make_message(APP), ordering_key="k")
    unkeyed = make_message(APP)
    assert sequence_of(SKIPPING, keyed) == "k"
    assert sequence_of(SKIPPING, unkeyed) == NO_KEY
    assert sequence_of(PLAIN, keyed) is None


def test_only_unordered_endpoints_deliveries_are_handed_over() -> None:
    """Whether a delivery heads its sequence is the claim's to know, never the hand-over's."""
    assert may_hand_over(PLAIN)
    assert not may_hand_over(SKIPPING) and not may_hand_over(HOLDING)


def test_an_exhausted_delivery_is_held_only_where_the_endpoint_holds_its_line() -> None:
    """A failed delivery of a holding endpoint becomes pending with no next attempt; a
    skipping or unordered endpoint's stays failed, and other states pass unchanged."""
    later = utcnow() + timedelta(seconds=5)
    assert ended(HOLDING, MessageStatus.FAIL, None) == (MessageStatus.PENDING, None)
    assert ended(SKIPPING, MessageStatus.FAIL, None) == (MessageStatus.FAIL, None)
    assert ended(PLAIN, MessageStatus.FAIL, None) == (MessageStatus.FAIL, None)
    assert ended(HOLDING, MessageStatus.SUCCESS, None) == (MessageStatus.SUCCESS, None)
    assert ended(HOLDING, MessageStatus.PENDING, later) == (MessageStatus.PENDING, later)


def test_a_held_delivery_is_pending_with_no_next_attempt() -> None:
    """Held is what the API reports for a delivery that stops its line."""
    held = Delivery("dlv", "app", "msg", "ep", MessageStatus.PENDING, 4, None, utcnow())
    assert is_held(held)
    assert not is_held(replace(held, next_attempt_at=utcnow()))
    assert not is_held(replace(held, status=MessageStatus.FAIL))
