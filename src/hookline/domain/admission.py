"""Per-endpoint admission, the pure rule: how many more of an endpoint's deliveries a worker
may take on, and what a claim and a publish hand-over may therefore take.

A worker holds an endpoint's deliveries in two places: sending (at most ``send_cap`` at once,
the endpoint's gate) and waiting at that gate. ``hold_cap`` bounds the two together, so a
slow endpoint holds a bounded share of the worker's slots. An endpoint whose breaker blocks
has no room at all. What is left, ``room``, is the one number both ways in must respect:

- a claim skips an endpoint that is blocked or already sending at its cap (what it would
  take could only wait at the gate), and takes at most ``send_cap`` of one endpoint, so it
  never goes beyond the room (``hold_cap`` is at least twice ``send_cap``);
- a publish hand-over takes an endpoint's deliveries while there is room, the deliveries
  beyond ``send_cap`` waiting at the gate in memory instead of being written pending and
  claimed back a moment later (docs/performance-decisions.md: claims in a one-endpoint
  run fell from half to about 6 %).

The hand-over decision runs on the store's thread inside the publish transaction, so it gets
an ``AdmissionSnapshot``: the room of every endpoint the worker holds, fixed when the offer
is made, with its own counters.

A rate limit narrows the same room: a worker holds at most ``allowance`` deliveries of a
limited endpoint (``domain/ratelimit.py``: about two seconds' worth at its rate), so the rest
stay in the store for other workers, and what it holds waits for send slots in memory.
``allowances`` is therefore one more input to ``room``, ``plan_claim`` and ``snapshot``: a
claim skips a limited endpoint at its allowance and takes no more than the allowance leaves
(``ClaimPlan.caps``), a hand-over fills no more than it; neither way in can take what the
other would refuse. Ordering is not decided here: which delivery heads its sequence only the
store can tell, so the claim takes heads only and a hand-over never takes an ordered
endpoint's deliveries (``domain/ordering.py``).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

HOLD_FACTOR = 2
"""A worker may hold this many times an endpoint's send cap (sending plus waiting)."""


@dataclass(frozen=True, slots=True)
class EndpointLimits:
    """The per-endpoint bounds of one worker."""

    send_cap: int
    """Attempts to one endpoint at once."""

    @property
    def hold_cap(self) -> int:
        """Deliveries of one endpoint held at once, waiting ones included."""
        return self.send_cap * HOLD_FACTOR

    def room(self, load: int, blocked: bool, allowance: int | None = None) -> int:
        """How many more deliveries of an endpoint holding ``load`` may be taken on; a
        rate-limited endpoint's ``allowance`` lowers the hold cap."""
        if blocked:
            return 0
        cap = self.hold_cap if allowance is None else min(self.hold_cap, allowance)
        return max(0, cap - load)


@dataclass(frozen=True, slots=True)
class ClaimPlan:
    """What a claim asks the store for: endpoints to skip, and most rows of one endpoint."""

    skip: tuple[str, ...]
    per_endpoint: int
    caps: tuple[tuple[str, int], ...] = ()
    """Endpoints of which fewer than ``per_endpoint`` may be taken (rate-limited ones)."""


def plan_claim(
    limits: EndpointLimits,
    loads: Mapping[str, int],
    blocked: Collection[str],
    allowances: Mapping[str, int] | None = None,
) -> ClaimPlan:
    """The claim's side of the decision: it skips an endpoint that is blocked or sending at
    its cap, and takes at most ``send_cap`` of any other, which stays within its room; of a
    rate-limited endpoint, at most what its allowance leaves."""
    skip = {endpoint for endpoint, load in loads.items() if load >= limits.send_cap}
    skip.update(blocked)
    caps: list[tuple[str, int]] = []
    for endpoint, allowance in (allowances or {}).items():
        left = allowance - loads.get(endpoint, 0)
        if left <= 0:
            skip.add(endpoint)
        elif left < limits.send_cap and endpoint not in skip:
            caps.append((endpoint, left))
    return ClaimPlan(tuple(skip), limits.send_cap, tuple(caps))


def snapshot(
    limits: EndpointLimits,
    loads: Mapping[str, int],
    blocked: Iterable[str],
    slots: int,
    allowances: Mapping[str, int] | None = None,
) -> AdmissionSnapshot:
    """The hand-over's side of the decision: the room of every endpoint held, blocked or
    rate-limited now; any other endpoint has a whole ``hold_cap``."""
    held = set(blocked)
    allowed = allowances or {}
    room = {
        endpoint: limits.room(loads.get(endpoint, 0), endpoint in held, allowed.get(endpoint))
        for endpoint in held.union(loads, allowed)
    }
    return AdmissionSnapshot(slots, room, limits.hold_cap)


class AdmissionSnapshot:
    """The room a worker offered one publish transaction, and what that transaction took.

    Made on the event loop, then used only on the store's thread until the commit: nothing
    here is shared with the worker while it runs.
    """

    __slots__ = ("_fresh", "_room", "slots")

    def __init__(self, slots: int, room: dict[str, int], fresh: int) -> None:
        self.slots = slots
        """Deliveries this transaction may still take, across endpoints."""
        self._room = room
        self._fresh = fresh

    def take(self, endpoint_id: str) -> bool:
        """Take one delivery of ``endpoint_id`` if the slots and its room allow."""
        if self.slots <= 0:
            return False
        room = self._room.get(endpoint_id, self._fresh)
        if room <= 0:
            return False
        self._room[endpoint_id] = room - 1
        self.slots -= 1
        return True

    def give_back(self, endpoint_id: str) -> None:
        """Undo one ``take`` (its request was rolled back)."""
        self._room[endpoint_id] += 1
        self.slots += 1
