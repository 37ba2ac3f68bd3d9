"""Delivery-policy scenarios of `make bench`: a rate limit across two workers, and fairness
between applications during one application's burst.

- **rate limit** (`--scenarios ratelimit`): PostgreSQL, one API and two `worker` processes,
  one endpoint (a `Probe` route that notes each arrival) and a backlog larger than 30 s at
  the limit. With `throttleRate` 100 the delivered rate over 30 s and the busiest one-second
  window are measured; beside it, the same run without a limit.
- **fairness** (`--scenarios fairness`): on SQLite `serve`, and on PostgreSQL with one API
  and two workers (no hand-over there: every delivery is claimed), application A publishes
  a burst of 100,000 messages over ten endpoints (nginx; one event type each, so one
  delivery per message), while application B publishes 10 messages a second to its own
  endpoint (a `Probe`); B's publish-to-receipt latency is measured while A's burst drains.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import asyncpg

from bench import run as core
from bench.load import h2load
from bench.probe import Probe
from bench.receiver import Nginx

RATE = 100
RATE_SECONDS = 30.0
BURST_ENDPOINTS = 10
FAIRNESS_RATE = 10.0
"""Application B's messages per second during the burst."""
BURST_SECONDS = 30.0
"""How long B publishes for: about as long as A's burst takes to drain."""


@contextlib.asynccontextmanager
async def deployment(work: Path, workers: int) -> AsyncIterator[str]:
    """``serve`` on a fresh SQLite file (``workers`` 0), or ``serve --no-worker`` and
    ``workers`` worker processes on a fresh PostgreSQL database; the API's URL."""
    if workers == 0:
        env = {"HOOKLINE_DATABASE_URL": f"sqlite:///{work / uuid.uuid4().hex[:8]}.db"}
        proc = core.Hookline(["serve"], env, work / "hookline.log", core.free_port()).start()
        try:
            yield proc.url
        finally:
            proc.stop()
        return
    name = f"hookline_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(core.PG_ADMIN_URL)
    await admin.execute(f'CREATE DATABASE "{name}"')
    env = {"HOOKLINE_DATABASE_URL": core.PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name}
    procs: list[core.Hookline] = []
    try:
        api = core.Hookline(["serve", "--no-worker"], env, work / "hookline.log", core.free_port())
        procs.append(api.start())
        procs += [
            core.Hookline(["worker"], env, work / "hookline.log").start(wait_http=False)
            for _ in range(workers)
        ]
        yield api.url
    finally:
        for proc in procs:
            proc.stop()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def _where(workers: int) -> str:
    return "SQLite serve" if workers == 0 else f"PostgreSQL, 1 API + {workers} workers"


async def _post(session: aiohttp.ClientSession, url: str, body: dict[str, object]) -> str:
    async with session.post(url, json=body) as r:
        if r.status != 201:
            raise RuntimeError(await r.text())
        return str((await r.json())["id"])


async def _app(base_url: str, endpoints: list[dict[str, object]]) -> str:
    """An application with the given endpoint bodies; its id."""
    async with aiohttp.ClientSession(headers={"authorization": f"Bearer {core.TOKEN}"}) as s:
        app_id = await _post(s, f"{base_url}/api/v1/app", {"name": "bench"})
        for body in endpoints:
            await _post(s, f"{base_url}/api/v1/app/{app_id}/endpoint", body)
    return app_id


def busiest_second(times: list[float]) -> int:
    """The most arrivals in any one-second window that starts at an arrival."""
    ordered = sorted(times)
    best, end = 0, 0
    for start, t in enumerate(ordered):
        while end < len(ordered) and ordered[end] < t + 1.0:
            end += 1
        best = max(best, end - start)
    return best


# -- rate limit ---------------------------------------------------------------------------


async def rate_limit_postgres(work: Path, limit: int | None) -> core.Result:
    """Two workers, one endpoint limited to ``limit``/s (or not): the delivered rate over
    30 s from the first arrival, and the busiest second."""
    probe = await Probe(core.free_port()).start()
    count = int(RATE * (RATE_SECONDS + 5))
    try:
        async with deployment(work, 2) as api_url:
            await _run_rate(api_url, probe, limit, count)
    finally:
        await probe.stop()
    first = probe.arrivals[0]
    window = [t for t in probe.arrivals if t < first + RATE_SECONDS]
    seconds = RATE_SECONDS if limit is not None else max(window) - first
    rate = len(window) / seconds
    busiest = busiest_second(window)
    figures: dict[str, float] = {"delivered/s": rate, "busiest 1 s": busiest}
    if limit is not None:
        figures["error %"] = 100 * (rate - limit) / limit
        figures["busiest 1 s over %"] = 100 * (busiest - limit) / limit
    label = f"throttleRate {limit}" if limit is not None else "no limit"
    return core.Result(f"rate limit, {_where(2)}, {label}, {count} messages", figures, rate)


async def _run_rate(api_url: str, probe: Probe, limit: int | None, count: int) -> None:
    app_id = await _app(api_url, [{"url": probe.url("tick"), "throttleRate": limit}])
    await core.publish_load(api_url, app_id, count)
    deadline = time.monotonic() + RATE_SECONDS + 60
    while len(probe.arrivals) < count and time.monotonic() < deadline:
        first = probe.arrivals[0] if probe.arrivals else None
        if first is not None and time.time() > first + RATE_SECONDS + 1:
            break
        await asyncio.sleep(0.1)


# -- fairness -----------------------------------------------------------------------------


async def fairness(nginx: Nginx, work: Path, burst: int, workers: int) -> core.Result:
    """B's latency while A's burst of ``burst`` messages drains."""
    probe = await Probe(core.free_port()).start()
    b_count = int(FAIRNESS_RATE * BURST_SECONDS)
    try:
        async with deployment(work, workers) as api_url:
            publisher = core.Publisher([api_url], "")
            drained = await _run_fairness(api_url, nginx, probe, publisher, burst, b_count)
    finally:
        await probe.stop()
    waits = [probe.received_at[i] - publisher.sent_at[i] for i in range(b_count)]
    return core.Result(
        f"fairness, {_where(workers)}: B at {FAIRNESS_RATE:.0f} msg/s during A's "
        f"{burst:,}-message burst over {BURST_ENDPOINTS} endpoints",
        {
            "B p50 ms": core.percentile(waits, 0.50) * 1000,
            "B p99 ms": core.percentile(waits, 0.99) * 1000,
            "B max ms": max(waits) * 1000,
            "B messages": b_count,
            "A deliveries/s": drained,
        },
        drained,
    )


async def _run_fairness(
    api_url: str, nginx: Nginx, probe: Probe, publisher: core.Publisher, burst: int, b_count: int
) -> float:
    """Publish A's burst and, a second into it, B's steady messages; A's delivery rate."""
    types = [f"burst.e{n}" for n in range(BURST_ENDPOINTS)]
    headers = {"authorization": f"Bearer {core.TOKEN}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        for name in types:
            body = {"name": name, "description": name}
            async with session.post(f"{api_url}/api/v1/event-type", json=body) as r:
                await r.read()
    app_a = await _app(api_url, [{"url": nginx.url, "filterTypes": [t]} for t in types])
    publisher.app_id = await _app(api_url, [{"url": probe.url("rx")}])
    receipts = nginx.receipts()
    started = time.perf_counter()
    burst_task = asyncio.gather(
        *(_burst(api_url, app_a, name, burst // BURST_ENDPOINTS) for name in types)
    )
    await asyncio.sleep(1.0)
    await publisher.run(b_count, rate=FAIRNESS_RATE)
    await burst_task
    done, _ = await core.last_receipt(receipts, burst)

    async def received() -> int:
        return len(probe.received_at)

    await core.wait_for(received, b_count, timeout=300)
    return burst / (done - started)


async def _burst(base_url: str, app_id: str, event_type: str, count: int) -> None:
    body = json.dumps({"eventType": event_type, "payload": core.PAYLOAD}).encode()
    headers = {"authorization": f"Bearer {core.TOKEN}", "content-type": "application/json"}
    url = f"{base_url}/api/v1/app/{app_id}/msg"
    load = await h2load(url, count, body, headers, connections=6)
    if load.accepted != count:
        raise RuntimeError(f"only {load.accepted} of {count} publishes were accepted")
