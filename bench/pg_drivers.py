"""Measure asyncpg against psycopg 3 on the operations hookline's PostgreSQL store does.

Run: ``.venv/bin/python bench/pg_drivers.py [postgresql://postgres@127.0.0.1:5432/postgres]``.
It creates and drops its own database. Figures go to standard output with the machine's
facts; docs/postgresql.md quotes a run.
"""

from __future__ import annotations

import asyncio
import os
import platform
import sys
import time
import uuid
from collections.abc import Awaitable, Callable

import asyncpg
import psycopg
from psycopg_pool import AsyncConnectionPool

ADMIN_URL = sys.argv[1] if len(sys.argv) > 1 else "postgresql://postgres@127.0.0.1:5432/postgres"
CONNECTIONS = 16
SINGLE_ROWS = 4000
BATCH_ROWS = 20000
BATCH = 1000
CLAIM_ROWS = 20000
CLAIM_BATCH = 100
PAYLOAD = b'{"k": "' + b"x" * 1000 + b'"}'

SCHEMA = """
CREATE TABLE q (id text PRIMARY KEY, body bytea NOT NULL, status int NOT NULL DEFAULT 1,
                due bigint NOT NULL DEFAULT 0, lease text);
CREATE INDEX q_due ON q (due) WHERE status = 1;
"""
CLAIM = """
UPDATE q SET status = 3, lease = $1 WHERE id IN (
  SELECT id FROM q WHERE status = 1 AND due <= $2 ORDER BY due LIMIT $3 FOR UPDATE SKIP LOCKED
) RETURNING id
"""


def url_for(name: str) -> str:
    return ADMIN_URL.rsplit("/", 1)[0] + "/" + name


async def timed(label: str, rows: int, run: Callable[[], Awaitable[None]]) -> None:
    started = time.perf_counter()
    await run()
    elapsed = time.perf_counter() - started
    print(f"  {label:<44} {rows / elapsed:>10,.0f} rows/s")


async def bench_asyncpg(url: str) -> None:
    pool = await asyncpg.create_pool(url, min_size=CONNECTIONS, max_size=CONNECTIONS)
    assert pool is not None

    async def single() -> None:
        async def one(i: int) -> None:
            async with pool.acquire() as conn:
                await conn.execute("INSERT INTO q (id, body) VALUES ($1, $2)", f"s{i}", PAYLOAD)

        await asyncio.gather(*(one(i) for i in range(SINGLE_ROWS)))

    async def batched() -> None:
        async with pool.acquire() as conn:
            for start in range(0, BATCH_ROWS, BATCH):
                rows = [(f"b{i}", PAYLOAD) for i in range(start, start + BATCH)]
                async with conn.transaction():
                    await conn.executemany("INSERT INTO q (id, body) VALUES ($1, $2)", rows)

    async def claim() -> None:
        async with pool.acquire() as conn:
            while True:
                async with conn.transaction():
                    got = await conn.fetch(CLAIM, uuid.uuid4().hex, 1, CLAIM_BATCH)
                    if not got:
                        return
                    await conn.execute(
                        "UPDATE q SET status = 0 WHERE id = ANY($1::text[])", [r[0] for r in got]
                    )

    print("asyncpg", asyncpg.__version__)
    await timed(f"single-row commits, {CONNECTIONS} connections", SINGLE_ROWS, single)
    await timed(f"executemany, batches of {BATCH}", BATCH_ROWS, batched)
    await timed(f"claim {CLAIM_BATCH} + complete, 1 connection", SINGLE_ROWS + BATCH_ROWS, claim)
    await pool.close()


async def bench_psycopg(url: str) -> None:
    pool = AsyncConnectionPool(url, min_size=CONNECTIONS, max_size=CONNECTIONS, open=False)
    await pool.open()

    async def single() -> None:
        async def one(i: int) -> None:
            async with pool.connection() as conn:
                await conn.execute("INSERT INTO q (id, body) VALUES (%s, %s)", (f"s{i}", PAYLOAD))

        await asyncio.gather(*(one(i) for i in range(SINGLE_ROWS)))

    async def batched() -> None:
        async with pool.connection() as conn:
            for start in range(0, BATCH_ROWS, BATCH):
                rows = [(f"b{i}", PAYLOAD) for i in range(start, start + BATCH)]
                async with conn.transaction(), conn.cursor() as cur:
                    await cur.executemany("INSERT INTO q (id, body) VALUES (%s, %s)", rows)

    async def claim() -> None:
        sql = CLAIM.replace("$1", "%s").replace("$2", "%s").replace("$3", "%s")
        async with pool.connection() as conn:
            while True:
                async with conn.transaction():
                    cur = await conn.execute(sql, (uuid.uuid4().hex, 1, CLAIM_BATCH))
                    got = await cur.fetchall()
                    if not got:
                        return
                    await conn.execute(
                        "UPDATE q SET status = 0 WHERE id = ANY(%s)", ([r[0] for r in got],)
                    )

    print("psycopg", psycopg.__version__)
    await timed(f"single-row commits, {CONNECTIONS} connections", SINGLE_ROWS, single)
    await timed(f"executemany, batches of {BATCH}", BATCH_ROWS, batched)
    await timed(f"claim {CLAIM_BATCH} + complete, 1 connection", SINGLE_ROWS + BATCH_ROWS, claim)
    await pool.close()


async def with_database(run: Callable[[str], Awaitable[None]]) -> None:
    name = f"hookline_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(ADMIN_URL)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        conn = await asyncpg.connect(url_for(name))
        await conn.execute(SCHEMA)
        await conn.close()
        await run(url_for(name))
    finally:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


async def main() -> None:
    admin = await asyncpg.connect(ADMIN_URL)
    server = await admin.fetchval("SHOW server_version")
    await admin.close()
    print(
        f"machine: {os.cpu_count()} cores, {platform.machine()},"
        f" Python {platform.python_version()}, PostgreSQL {server}; 1 KB rows"
    )
    for bench in (bench_asyncpg, bench_psycopg):
        await with_database(bench)


if __name__ == "__main__":
    asyncio.run(main())
