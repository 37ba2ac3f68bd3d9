"""Retention: how long message, delivery and attempt rows are kept (docs/delivery.md).

Pure: a horizon is parsed here and turned into a cut-off from a time the caller gives.
What is removed, and what is kept past the horizon, is decided by the store's pruning
(``Store.prune_batch``): a message is removed only once none of its deliveries can still
be attempted.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from hookline.domain import ids

DEFAULT_RETENTION = "90d"
"""Svix keeps messages and their attempts for 90 days; so does hookline unless told."""
DISABLED = frozenset({"0", "off", "none", "never", "false"})
"""Values that switch pruning off: rows are kept for ever, as before retention existed."""
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*([smhdw]?)", re.ASCII)


def parse_retention(text: str) -> timedelta | None:
    """``90d``, ``12h``, ``30m``, ``45s``, ``2w`` or plain seconds; None for ``0``/``off``.

    A bare number is seconds, as every other duration setting of hookline.
    """
    cleaned = text.strip().lower()
    if cleaned in DISABLED:
        return None
    match = _DURATION.fullmatch(cleaned)
    if match is None:
        raise ValueError("must be a duration such as 90d, 12h, 30m or 45s, or off")
    seconds = float(match.group(1)) * _UNITS[match.group(2) or "s"]
    if seconds <= 0:
        return None
    return timedelta(seconds=seconds)


def format_retention(horizon: timedelta | None) -> str:
    """The horizon as an operator would write it (``90d``, ``12h``), or ``off``."""
    if horizon is None:
        return "off"
    seconds = horizon.total_seconds()
    for unit in ("d", "h", "m"):
        size = _UNITS[unit]
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def cutoff(now: datetime, horizon: timedelta) -> datetime:
    """Rows created before this instant have passed the horizon."""
    return now - horizon


def first_message_id(before: datetime) -> str:
    """The smallest message id minted at ``before``: every message created earlier has a
    smaller one, so pruning walks the primary key instead of an index on ``created_at``."""
    return ids.first_id_at(ids.MESSAGE, int(before.timestamp() * 1000))
