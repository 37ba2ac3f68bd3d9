"""What one failure-grouping pass costs (``operations/failure_groups.py``), on SQLite and on
PostgreSQL: ``python -m bench.failure_group_pass [--endpoints N]``.

The pass runs beside the delivery path, once a minute in one worker process; the delivery
path itself does not change, so this measures the pass alone. The run:

1. seeds, straight into ``attempts`` and ``endpoint_rollups``, an hour of traffic of
   ``ENDPOINTS`` endpoints at ``PER_MINUTE`` attempts a minute each: one endpoint in
   ``FAILING_EVERY`` fails every attempt (503), one in ``FLAKY_EVERY`` one attempt a minute
   (a timeout), the rest succeed;
2. times the first pass, which catches up the last ``CATCH_UP`` (up to five minutes ago),
   then ``PASSES`` passes a minute apart, each reading one new minute.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from hookline.config import load_settings
from hookline.domain import ids
from hookline.domain.failure_groups import SETTLE
from hookline.domain.rollups import COLUMNS, COUNT_COLUMNS, MINUTE_SECONDS
from hookline.operations.context import Operations
from hookline.operations.failure_groups import FailureGrouper
from hookline.server import open_store

ENDPOINTS = 1000
PER_MINUTE = 20
MINUTES = 65
FAILING_EVERY = 100
FLAKY_EVERY = 20
PASSES = 5
PG_ADMIN_URL = os.environ.get(
    "HOOKLINE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


@dataclass(frozen=True)
class Result:
    scenario: str
    figures: dict[str, float]


def _fixed(at: datetime) -> Callable[[], datetime]:
    return lambda: at


ATTEMPT_COLUMNS = (
    "id",
    "app_id",
    "msg_id",
    "endpoint_id",
    "url",
    "status",
    "response_status_code",
    "response",
    "duration_ms",
    "trigger_type",
    "created_at",
)
_DIGITS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _attempt_id(at_ms: int, n: int) -> str:
    """An attempt id minted at ``at_ms``: the time part of a real id, a counter after it."""
    stem = ids.first_id_at(ids.ATTEMPT, at_ms)
    tail = ""
    for _ in range(6):
        n, digit = divmod(n, 62)
        tail = _DIGITS[digit] + tail
    return stem[: -len(tail)] + tail


def _traffic(base: datetime, endpoints: int) -> Iterator[tuple[str, Any]]:
    """("attempt", row) and ("rollup", row) tuples of the seeded hour."""
    n = 0
    for e in range(endpoints):
        endpoint_id, app_id = f"ep_bench{e:06d}", f"app_bench{e // 4:06d}"
        failing, flaky = e % FAILING_EVERY == 0, e % FLAKY_EVERY == 1
        for m in range(MINUTES, 0, -1):
            minute = base - timedelta(minutes=m)
            start_ms = int(minute.timestamp() * 1000)
            row = dict.fromkeys(COUNT_COLUMNS, 0)
            row.update(attempts=PER_MINUTE, success=PER_MINUTE, latency_2=PER_MINUTE)
            row.update(duration_ms=30 * PER_MINUTE)
            for i in range(PER_MINUTE):
                at = start_ms + i * (60_000 // PER_MINUTE)
                code, text, status = 200, "ok", 0
                if failing:
                    code, text, status = 503, "Service Unavailable", 2
                elif flaky and i == 0:
                    code, text, status = 0, "timeout after 15 s", 2
                if status:
                    row["success"] -= 1
                    row["status_5xx" if code else "timeout"] += 1
                n += 1
                yield (
                    "attempt",
                    (
                        _attempt_id(at, n),
                        app_id,
                        f"msg_bench{n:09d}",
                        endpoint_id,
                        "https://example.com/hook",
                        status,
                        code,
                        text,
                        30,
                        0,
                        at,
                    ),
                )
            yield "rollup", (endpoint_id, MINUTE_SECONDS, start_ms, app_id, *row.values())


async def _seed(url: str, sqlite_path: Path | None, base: datetime, endpoints: int) -> int:
    attempts: list[tuple[Any, ...]] = []
    rollups: list[tuple[Any, ...]] = []
    for kind, row in _traffic(base, endpoints):
        (attempts if kind == "attempt" else rollups).append(row)
    if sqlite_path is not None:
        conn = sqlite3.connect(sqlite_path, timeout=60)
        try:
            with conn:
                marks = ", ".join("?" for _ in ATTEMPT_COLUMNS)
                conn.executemany(
                    f"INSERT INTO attempts ({', '.join(ATTEMPT_COLUMNS)}) VALUES ({marks})",
                    attempts,
                )
                marks = ", ".join("?" for _ in COLUMNS)
                conn.executemany(
                    f"INSERT INTO endpoint_rollups ({', '.join(COLUMNS)}) VALUES ({marks})",
                    rollups,
                )
        finally:
            conn.close()
    else:
        db = await asyncpg.connect(url)
        try:
            await db.copy_records_to_table("attempts", records=attempts, columns=ATTEMPT_COLUMNS)
            await db.copy_records_to_table("endpoint_rollups", records=rollups, columns=COLUMNS)
            await db.execute("ANALYZE")
        finally:
            await db.close()
    return len(attempts)


async def group_run(work: Path, postgres: bool, endpoints: int = ENDPOINTS) -> Result:
    if not postgres:
        path = work / "failure-groups.db"
        return await _run(f"sqlite:///{path}", path, endpoints)
    name = f"hookline_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(PG_ADMIN_URL)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        return await _run(PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name, None, endpoints)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def _run(url: str, sqlite_path: Path | None, endpoints: int) -> Result:
    store = open_store(load_settings({"database_url": url}, environ={}))
    await store.open()
    base = datetime.now(UTC).replace(second=0, microsecond=0)
    try:
        seeded = await _seed(url, sqlite_path, base, endpoints)
        grouper = FailureGrouper()
        at = base - timedelta(minutes=PASSES)
        started = time.perf_counter()
        first = await grouper.scan(Operations(store, clock=_fixed(at + SETTLE)))
        first_s = time.perf_counter() - started
        took: list[float] = []
        read: list[int] = []
        for k in range(1, PASSES + 1):
            now = at + timedelta(minutes=k) + SETTLE
            started = time.perf_counter()
            done = await grouper.scan(Operations(store, clock=_fixed(now)))
            took.append(time.perf_counter() - started)
            read.append(0 if done is None else done.attempts)
    finally:
        await store.close()
    backend = "SQLite" if sqlite_path is not None else "PostgreSQL"
    took.sort()
    return Result(
        f"failure-grouping pass, {backend}: {endpoints:,} endpoints, {seeded:,} attempts in "
        f"{MINUTES} minutes, 1 in {FAILING_EVERY} endpoints failing, 1 in {FLAKY_EVERY} flaky",
        {
            "first pass (catch-up) failed attempts": 0 if first is None else first.attempts,
            "first pass (catch-up) s": first_s,
            "groups": 0 if first is None else first.groups,
            "minute pass failed attempts": max(read),
            "minute pass p50 ms": took[len(took) // 2] * 1000,
            "minute pass max ms": max(took) * 1000,
        },
    )


async def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--endpoints", type=int, default=ENDPOINTS)
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL too")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="hookline-bench-"))
    backends = [False, True] if args.postgres else [False]
    for postgres in backends:
        result = await group_run(work, postgres, args.endpoints)
        print(f"{result.scenario}: {result.figures}", flush=True)


if __name__ == "__main__":
    import sys

    asyncio.run(main(sys.argv[1:]))
