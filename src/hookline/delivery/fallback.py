"""Fallback destinations: what a delivery's endpoint hands to the endpoint it names in
``policy.fallback`` (docs/delivery.md, "Fallback destinations").

Two things go to a fallback: a delivery its endpoint exhausted (the stand-in is written in
the same transaction that records the exhaustion), and a delivery held while the endpoint's
circuit has been open longer than ``afterOpenSeconds`` (diverted instead of put back). A
delivery to a fallback is itself never handed further: the chain stops after one step.
"""

from __future__ import annotations

from datetime import datetime

from hookline.domain import ids
from hookline.domain.models import ClaimedDelivery
from hookline.storage.base import FallbackDelivery


def stand_in(claimed: ClaimedDelivery, now: datetime) -> FallbackDelivery | None:
    """The delivery its endpoint's fallback destination gets instead, if it names one and
    this delivery is not already a stand-in."""
    fallback = claimed.endpoint.policy.fallback
    if fallback is None or claimed.fallback_for is not None:
        return None
    return FallbackDelivery(
        id=ids.new_id(ids.DELIVERY),
        app_id=claimed.endpoint.app_id,
        msg_id=claimed.message.id,
        endpoint_id=fallback.endpoint_id,
        fallback_for=claimed.endpoint.id,
        now=now,
    )
