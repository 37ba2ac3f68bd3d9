"""Prefixed, time-sortable ids in Svix's style (``msg_2Nq…``).

The body is a millisecond KSUID (27 base62 characters), so ids sort by creation time as
plain strings: lists paginate on the primary key and ``before``/``after`` filters become
key ranges. Within one process ids are strictly increasing even inside one millisecond.
"""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime

from ksuid import KsuidMs

APP = "app"
ENDPOINT = "ep"
MESSAGE = "msg"
ATTEMPT = "atmpt"
DELIVERY = "dlv"
TOKEN = "tok"
TASK = "qtask"
WORKER = "wrk"

_BODY = re.compile(r"^[0-9A-Za-z]{27}$")
_ID_BYTES = 20
_PAYLOAD_BYTES = 15

_lock = threading.Lock()
_last = b""


def _next_raw() -> bytes:
    """A new KSUID's bytes, bumped past the previous one when the clock has not moved on."""
    global _last
    raw = bytes(KsuidMs())
    with _lock:
        if raw <= _last:
            raw = (int.from_bytes(_last, "big") + 1).to_bytes(_ID_BYTES, "big")
        _last = raw
    return raw


def new_id(prefix: str) -> str:
    return f"{prefix}_{KsuidMs.from_bytes(_next_raw())}"


def looks_like_id(prefix: str, value: str) -> bool:
    """True for ``<prefix>_`` plus a KSUID body: how a path parameter is told from a uid."""
    head, sep, body = value.partition("_")
    return bool(sep) and head == prefix and bool(_BODY.match(body))


def id_timestamp(id_: str) -> datetime:
    """When the id was made (to the KSUID's 4 ms resolution), in UTC."""
    body = id_.rpartition("_")[2]
    return KsuidMs.from_base62(body).datetime.astimezone(UTC)


def id_floor(prefix: str, at: datetime) -> str:
    """The smallest possible id of ``prefix`` made at or after ``at``."""
    floor = KsuidMs(at.astimezone(UTC), bytes(_PAYLOAD_BYTES))
    return f"{prefix}_{floor}"
