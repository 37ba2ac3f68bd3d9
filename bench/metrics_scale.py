"""The metrics-at-scale scenario of `make bench` (`--scenarios metrics-scale`): `GET /metrics`
and the backlog sample behind its queue gauges with 10,000 endpoints and 1,000,000 pending
deliveries (issue 15: a scrape under 100 ms, and bounded in size), on SQLite and on
PostgreSQL, with `HOOKLINE_METRICS=true`.

1. Seeds, straight to the store as the `backlog` scenario does, ``ENDPOINTS_PER_APP``
   endpoints in each of enough applications for the endpoints asked, and messages that fan
   out to every endpoint of their application, as many per endpoint as make the pending
   deliveries asked (100 each at full size). On PostgreSQL it then runs `VACUUM ANALYZE`, as
   autovacuum would after that many inserts (this host's server has it off).
2. Every endpoint points at the probe's `/slow` route, which answers after 10 s: the worker
   keeps running (claims, leases, heartbeats, its background samples) while the backlog
   stays near its size, since it can only drain ``HOOKLINE_MAX_IN_FLIGHT`` (256) deliveries
   per process every 10 s (about 26/s). An address nothing listens on would drain the due
   rows at the rate of refusals into retries scheduled later, and open a breaker per
   endpoint; nginx would drain thousands a second.
3. Starts `hookline serve` (`--processes 1`, then `--processes 2`, then `--no-worker`, the
   scrape without a worker's claims beside it), waits for the first background sample to
   reach the gauges, and scrapes `/metrics` ``SCRAPES`` times, one after another
   ``SCRAPE_GAP_SECONDS`` apart, so the scrapes span more than one sample interval (15 s)
   and meet the background sample at least once.
4. With hookline stopped, calls `Store.backlog_sample` ``SAMPLES`` times against the same
   database (the query the queue gauges and `GET /api/v1/backlog` rest on), then
   `Store.claim_due` ``CLAIMS`` times as a worker with every slot free calls it (what the
   worker of a `serve` process does beside the scrapes).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from datetime import timedelta
from pathlib import Path

import aiohttp
import asyncpg

from bench import run as core
from bench.probe import Probe
from hookline.delivery.worker import CLAIM_BATCH
from hookline.domain import ids
from hookline.domain.clock import utcnow
from hookline.domain.keyring import parse_key_ring
from hookline.domain.models import Application, Endpoint, Message, SigningKey
from hookline.domain.signing import generate_secret
from hookline.storage.base import Store
from hookline.storage.codec import codec_for
from hookline.storage.postgres import PostgresStore
from hookline.storage.sqlite import SqliteStore

ENDPOINTS_PER_APP = 100
"""``HOOKLINE_MAX_ENDPOINTS_PER_APP``'s default: the most one application may have."""
SCRAPES = 200
SCRAPE_GAP_SECONDS = 0.1
SAMPLES = 10
"""Direct calls of ``Store.backlog_sample``, one after another."""
STALL_TIMEOUT = timedelta(seconds=20)
"""``HOOKLINE_STALL_TIMEOUT``'s default: the sample counts workers heard from within it."""
CLAIMS = 5
"""Direct calls of ``Store.claim_due``, as the worker makes them with every slot free: the
claim is what a `serve` process's worker does beside the scrapes."""
LEASE = timedelta(seconds=30)
ENDPOINT_MAX_IN_FLIGHT = 32
"""``HOOKLINE_ENDPOINT_MAX_IN_FLIGHT``'s default: a claim's most per endpoint."""
RUNS = (("1p", ["serve"], 1), ("2p", ["serve"], 2), ("no worker", ["serve", "--no-worker"], 1))
"""`serve --processes 1` and `2`, then `serve --no-worker`: the scrape without a worker
claiming beside it in the process."""
FIRST_SAMPLE_TIMEOUT = 300.0
_DUE = re.compile(rb"^hookline_due_backlog ([0-9.e+]+)$", re.MULTILINE)


def _store(url: str) -> Store:
    """The store as `serve` opens it, secrets sealed with the bench's key."""
    codec = codec_for(parse_key_ring(core.HOOKLINE_ENV["HOOKLINE_ENCRYPTION_KEYS"]))
    if url.startswith("sqlite:"):
        return SqliteStore.from_url(url, codec)
    return PostgresStore(url, codec=codec)


async def seed(url: str, endpoint_url: str, endpoints: int, pending: int) -> float:
    """Write the applications, endpoints and messages; the seconds it took."""
    started = time.perf_counter()
    store = _store(url)
    await store.open()
    try:
        body = json.dumps(core.PAYLOAD).encode()
        per_endpoint = pending // endpoints
        for _ in range(endpoints // ENDPOINTS_PER_APP):
            now = utcnow()
            app = Application(ids.new_id(ids.APP), "metrics-scale", None, None, {}, now, now)
            await store.create_application(app)
            for _ in range(ENDPOINTS_PER_APP):
                await store.create_endpoint(
                    Endpoint(
                        ids.new_id(ids.ENDPOINT),
                        app.id,
                        endpoint_url,
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
                )
            messages = [
                Message(ids.new_id(ids.MESSAGE), app.id, "bench.tick", None, body, None, None, now)
                for _ in range(per_endpoint)
            ]
            routed = await store.publish(messages, now)
            if (
                sum(len(endpoint_ids) for endpoint_ids in routed)
                != per_endpoint * ENDPOINTS_PER_APP
            ):
                raise RuntimeError(f"a message did not reach every endpoint: {routed[:1]}")
    finally:
        await store.close()
    if not url.startswith("sqlite:"):
        db = await asyncpg.connect(url)
        try:
            await db.execute("VACUUM ANALYZE")
        finally:
            await db.close()
    return time.perf_counter() - started


async def _get_metrics(session: aiohttp.ClientSession, url: str) -> bytes:
    async with session.get(f"{url}/metrics") as r:
        body = await r.read()
        if r.status != 200:
            raise RuntimeError(f"/metrics answered {r.status}: {body[:200]!r}")
        return body


async def scrapes(proc: core.Hookline, started: float) -> dict[str, float]:
    """Wait for the gauges' first sample, then time ``SCRAPES`` scrapes; their figures, and
    the seconds from ``started`` (the process's start) to the first sample."""
    async with aiohttp.ClientSession() as session:
        while not _DUE.search(body := await _get_metrics(session, proc.url)):
            if time.perf_counter() - started > FIRST_SAMPLE_TIMEOUT:
                raise RuntimeError("no backlog sample reached /metrics")
            await asyncio.sleep(0.1)
        first_sample = time.perf_counter() - started
        took: list[float] = []
        sizes: list[int] = []
        lines: list[int] = []
        for _ in range(SCRAPES):
            sent = time.perf_counter()
            body = await _get_metrics(session, proc.url)
            took.append(time.perf_counter() - sent)
            sizes.append(len(body))
            lines.append(body.count(b"\n"))
            await asyncio.sleep(SCRAPE_GAP_SECONDS)
    if re.search(rb"\b(app|ep|msg)_[0-9A-Za-z]{20,}", body):
        raise RuntimeError("an id reached a metric label")
    found = _DUE.search(body)
    assert found is not None
    return {
        "first sample s": first_sample,
        "scrape p50 ms": core.percentile(took, 0.50) * 1000,
        "scrape p95 ms": core.percentile(took, 0.95) * 1000,
        "scrape max ms": max(took) * 1000,
        "bytes": max(sizes),
        "lines": max(lines),
        "hookline_due_backlog": float(found[1]),
    }


async def direct_calls(url: str) -> tuple[list[float], list[float]]:
    """The durations of ``SAMPLES`` calls of ``Store.backlog_sample``, then of ``CLAIMS``
    calls of ``Store.claim_due`` as an idle worker makes them, one after another."""
    store = _store(url)
    await store.open()
    samples: list[float] = []
    claims: list[float] = []
    try:
        for _ in range(SAMPLES):
            now = utcnow()
            started = time.perf_counter()
            await store.backlog_sample(now, now - STALL_TIMEOUT)
            samples.append(time.perf_counter() - started)
        worker_id = ids.new_id(ids.WORKER)
        for _ in range(CLAIMS):
            now = utcnow()
            started = time.perf_counter()
            await store.claim_due(
                CLAIM_BATCH, now, now + LEASE, worker_id, (), ENDPOINT_MAX_IN_FLIGHT, {}
            )
            claims.append(time.perf_counter() - started)
    finally:
        await store.close()
    return samples, claims


async def metrics_scale_run(
    work: Path, endpoints: int, pending: int, postgres: bool
) -> core.Result:
    """One backend: seed, scrape with one and with two processes, then the direct samples."""
    if postgres:
        async with core.postgres_database() as url:
            return await _run(work, endpoints, pending, url)
    return await _run(work, endpoints, pending, f"sqlite:///{work / 'metrics-scale.db'}")


async def _run(work: Path, endpoints: int, pending: int, url: str) -> core.Result:
    probe = await Probe(core.free_port()).start()
    figures: dict[str, float] = {}
    try:
        figures["seed s"] = await seed(url, probe.url("slow"), endpoints, pending)
        for tag, args, processes in RUNS:
            env = {
                "HOOKLINE_DATABASE_URL": url,
                "HOOKLINE_METRICS": "true",
                "HOOKLINE_PROCESSES": str(processes),
            }
            started = time.perf_counter()
            proc = core.Hookline(args, env, work / "hookline.log", core.free_port()).start()
            try:
                found = await scrapes(proc, started)
            finally:
                proc.stop()
            figures.update({f"{k} ({tag})": v for k, v in found.items()})
    finally:
        await probe.stop()
    samples, claims = await direct_calls(url)
    figures["backlog_sample p50 ms"] = core.percentile(samples, 0.50) * 1000
    figures["backlog_sample max ms"] = max(samples) * 1000
    figures["claim_due p50 ms"] = core.percentile(claims, 0.50) * 1000
    figures["claim_due max ms"] = max(claims) * 1000
    backend = "SQLite" if url.startswith("sqlite:") else "PostgreSQL"
    return core.Result(
        f"metrics at scale, {backend}, serve --processes 1 and 2, HOOKLINE_METRICS=true: "
        f"{endpoints:,} endpoints, {pending:,} pending deliveries (receiver answers in 10 s)",
        figures,
    )
