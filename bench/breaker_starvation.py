"""How long 60 messages take to reach an endpoint that fails two of every three attempts.

A burst of mixed answers must not starve an endpoint that still succeeds often (issue 13,
item 3). This runs the real worker on a temporary SQLite store with an in-process receiver
(``hookline.testing.MockTransport``) that answers 503 to two requests in three, with the
retry schedule shortened to one second per retry (twenty of them, so nothing is exhausted),
under several breaker settings, and prints, for each, the seconds until all 60 were
delivered and the attempts spent. The figures chose the defaults (docs/delivery.md).

    .venv/bin/python -m bench.breaker_starvation
"""

from __future__ import annotations

import asyncio
import random
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from hookline.delivery.worker import Worker, WorkerConfig
from hookline.domain import ids
from hookline.domain.breaker import BreakerSettings
from hookline.domain.clock import utcnow
from hookline.domain.models import Application, Endpoint, Message, SigningKey
from hookline.domain.retry import RetrySchedule
from hookline.domain.signing import generate_secret
from hookline.storage.sqlite import SqliteStore
from hookline.testing import MockRequest, MockTransport, answer
from hookline.transport import HttpResult

MESSAGES = 60
RETRY = RetrySchedule((1.0,) * 20)
DEADLINE_SECONDS = 60.0


@dataclass
class TwoInThree:
    """Fails two requests in three: in turn (fail, fail, succeed), or at random."""

    shuffled: bool
    requests: int = 0
    rng: random.Random = random.Random(13)

    def __call__(self, request: MockRequest) -> HttpResult:
        self.requests += 1
        failed = self.rng.random() < 2 / 3 if self.shuffled else self.requests % 3 != 0
        return answer(503 if failed else 200)


async def run(settings: BreakerSettings, shuffled: bool) -> tuple[float, int, int]:
    """Seconds until all MESSAGES were delivered (or the deadline), the messages delivered
    by then, and the attempts that took."""
    with tempfile.TemporaryDirectory(prefix="hookline-bench-breaker-") as work:
        store = SqliteStore(str(Path(work) / "hookline.db"))
        await store.open()
        now = utcnow()
        app = Application(ids.new_id(ids.APP), "bench", None, None, {}, now, now)
        endpoint = Endpoint(
            ids.new_id(ids.ENDPOINT),
            app.id,
            "https://receiver.example/hook",
            None,
            "",
            None,
            False,
            None,
            None,
            {},
            {},
            (SigningKey(generate_secret()),),
            now,
            now,
        )
        await store.create_application(app)
        await store.create_endpoint(endpoint)
        receiver = TwoInThree(shuffled)
        config = WorkerConfig(
            retry_schedule=RETRY,
            request_timeout=5.0,
            lease_seconds=30.0,
            poll_interval=0.05,
            max_in_flight=256,
            breaker=settings,
        )
        worker = Worker(store, MockTransport(receiver), config)
        task = asyncio.create_task(worker.run())
        messages = [
            Message(ids.new_id(ids.MESSAGE), app.id, "bench", None, b"{}", None, None, utcnow())
            for _ in range(MESSAGES)
        ]
        started = time.monotonic()
        await store.publish(messages, utcnow())
        delivered = 0
        while time.monotonic() - started < DEADLINE_SECONDS and delivered < MESSAGES:
            await asyncio.sleep(0.05)
            delivered = (await store.endpoint_stats(app.id, endpoint.id)).success
        elapsed = time.monotonic() - started
        worker.stop()
        await task
        await store.close()
        return elapsed, delivered, receiver.requests


SETTINGS = {
    "defaults (threshold 20, ratio 0.9 over 60 s, min 20, cooldown 5 s)": BreakerSettings(),
    "threshold 5 (the former default)": BreakerSettings(threshold=5),
    "ratio 0.5 (the usual choice elsewhere)": BreakerSettings(failure_ratio=0.5),
    "no breaker (threshold and ratio out of reach)": BreakerSettings(
        threshold=1_000_000, failure_ratio=1.0, min_attempts=1_000_000
    ),
}


async def main() -> None:
    print(f"{MESSAGES} messages to an endpoint failing 2 attempts in 3, retries every 1 s")
    for shuffled in (False, True):
        pattern = "at random (p = 2/3)" if shuffled else "in turn (fail, fail, succeed)"
        print(f"\nfailures {pattern}")
        for name, settings in SETTINGS.items():
            seconds, delivered, attempts = await run(settings, shuffled)
            print(f"  {name:<66} {delivered:2d} in {seconds:5.1f} s, {attempts:4d} attempts")


if __name__ == "__main__":
    asyncio.run(main())
