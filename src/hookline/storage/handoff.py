"""Which deliveries of a publish go straight to the local worker, and the rows that say so.

Both SQL backends write a publish's deliveries through ``DeliveryRows``: a delivery the
local worker has room for is inserted already leased to it (status sending, lease until
the offer's expiry), the rest are inserted pending for any worker to claim. Which ones the
worker takes is its admission's decision, carried by the offer (``LeaseOffer.admission``)
and asked here delivery by delivery: the rule is written once, in ``domain/admission.py``,
for this hand-over and for the worker's claims alike. A delivery of a message whose
``deliverAt`` is still ahead is never handed over: it is written pending, due then (the
row's ``due``). Nor is an ordered endpoint's (``domain/ordering.py``): it is written pending
with its sequence, for a claim to take it when it heads its sequence. Delivery ids are
minted in runs (``ids.new_ids``), because they are minted while the write lock is held.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hookline.domain import ids
from hookline.domain.models import AttemptTrigger, ClaimedDelivery, Endpoint, Message
from hookline.domain.ordering import may_hand_over, sequence_of
from hookline.storage.base import LeaseOffer
from hookline.storage.rows import to_ms

_IDS_PER_RUN = 64


class DeliveryRows:
    """The delivery rows of one publish transaction, split into leased and pending."""

    def __init__(self, offer: LeaseOffer | None) -> None:
        self.offer = offer
        self.claimed: list[ClaimedDelivery] = []
        self._left: list[str] = []
        self.lease_until_ms = to_ms(offer.lease_until) if offer is not None else None
        self._unused_ids: list[str] = []
        self.scheduled = 0
        """Pending rows written with a later due time (``due``: a message's deliverAt)."""

    @property
    def left_pending(self) -> int:
        """Rows written pending, for any worker to claim."""
        return len(self._left)

    @property
    def left_for(self) -> set[str]:
        """The endpoints those pending rows belong to."""
        return set(self._left)

    def mark(self) -> tuple[int, int]:
        """A point to return to if the request being written is rolled back."""
        return len(self.claimed), len(self._left)

    def undo(self, mark: tuple[int, int]) -> None:
        claimed_before, pending_before = mark
        if self.offer is not None:
            for item in self.claimed[claimed_before:]:
                self.offer.admission.give_back(item.endpoint.id)
        del self.claimed[claimed_before:]
        del self._left[pending_before:]

    def _delivery_id(self) -> str:
        if not self._unused_ids:
            self._unused_ids = ids.new_ids(ids.DELIVERY, _IDS_PER_RUN)
            self._unused_ids.reverse()
        return self._unused_ids.pop()

    def split(
        self, msg: Message, targets: Sequence[Endpoint], now_ms: int
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
        """Parameters of the delivery rows to write pending, of those leased to the offer,
        and of those written pending in an ordered endpoint's sequence (``ordering_key``)."""
        pending: list[dict[str, Any]] = []
        leased: list[dict[str, Any]] = []
        ordered: list[dict[str, Any]] = []
        offer = self.offer
        due = None if msg.deliver_at is None else to_ms(msg.deliver_at)
        if due is not None and due <= now_ms:
            due = None
        for endpoint in targets:
            params: dict[str, Any] = {
                "id": self._delivery_id(),
                "app_id": msg.app_id,
                "msg_id": msg.id,
                "endpoint_id": endpoint.id,
                "now": now_ms,
            }
            if not may_hand_over(endpoint):
                params["ordering_key"] = sequence_of(endpoint, msg)
                if due is not None:
                    params["due"] = due
                ordered.append(params)
                self._left.append(endpoint.id)
            elif due is not None:
                # Not due yet: no worker may take it before then, the local one included.
                params["due"] = due
                pending.append(params)
                self.scheduled += 1
            elif offer is not None and offer.admission.take(endpoint.id):
                params["lease_token"] = offer.lease_token
                params["lease_until"] = self.lease_until_ms
                params["worker_id"] = offer.worker_id
                leased.append(params)
                self.claimed.append(
                    ClaimedDelivery(
                        delivery_id=params["id"],
                        lease_token=offer.lease_token,
                        attempt_count=0,
                        trigger=AttemptTrigger.SCHEDULED,
                        message=msg,
                        endpoint=endpoint,
                    )
                )
            else:
                pending.append(params)
                self._left.append(endpoint.id)
        return pending, leased, ordered
