"""The anomaly-detection scenario of `make bench` (`--scenarios anomalies`): what one pass of
the detector costs with 10,000 endpoints, on SQLite and on PostgreSQL.

Every worker process runs a pass a minute (`operations/anomalies.py`): the first pass of an
hour reads the hour rollups its baselines come from (24 recent hours and the same hour on
the 6 days before, for every endpoint) and computes them; the other passes read the window
(5 minute rows per endpoint), the enabled endpoints and the open anomalies. The run:

1. creates `ENDPOINTS` endpoints, `PER_APP` per application (so applications are judged as
   a whole too), each created a month ago;
2. seeds, straight into `endpoint_rollups`, 7 days of hour rows and the last 10 minutes of
   minute rows for each (20 attempts a minute, 2 % failed), with every attempt failing in
   the window for one endpoint in a hundred, so that passes open anomalies as well;
3. times the first pass (baselines) and `PASSES` more (window only), one after another, in
   this process against the real store.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from bench import run as core
from bench.attempt_stats import counts
from hookline.config import load_settings
from hookline.domain import ids
from hookline.domain.models import Application, Endpoint, SigningKey
from hookline.domain.rollups import COLUMNS, HOUR_SECONDS, MINUTE_SECONDS
from hookline.domain.signing import generate_secret
from hookline.operations.anomalies import AnomalyDetector
from hookline.operations.context import Operations
from hookline.server import open_store
from hookline.storage.base import Store

ENDPOINTS = 10_000
PER_APP = 4
DAYS = 7
PER_MINUTE = 20
FAILING_EVERY = 100
"""One endpoint in this many fails every attempt in the window."""
PASSES = 20


def _rows(endpoints: list[tuple[str, str]], now: datetime) -> Iterator[tuple[Any, ...]]:
    hour = now.replace(minute=0, second=0, microsecond=0)
    minute = now.replace(second=0, microsecond=0)
    hourly = counts(60 * PER_MINUTE)
    for n, (endpoint_id, app_id) in enumerate(endpoints):
        for h in range(1, DAYS * 24 + 1):
            start = int((hour - timedelta(hours=h)).timestamp() * 1000)
            yield (endpoint_id, HOUR_SECONDS, start, app_id, *hourly.values())
        failing = n % FAILING_EVERY == 0
        for m in range(1, 11):
            row = counts(PER_MINUTE)
            if failing:
                row["status_5xx"] += row["success"]
                row["success"] = 0
            start = int((minute - timedelta(minutes=m)).timestamp() * 1000)
            yield (endpoint_id, MINUTE_SECONDS, start, app_id, *row.values())


_INSERT = (
    f"INSERT INTO endpoint_rollups ({', '.join(COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in COLUMNS)})"
)


async def _endpoints(store: Store, born: datetime, count: int) -> list[tuple[str, str]]:
    made: list[tuple[str, str]] = []
    for _ in range(count // PER_APP):
        app = Application(ids.new_id(ids.APP), "bench", None, None, {}, born, born)
        await store.create_application(app)
        for _ in range(PER_APP):
            endpoint = Endpoint(
                id=ids.new_id(ids.ENDPOINT),
                app_id=app.id,
                url="https://example.com/hook",
                uid=None,
                description="",
                throttle_rate=None,
                disabled=False,
                event_types=None,
                channels=None,
                metadata={},
                headers={},
                keys=(SigningKey(generate_secret()),),
                created_at=born,
                updated_at=born,
            )
            await store.create_endpoint(endpoint)
            made.append((endpoint.id, app.id))
    return made


async def anomaly_run(work: Path, postgres: bool, endpoints: int = ENDPOINTS) -> core.Result:
    """One backend: the endpoints, the seeded rollups, then the timed passes."""
    if postgres:
        async with core.postgres_database() as url:
            return await _run(url, None, endpoints)
    path = work / "anomalies.db"
    return await _run(f"sqlite:///{path}", path, endpoints)


async def _run(url: str, sqlite_path: Path | None, count: int) -> core.Result:
    store = open_store(load_settings({"database_url": url}, environ={}))
    await store.open()
    try:
        now = datetime.now(UTC)
        made = await _endpoints(store, now - timedelta(days=30), count)
        rows = list(_rows(made, now))
        if sqlite_path is not None:
            conn = sqlite3.connect(sqlite_path, timeout=60)
            try:
                with conn:
                    conn.executemany(_INSERT, rows)
            finally:
                conn.close()
        else:
            db = await asyncpg.connect(url)
            try:
                await db.copy_records_to_table("endpoint_rollups", records=rows, columns=COLUMNS)
                await db.execute("ANALYZE")
            finally:
                await db.close()
        ops = Operations(store)
        detector = AnomalyDetector()
        started = time.perf_counter()
        first = await detector.evaluate(ops)
        first_s = time.perf_counter() - started
        took: list[float] = []
        for _ in range(PASSES):
            started = time.perf_counter()
            await detector.evaluate(ops)
            took.append(time.perf_counter() - started)
    finally:
        await store.close()
    backend = "SQLite" if sqlite_path is not None else "PostgreSQL"
    return core.Result(
        f"anomaly detection pass, {backend}: {count:,} endpoints ({PER_APP} per application), "
        f"{DAYS} days of hour rollups, {PASSES} passes after the first",
        {
            "rollup rows": len(rows),
            "anomalies opened": 0 if first is None else len(first.opened),
            "first pass (baselines) s": first_s,
            "pass p50 ms": core.percentile(took, 0.5) * 1000,
            "pass max ms": max(took) * 1000,
        },
    )
