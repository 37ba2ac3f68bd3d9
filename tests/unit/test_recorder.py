"""The recorder: a worker's results written in batches, each retried until it lands."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import cast

import pytest

from hookline.delivery import recorder as recorder_module
from hookline.delivery.recorder import Recorder
from hookline.domain.breaker import CircuitState
from hookline.domain.errors import Unavailable
from hookline.domain.models import AttemptTrigger, ClaimedDelivery
from hookline.storage.base import AttemptOutcome, Deferral, Store
from tests.conftest import make_app, make_endpoint, make_message, utcnow


@dataclass
class FlakyStore:
    """Records what is written; refuses the first ``refusals`` circuit writes."""

    refusals: int = 0
    deferred: list[Deferral] = field(default_factory=list)
    circuits: list[tuple[str, CircuitState | None]] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)

    async def complete(self, outcomes: Sequence[AttemptOutcome]) -> None:
        self.calls.append("complete")

    async def defer(self, deferrals: Sequence[Deferral], now: datetime) -> None:
        self.calls.append("defer")
        self.deferred += deferrals

    async def save_circuit(self, endpoint_id: str, state: CircuitState | None) -> None:
        self.calls.append("save_circuit")
        if self.refusals:
            self.refusals -= 1
            raise Unavailable("the database is restarting")
        self.circuits.append((endpoint_id, state))


def deferral() -> Deferral:
    app = make_app()
    claimed = ClaimedDelivery(
        delivery_id="dlv_1",
        lease_token="lease",
        attempt_count=0,
        trigger=AttemptTrigger.SCHEDULED,
        message=make_message(app),
        endpoint=make_endpoint(app),
    )
    return Deferral(claimed, utcnow() + timedelta(seconds=5))


@pytest.fixture(autouse=True)
def no_retry_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(recorder_module, "STORE_RETRY_SECONDS", 0.0)


async def test_queued_results_and_circuit_changes_are_written_in_order() -> None:
    """A deferral and two circuit changes queued before the recorder runs are written in one
    batch: the deferral, then each change in the order the breaker made them."""
    store = FlakyStore()
    recorder = Recorder(cast(Store, store), utcnow, lambda: None)
    held = deferral()
    opened = CircuitState(failures=5, open_until=100.0, cooldown=5.0)
    recorder.put(held)
    recorder.save_circuit("ep", opened)
    recorder.save_circuit("ep", None)
    recorder.close()
    await recorder.run()
    assert store.deferred == [held]
    assert store.circuits == [("ep", opened), ("ep", None)]


async def test_a_refused_circuit_write_is_retried_without_writing_the_rest_again() -> None:
    """When the store refuses a circuit change, the batch is retried from that change: what
    already landed (the deferral, earlier changes) is not written twice, nothing is lost."""
    store = FlakyStore(refusals=2)
    recorder = Recorder(cast(Store, store), utcnow, lambda: None)
    recorder.put(deferral())
    recorder.save_circuit("ep", CircuitState(5, 100.0, 5.0))
    recorder.close()
    await recorder.run()
    assert store.calls == ["defer", "save_circuit", "save_circuit", "save_circuit"]
    assert store.circuits == [("ep", CircuitState(5, 100.0, 5.0))]
