"""Prefixed, time-sortable ids in Svix's style (``msg_2Nq…``).

The body is a millisecond KSUID (27 base62 characters), so ids sort by creation time as
plain strings and lists paginate on the primary key. Within one process ids are strictly
increasing even inside one millisecond.
"""

from __future__ import annotations

import os
import random
import threading
import time

APP = "app"
ENDPOINT = "ep"
MESSAGE = "msg"
ATTEMPT = "atmpt"
DELIVERY = "dlv"
TOKEN = "tok"
TASK = "qtask"
WORKER = "wrk"


_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_BODY_CHARS = 27
_KSUID_EPOCH_MS = 1_400_000_000_000
# Ids are public names, not secrets: a PRNG seeded from the OS is unique enough (120
# random bits per id) and several times cheaper than a system call per id.
_random = random.Random(os.urandom(32))
_lock = threading.Lock()
_last = 0


def _next_value() -> int:
    """A millisecond KSUID as an integer, bumped past the last one if the clock stood still.

    The layout is ``svix-ksuid``'s ``KsuidMs``: 4 bytes of seconds since its epoch, 1 byte
    of milliseconds / 4, then 15 random bytes.
    """
    global _last
    seconds, millis = divmod(time.time_ns() // 1_000_000 - _KSUID_EPOCH_MS, 1000)
    with _lock:
        value = (((seconds << 8) | (millis // 4)) << 120) | _random.getrandbits(120)
        if value <= _last:
            value = _last + 1
        _last = value
    return value


def _base62(value: int) -> str:
    chars = []
    for _ in range(_BODY_CHARS):
        value, digit = divmod(value, 62)
        chars.append(_BASE62[digit])
    return "".join(reversed(chars))


def new_id(prefix: str) -> str:
    return f"{prefix}_{_base62(_next_value())}"
