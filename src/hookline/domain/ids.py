"""Prefixed, time-sortable ids in Svix's style (``msg_2Nq…``).

The body is a millisecond KSUID (27 base62 characters) laid out exactly as ``svix-ksuid``'s
``KsuidMs``, so ids sort by creation time as plain strings: lists paginate on the primary
key and ``before``/``after`` filters become key ranges. The encoder is our own because
``KsuidMs`` costs a system call and several objects per id on the ingest path; the unit
tests decode our ids with ``svix-ksuid`` to keep the two byte-identical.

A publish mints one delivery id per endpoint while it holds the database's write lock, so
``new_ids`` reserves a run of consecutive values at once and spells each after the first
by incrementing the previous string, a few times cheaper than encoding every value.
"""

from __future__ import annotations

import itertools
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
AUDIT = "audit"
ANOMALY = "anom"
FAILURE_GROUP = "fgrp"

# The alphabet is in ASCII order, so comparing encoded strings compares the numbers.
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_PAIRS = [a + b for a in _BASE62 for b in _BASE62]
_NEXT_DIGIT = dict(itertools.pairwise(_BASE62))
# 27 digits are three chunks of nine, and nine digits one digit and four pairs; a chunk
# fits a machine word, so only the first two divisions work on the full 160-bit value.
_CHUNK = 62**9
# KsuidMs layout: 4 bytes of seconds since the KSUID epoch, 1 byte of milliseconds / 4,
# then 15 random bytes (segmentio/ksuid's epoch 1400000000, as in svix-ksuid).
_KSUID_EPOCH_MS = 1_400_000_000_000
_PAYLOAD_BITS = 120
_MS_PER_TICK = 4

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


def _next_value(count: int = 1) -> int:
    """A KsuidMs as an integer, bumped past the last one if the clock stalled or stepped back;
    the ``count - 1`` values after it are reserved for the caller."""
    global _last
    time_part = _time_part(_clock_ns() // 1_000_000)
    with _lock:
        value = (time_part << _PAYLOAD_BITS) | _random.getrandbits(_PAYLOAD_BITS)
        if value <= _last:
            value = _last + 1
        _last = value + count - 1
    return value


def _base62(value: int) -> str:
    high, rest = divmod(value, _CHUNK * _CHUNK)
    middle, low = divmod(rest, _CHUNK)
    return _nine(high) + _nine(middle) + _nine(low)


def _nine(chunk: int) -> str:
    first, rest = divmod(chunk, 3844**4)
    a, rest = divmod(rest, 3844**3)
    b, rest = divmod(rest, 3844**2)
    c, d = divmod(rest, 3844)
    return _BASE62[first] + _PAIRS[a] + _PAIRS[b] + _PAIRS[c] + _PAIRS[d]


def _increment(body: str) -> str:
    """The encoding of one more than ``body``'s value (which is never all ``z``)."""
    end = len(body) - 1
    while body[end] == "z":
        end -= 1
    return body[:end] + _NEXT_DIGIT[body[end]] + "0" * (len(body) - 1 - end)


def new_id(prefix: str) -> str:
    return f"{prefix}_{_base62(_next_value())}"


def new_ids(prefix: str, count: int) -> list[str]:
    """``count`` ids in increasing order, as ``new_id`` called that many times would mint."""
    if count <= 0:
        return []
    body = _base62(_next_value(count))
    minted = [f"{prefix}_{body}"]
    for _ in range(count - 1):
        body = _increment(body)
        minted.append(f"{prefix}_{body}")
    return minted


def first_id_at(prefix: str, unix_ms: int) -> str:
    """The smallest id of ``prefix`` minted at ``unix_ms`` or later: ids minted earlier sort
    below it, since the time leads the id (to the 4 ms tick) and the rest is random."""
    return f"{prefix}_{_base62(_time_part(unix_ms) << _PAYLOAD_BITS)}"
