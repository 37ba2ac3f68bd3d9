"""``EndpointStates``: which endpoints a worker must not start attempts for (disabled).

A disable must stop attempts that a worker already holds in memory (claimed or handed over
before it): the claim and the hand-over only ever take enabled endpoints, so what is held is
the only exposure. Every attempt asks ``blocks`` just before it is sent, a dictionary lookup.
What this worker learns comes, newest first by the endpoint row's ``version`` (which every
writer moves), from: the operation that changed the endpoint in this process (told before it
answers), this worker's own 410 disable, PostgreSQL's notifications from any process, each
claimed delivery's endpoint as the claim read it, and each heartbeat's read of the endpoints it
holds (a notification lost with its connection). Ordering by version makes a late, older
observation (a heartbeat read that crossed a notification) harmless.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from hookline.domain.models import Endpoint


class EndpointStates:
    """The newest (version, disabled) this worker has seen of each endpoint."""

    def __init__(self) -> None:
        self._known: dict[str, tuple[int, bool]] = {}

    def observe(self, endpoint_id: str, version: int, disabled: bool) -> None:
        known = self._known.get(endpoint_id)
        if known is None or version > known[0]:
            self._known[endpoint_id] = (version, disabled)

    def observe_all(self, states: Mapping[str, tuple[int, bool]]) -> None:
        for endpoint_id, (version, disabled) in states.items():
            self.observe(endpoint_id, version, disabled)

    def blocks(self, endpoint: Endpoint) -> bool:
        """Whether an attempt to ``endpoint`` (as its delivery was read) must not start."""
        known = self._known.get(endpoint.id)
        if known is None or endpoint.version > known[0]:
            return endpoint.disabled
        return known[1]

    def keep_only(self, endpoint_ids: Collection[str]) -> None:
        """Forget endpoints no longer held, except disabled ones (they stay few)."""
        self._known = {
            endpoint_id: state
            for endpoint_id, state in self._known.items()
            if state[1] or endpoint_id in endpoint_ids
        }
