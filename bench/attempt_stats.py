"""The statistics scenario of `make bench` (`--scenarios stats`): attempt statistics over 30
days for an endpoint with 10 million attempts, on SQLite and on PostgreSQL (issue 15: under
100 ms p95).

Recording 10 million real attempts would take this machine over an hour per backend, and
what a statistics read touches is the rollup rows, not the attempts. So the run:

1. starts `hookline serve` on a fresh database and sends real messages through nginx, so the
   worker's recorder writes real attempts and their rollups (the figures count them);
2. seeds, straight into `endpoint_rollups`, the rows that 30 days of 10,000,000 attempts of
   that endpoint leave once retention has run (one row per hour for 30 days, one per minute
   for the last 48 hours; before the current hour, so they never meet the real ones), and
   the same for `OTHER_ENDPOINTS` other endpoints, so the table is not the endpoint's alone;
3. times `GET …/attempt-stats` over the last 30 days (hour rows) and the last 24 hours
   (minute rows), one request after another, and checks each answer's total.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from bench import run as core
from bench.receiver import Nginx
from hookline.domain import ids
from hookline.domain.rollups import (
    COLUMNS,
    COUNT_COLUMNS,
    HOUR_SECONDS,
    LATENCY_COLUMNS,
    MINUTE_ROLLUP_HOURS,
    MINUTE_SECONDS,
)

ATTEMPTS = 10_000_000
DAYS = 30
OTHER_ENDPOINTS = 200
READS = 300
"""Requests timed per window, one after another."""
PAYLOAD_BYTES = 1024
SHARES = {"success": 0.97, "status_5xx": 0.02, "timeout": 0.01}
"""How the seeded attempts ended."""
LATENCY_SHARES = (0.05, 0.15, 0.3, 0.25, 0.12, 0.06, 0.03, 0.02, 0.01, 0.005, 0.003)
"""Seeded durations over the buckets (the rest in the last ones)."""


def counts(attempts: int) -> dict[str, int]:
    """A rollup row's counts for ``attempts`` attempts: each share rounded down, the rest in
    the first column of its group, so every group adds up to ``attempts``."""
    row = dict.fromkeys(COUNT_COLUMNS, 0)
    row["attempts"] = attempts
    for column, share in SHARES.items():
        row[column] = int(attempts * share)
    row["success"] += attempts - sum(row[c] for c in SHARES)
    for column, share in zip(LATENCY_COLUMNS, LATENCY_SHARES, strict=False):
        row[column] = int(attempts * share)
    row[LATENCY_COLUMNS[0]] += attempts - sum(row[c] for c in LATENCY_COLUMNS)
    row["duration_ms"] = attempts * 120
    row["payload_bytes"] = attempts * PAYLOAD_BYTES
    row["payloads"] = attempts
    return row


def _split(total: int, parts: int) -> list[int]:
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def seed_rows(endpoint_id: str, app_id: str, now: datetime) -> Iterator[tuple[Any, ...]]:
    """The rows 30 days of ``ATTEMPTS`` attempts leave, in ``COLUMNS`` order: hours before
    the current one, and the minutes of the last ``MINUTE_ROLLUP_HOURS`` hours among them."""
    this_hour = now.replace(minute=0, second=0, microsecond=0)
    hours = DAYS * 24
    for i, attempts in enumerate(_split(ATTEMPTS, hours)):
        start = this_hour - timedelta(hours=hours - i)
        key = (endpoint_id, HOUR_SECONDS, int(start.timestamp() * 1000), app_id)
        yield (*key, *counts(attempts).values())
        if hours - i > MINUTE_ROLLUP_HOURS:
            continue
        for minute, in_minute in enumerate(_split(attempts, 60)):
            at = int((start + timedelta(minutes=minute)).timestamp() * 1000)
            yield (endpoint_id, MINUTE_SECONDS, at, app_id, *counts(in_minute).values())


def all_seed_rows(endpoint_id: str, app_id: str, now: datetime) -> Iterator[tuple[Any, ...]]:
    yield from seed_rows(endpoint_id, app_id, now)
    for _ in range(OTHER_ENDPOINTS):
        yield from seed_rows(ids.new_id(ids.ENDPOINT), app_id, now)


_INSERT = (
    f"INSERT INTO endpoint_rollups ({', '.join(COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in COLUMNS)})"
)


def seed_sqlite(path: Path, endpoint_id: str, app_id: str, now: datetime) -> int:
    conn = sqlite3.connect(path, timeout=60)
    try:
        with conn:
            cursor = conn.executemany(_INSERT, all_seed_rows(endpoint_id, app_id, now))
            return cursor.rowcount
    finally:
        conn.close()


async def seed_postgres(db: asyncpg.Connection, endpoint_id: str, app_id: str) -> int:
    rows = list(all_seed_rows(endpoint_id, app_id, datetime.now(UTC)))
    await db.copy_records_to_table("endpoint_rollups", records=rows, columns=list(COLUMNS))
    await db.execute("ANALYZE endpoint_rollups")
    return len(rows)


async def timed_reads(url: str, params: dict[str, str], expected: int) -> list[float]:
    """``READS`` requests one after another, each answer checked; their durations."""
    headers = {"authorization": f"Bearer {core.TOKEN}"}
    took: list[float] = []
    async with aiohttp.ClientSession(headers=headers) as session:
        for _ in range(READS):
            sent = time.perf_counter()
            async with session.get(url, params=params) as r:
                body = await r.json()
            took.append(time.perf_counter() - sent)
            if r.status != 200 or body["success"] + body["fail"] < expected:
                raise RuntimeError(f"attempt-stats answered {r.status}: {body}")
    return took


async def stats_run(nginx: Nginx, work: Path, messages: int, postgres: bool) -> core.Result:
    """One backend: real deliveries, then the seeded rows, then the timed reads."""
    if postgres:
        async with core.postgres_database() as url:
            return await _run(nginx, work, messages, url, None)
    db = work / "stats.db"
    return await _run(nginx, work, messages, f"sqlite:///{db}", db)


async def _run(
    nginx: Nginx, work: Path, messages: int, url: str, sqlite_path: Path | None
) -> core.Result:
    proc = core.Hookline(
        ["serve"], {"HOOKLINE_DATABASE_URL": url}, work / "hookline.log", core.free_port()
    ).start()
    try:
        app_id = await core.setup_app(proc.url, [nginx.url])
        receipts = nginx.receipts()
        await core.publish_load(proc.url, app_id, messages)
        await core.wait_for(receipts, messages, timeout=600)
        if sqlite_path is not None:
            endpoint_id, real = _sqlite_real(sqlite_path, messages)
            started = time.perf_counter()
            seeded = seed_sqlite(sqlite_path, endpoint_id, app_id, datetime.now(UTC))
        else:
            db = await asyncpg.connect(url)
            try:
                endpoint_id = str(await db.fetchval("SELECT id FROM endpoints"))
                real = await _postgres_real(db, messages)
                started = time.perf_counter()
                seeded = await seed_postgres(db, endpoint_id, app_id)
            finally:
                await db.close()
        seconds = time.perf_counter() - started
        now = datetime.now(UTC)
        stats_url = f"{proc.url}/api/v1/app/{app_id}/endpoint/{endpoint_id}/attempt-stats"
        month = {"since": (now - timedelta(days=DAYS)).isoformat(), "until": now.isoformat()}
        day = {"since": (now - timedelta(hours=24)).isoformat(), "until": now.isoformat()}
        month_reads = await timed_reads(stats_url, month, ATTEMPTS * (DAYS * 24 - 1) // (DAYS * 24))
        # Seeded minutes end at the current hour, which the real deliveries have to themselves.
        day_reads = await timed_reads(stats_url, day, ATTEMPTS * 23 // (DAYS * 24))
    finally:
        proc.stop()
    backend = "SQLite, serve" if sqlite_path is not None else "PostgreSQL, serve"
    return core.Result(
        f"attempt-stats, {backend}: {ATTEMPTS:,} attempts over {DAYS} days as seeded rollup "
        f"rows, {messages:,} real deliveries recorded first",
        {
            "real attempts in rollups": real,
            "seeded rollup rows": seeded,
            "seed s": seconds,
            "30 days p50 ms": core.percentile(month_reads, 0.5) * 1000,
            "30 days p95 ms": core.percentile(month_reads, 0.95) * 1000,
            "30 days p99 ms": core.percentile(month_reads, 0.99) * 1000,
            "24 hours p50 ms": core.percentile(day_reads, 0.5) * 1000,
            "24 hours p95 ms": core.percentile(day_reads, 0.95) * 1000,
        },
    )


_REAL = "SELECT sum(attempts), count(*) FROM endpoint_rollups WHERE period = 3600"


def _sqlite_real(path: Path, messages: int) -> tuple[str, int]:
    """The endpoint, and the attempts the recorder rolled up once every delivery was recorded
    as successful (each was attempted once)."""
    conn = sqlite3.connect(path, timeout=60)
    try:
        endpoint_id = str(conn.execute("SELECT id FROM endpoints").fetchone()[0])
        deadline = time.monotonic() + 120
        while _delivered(conn) < messages and time.monotonic() < deadline:
            time.sleep(0.1)
        return endpoint_id, int(conn.execute(_REAL).fetchone()[0] or 0)
    finally:
        conn.close()


def _delivered(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM deliveries WHERE status = 0").fetchone()[0])


async def _postgres_real(db: asyncpg.Connection, messages: int) -> int:
    """The attempts the recorder rolled up once every delivery was recorded as successful."""

    async def delivered() -> int:
        return int(await db.fetchval("SELECT count(*) FROM deliveries WHERE status = 0"))

    await core.wait_for(delivered, messages, timeout=120)
    return int(await db.fetchval(_REAL) or 0)
