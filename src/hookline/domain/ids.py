"""Prefixed, time-sortable ids in Svix's style (``msg_2Nq…``).

The body is a millisecond KSUID (27 base62 characters) laid out exactly as ``svix-ksuid``'s
``KsuidMs``, so ids sort by creation time as plain strings: lists paginate on the primary
key and ``before``/``after`` filters become key ranges. The encoder is our own because
``KsuidMs`` costs a system call and several objects per id on the ingest path; the unit
tests decode our ids with ``svix-ksuid`` to keep the two byte-identical.
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

# The alphabet is in ASCII order, so comparing encoded strings compares the numbers.
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_BODY_CHARS = 27
# KsuidMs layout: 4 bytes of seconds since the KSUID epoch, 1 byte of milliseconds / 4,
# then 15 random bytes (segmentio/ksuid's epoch 1400000000, as in svix-ksuid).
_KSUID_EPOCH_MS = 1_400_000_000_000
_PAYLOAD_BITS = 120
_TIME_BITS = 40
_MS_PER_TICK = 4
# Sorts after every real id: the floor for a time past the KSUID range (year 2150).

_clock_ns = time.time_ns
# Ids are public names, not secrets: a PRNG seeded from the OS is unique enough (120
# random bits per id) and several times cheaper than a system call per id.
_random = random.Random(os.urandom(32))
_lock = threading.Lock()
_last = 0


def _after_fork_in_child() -> None:
    """A forked worker must not replay its parent's random stream, or both mint equal ids."""
    global _random, _lock
    _random = random.Random(os.urandom(32))
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _time_part(unix_ms: int) -> int:
    seconds, millis = divmod(unix_ms - _KSUID_EPOCH_MS, 1000)
    return (seconds << 8) | (millis // _MS_PER_TICK)


def _next_value() -> int:
    """A KsuidMs as an integer, bumped past the last one if the clock stalled or stepped back."""
    global _last
    time_part = _time_part(_clock_ns() // 1_000_000)
    with _lock:
        value = (time_part << _PAYLOAD_BITS) | _random.getrandbits(_PAYLOAD_BITS)
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
