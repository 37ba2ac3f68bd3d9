"""What both dialects' pruners share: reading a scanned batch (``prune_scan``).

A pruning batch scans the next messages by primary key, below the first id minted at the
horizon; of those, a message created before the horizon is removed with its deliveries and
attempts unless one of its deliveries is pending or sending, in which case it is held: kept
whole, and counted, so an operator can see what the horizon could not remove
(docs/delivery.md#retention).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hookline.domain.retention import first_message_id
from hookline.storage import rows
from hookline.storage.base import PruneBatch


@dataclass(frozen=True, slots=True)
class Scanned:
    """One scanned batch: the messages to remove, how many are held, where it ended."""

    removable: list[str]
    held: int
    scanned_to: str | None


def scan_params(before: datetime, after_id: str, limit: int) -> dict[str, Any]:
    return {
        "before": rows.to_ms(before),
        "before_id": first_message_id(before),
        "after_id": after_id,
        "limit": limit,
    }


def read_scan(found: Sequence[Any], limit: int) -> Scanned:
    """A batch shorter than ``limit`` reached the horizon: the next one has nothing to do."""
    removable = [r["id"] for r in found if r["expired"] and not r["held"]]
    held = sum(1 for r in found if r["expired"] and r["held"])
    scanned_to = found[-1]["id"] if len(found) == limit else None
    return Scanned(removable, held, scanned_to)


def batch(scanned: Scanned, messages: int, deliveries: int, attempts: int) -> PruneBatch:
    return PruneBatch(scanned.scanned_to, messages, deliveries, attempts, scanned.held)
