"""How often a caller of the API may be answered: the generic cell rate algorithm (GCRA).

Not to be confused with ``ratelimit.py``, which paces deliveries *to* endpoints. This one
protects the API *from* its callers (docs/security.md, "Abuse limits"). GCRA keeps one
number per key, the theoretical arrival time (TAT) of the next request at the sustained
rate; a request is admitted while the TAT runs ahead of now by less than the burst, and
each admitted request moves it on by one interval. It is a token bucket without the
refill arithmetic, so a check is a comparison and an addition.

Time comes from the caller (monotonic seconds); nothing here sleeps or reads a clock.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass

MAX_KEYS = 100_000
"""Keys a ``Throttle`` remembers. Past it, keys whose debt is paid are forgotten (they are
the same as absent), and if none is, the oldest: memory stays bounded whatever the
number of addresses or tokens an attacker brings."""
IPV6_PREFIX = 64
"""An IPv6 client is counted by its /64: one host commonly holds the whole prefix, so
counting single addresses would hand an attacker 2^64 budgets."""


@dataclass(frozen=True, slots=True)
class Rate:
    """A sustained rate and the burst allowed on top of it."""

    per_second: float
    burst: int

    def __post_init__(self) -> None:
        if self.per_second <= 0 or not math.isfinite(self.per_second):
            raise ValueError("a rate must be a positive number of requests per second")
        if self.burst < 1:
            raise ValueError("a burst must allow at least one request")

    @classmethod
    def of(cls, per_second: float, burst_seconds: float) -> Rate | None:
        """The rate ``per_second`` with ``burst_seconds`` of it allowed at once (at least
        one request); None for 0, which means no limit."""
        if per_second <= 0:
            return None
        return cls(per_second, max(1, math.floor(per_second * burst_seconds)))

    @property
    def interval(self) -> float:
        return 1.0 / self.per_second


def retry_after(tat: float, now: float, rate: Rate) -> float:
    """Seconds until one more request fits under ``rate``, given the stored ``tat``; 0
    when one fits now."""
    interval = rate.interval
    return max(0.0, max(tat, now) + interval - rate.burst * interval - now)


class Throttle:
    """One rate applied separately to each key (a token, an address), in memory.

    ``take`` admits and counts a request; ``charge`` counts one that was admitted
    elsewhere (a failed authentication); ``wait`` says how long a key must wait without
    counting anything.
    """

    def __init__(self, rate: Rate, max_keys: int = MAX_KEYS) -> None:
        self.rate = rate
        self._max_keys = max_keys
        self._tats: dict[str, float] = {}

    def wait(self, key: str, now: float) -> float:
        """Seconds before ``key`` may make a request; 0 if it may now."""
        tat = self._tats.get(key)
        return 0.0 if tat is None else retry_after(tat, now, self.rate)

    def take(self, key: str, now: float) -> float:
        """Admit and count a request of ``key`` (0), or refuse it without counting it and
        say how many seconds to wait."""
        waited = self.wait(key, now)
        if waited > 0:
            return waited
        self.charge(key, now)
        return 0.0

    def charge(self, key: str, now: float) -> None:
        """Count a request of ``key`` whatever its debt."""
        tats = self._tats
        tat = tats.pop(key, None)
        if tat is None and len(tats) >= self._max_keys:
            self._forget(now)
        tats[key] = max(now if tat is None else tat, now) + self.rate.interval

    def __len__(self) -> int:
        return len(self._tats)

    def _forget(self, now: float) -> None:
        """Make room: drop the keys whose debt is paid, or else the least recently charged."""
        tats = self._tats
        paid = [key for key, tat in tats.items() if tat <= now]
        for key in paid:
            del tats[key]
        if len(tats) >= self._max_keys:
            del tats[next(iter(tats))]


def address_key(address: str) -> str:
    """The key a client address is counted under: itself for IPv4, its /64 for IPv6 (an
    IPv4-mapped IPv6 address counts as the IPv4 one)."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.ip_network(f"{parsed}/{IPV6_PREFIX}", strict=False))
    return str(parsed)
