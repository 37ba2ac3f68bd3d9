"""The group-commit parameters: a batch routed and turned into one JSON array per kind of row.

Everything here runs before the write lock is taken when the routes are cached, so the
lock is held for the statement alone. Rows follow ``layout.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from hookline.storage import rows
from hookline.storage.base import AttemptOutcome
from hookline.storage.group_commit import PendingPublish, Routed, route_batch
from hookline.storage.handoff import DeliveryRows
from hookline.storage.sqlite.group_commit import fixed_width
from hookline.storage.sqlite.group_commit.layout import (
    COMPLETION,
    DISABLED,
    FALLBACK,
    MESSAGE,
    ROLLUP,
    STOOD_IN,
)
from hookline.storage.sqlite.group_commit.routes import Routes

_MESSAGE_ROW = MESSAGE.values
_COMPLETION_ROW = COMPLETION.values
_DISABLED_ROW = DISABLED.values
_FALLBACK_ROW = FALLBACK.values
_STOOD_IN_ROW = STOOD_IN.values
_ROLLUP_ROW = ROLLUP.values


@dataclass(frozen=True, slots=True)
class Records:
    """Attempt outcomes as the kinds of group-commit rows that record them, and the free text
    those rows point into."""

    sections: dict[str, list[Any]]
    texts: bytes


def records(outcomes: Sequence[AttemptOutcome]) -> Records:
    texts = fixed_width.Texts()
    sections: dict[str, list[Any]] = {
        "attempts": [fixed_width.attempt(o.attempt, texts) for o in outcomes],
        "finished": [fixed_width.finished(o) for o in outcomes],
        "disabled": [
            _DISABLED_ROW(
                {"endpoint_id": o.claimed.endpoint.id, "now": rows.to_ms(o.attempt.timestamp)}
            )
            for o in outcomes
            if o.disable_endpoint
        ],
        # Fallback destinations (docs/delivery.md): rare, so plain JSON rows.
        "fallbacks": [
            _FALLBACK_ROW(rows.fallback_params(o.fallback)) for o in outcomes if o.fallback
        ],
        "stood_in": [
            _STOOD_IN_ROW(rows.stood_in_params(o)) for o in outcomes if o.attempt.fallback_for
        ],
        "rollups": [_ROLLUP_ROW(r) for r in rows.rollup_params(outcomes)],
    }
    return Records(sections, texts.blob())


NO_RECORDS = Records(
    {
        "attempts": [],
        "finished": [],
        "disabled": [],
        "fallbacks": [],
        "stood_in": [],
        "rollups": [],
    },
    b"",
)


def build(
    batch: Sequence[PendingPublish],
    deliveries: DeliveryRows,
    records: Records,
    routes: Routes,
) -> tuple[list[Routed], dict[str, Any]]:
    """Route the batch (``route_batch``) and build the parameters of ``group_commit``: the
    document, the payloads and idempotent responses concatenated, the attempts' texts, and
    what every delivery row of the commit shares (its time and the worker's lease)."""
    routed_all, pending, leased, ordered = route_batch(batch, routes.by_app, deliveries)
    messages: list[tuple[Any, ...]] = []
    now_ms: int | None = None
    completions: list[tuple[Any, ...]] = []
    blobs: list[bytes] = []
    """Payloads and idempotent responses, concatenated; rows point into them."""
    at = 1  # substr() counts from 1
    for request in batch:
        for msg in request.messages:
            params = rows.message_params(msg)
            payload = params.pop("payload")
            params["payload_at"] = params["payload_size"] = None
            if payload is not None:
                params["payload_at"] = at
                params["payload_size"] = len(payload)
                at += len(payload)
                blobs.append(payload)
            messages.append(_MESSAGE_ROW(params))
        if now_ms is None or request.now_ms > now_ms:
            now_ms = request.now_ms
        if request.completion is not None:
            completion = rows.completion_params(request.completion)
            body = completion.pop("body")
            completion["body_at"] = at
            completion["body_size"] = len(body)
            at += len(body)
            blobs.append(body)
            completions.append(_COMPLETION_ROW(completion))
    scheduled: list[str] = []
    if deliveries.scheduled:
        scheduled = [fixed_width.scheduled(p) for p in pending if "due" in p]
        pending = [p for p in pending if "due" not in p]
    sections = {
        "messages": messages,
        "pending": list(map(fixed_width.delivery, pending)),
        "scheduled": scheduled,
        "leased": list(map(fixed_width.delivery, leased)),
        "ordered": list(map(fixed_width.ordered, ordered)),
        "completions": completions,
        **records.sections,
    }
    offer = deliveries.offer
    return routed_all, {
        # One array per kind of row, NULL for none: the statement parses each on its own.
        **{name: orjson.dumps(rows) if rows else None for name, rows in sections.items()},
        "version": routes.version,
        "payloads": b"".join(blobs),
        "texts": records.texts,
        "now": now_ms,
        "lease_token": offer.lease_token if offer is not None else None,
        "lease_until": deliveries.lease_until_ms,
        "worker_id": offer.worker_id if offer is not None else None,
    }
