"""`make bench`: hookline against its receiver's ceiling and the Celery baseline, in one run.

Everything measured is started here, on loopback: nginx as the receiver, hookline
processes on SQLite or PostgreSQL, and a Celery worker with a Redis broker for the
baseline. Figures are printed as a table and written with the machine's facts to
``bench/results/``. Run ``python -m bench.run --help`` for sizes and scenario selection.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import resource
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import aiohttp
import asyncpg
import redis

from bench.load import Load, h2load
from bench.probe import Probe
from bench.receiver import Nginx
from hookline.domain import ids
from hookline.domain.clock import utcnow
from hookline.domain.models import Application, Endpoint, Message, SigningKey
from hookline.domain.signing import generate_secret
from hookline.storage.sqlite import SqliteStore

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
TOKEN = "hl_admin_bench-token-for-the-benchmark-runs"
PG_ADMIN_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = "redis://127.0.0.1:6379/15"
CONCURRENCY = 64
ISOLATION_PAIRS = 3
RATIO_ROUNDS = 3
RETENTION_HORIZONS = 3
"""The retention scenario publishes this many horizons' worth of messages."""
RETENTION_PAIRS = 3
NOT_BINDING = 1_000_000
"""A ``throttleRate`` (messages/s) far above what one endpoint is sent in the bench: the
limit's machinery runs (slot grants, pacing), but it never holds a delivery back."""
AUTOVACUUM_THRESHOLD = 50
AUTOVACUUM_SCALE_FACTOR = 0.2
AUTOVACUUM_INSERT_THRESHOLD = 1000
AUTOVACUUM_INSERT_SCALE_FACTOR = 0.2
AUTOANALYZE_THRESHOLD = 50
AUTOANALYZE_SCALE_FACTOR = 0.1
AUTOVACUUM_COST_DELAY = "2ms"
"""On a PostgreSQL server with autovacuum off, the retention scenario vacuums and analyzes
its tables itself (in both runs) as autovacuum would with PostgreSQL's defaults: ``VACUUM`` a
table once its dead rows exceed ``autovacuum_vacuum_threshold`` plus
``autovacuum_vacuum_scale_factor`` times its rows, or its rows inserted since the last vacuum
exceed the ``…_insert_…`` pair; ``ANALYZE`` it once its rows changed since the last analyze
exceed ``autovacuum_analyze_threshold`` plus ``autovacuum_analyze_scale_factor`` times its rows
(checked every second, as a busy autovacuum launcher would), throttled by
``autovacuum_vacuum_cost_delay`` (a manual ``VACUUM`` is not, unless asked). Without the
analyses the planner works from the statistics of a nearly empty table and chooses
sequential scans that autovacuum's server would never see."""
"""The baseline and the end-to-end runs alternate this many times, and each is reported by its
median round: the ratios compare runs made minutes apart on a machine whose speed drifts."""
PAYLOAD = {"data": "x" * 990}  # about 1 KB of JSON
HOOKLINE_ENV = {
    "HOOKLINE_ADMIN_TOKEN": TOKEN,
    "HOOKLINE_ALLOW_NETWORKS": "127.0.0.1/32",
    # Secrets encrypted at rest, as production runs (a fixed key: the data is thrown away).
    "HOOKLINE_ENCRYPTION_KEYS": "bench:aG9va2xpbmUtYmVuY2gta2V5LTMyLWJ5dGVzLWxvbmc=",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Result:
    scenario: str
    figures: dict[str, float]
    rate: float | None = None
    notes: str = ""


@dataclass
class Hookline:
    """A hookline process started for one scenario."""

    args: list[str]
    env: dict[str, str]
    log: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, wait_http: bool = True) -> Hookline:
        env = {**os.environ, **HOOKLINE_ENV, **self.env, "HOOKLINE_PORT": str(self.port)}
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "hookline", *self.args], env=env, stdout=out, stderr=out
            )
        if wait_http:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                try:
                    with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                        return self
                except OSError:
                    time.sleep(0.05)
            raise RuntimeError(f"hookline did not start: see {self.log}")
        return self

    cpu_seconds: float = 0.0
    """CPU time (user and system) the process and the workers it waited for used, known
    once ``stop`` reaped it: a figure the host's noise moves far less than a rate."""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            before = _reaped_children_cpu()
            self.process.terminate()
            self.process.wait(60)
            self.cpu_seconds = _reaped_children_cpu() - before


def _reaped_children_cpu() -> float:
    """CPU seconds of this process's children reaped so far (nothing else is reaped while
    ``Hookline.stop`` waits, so the difference around it is that process's)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class Publisher:
    """The latency scenario's producers: 64 aiohttp clients posting 1 KB messages at a set
    rate, each message numbered so its receipt can be matched to its send time."""

    def __init__(self, base_urls: list[str], app_id: str) -> None:
        self.base_urls = base_urls
        self.app_id = app_id
        self.latencies: list[float] = []
        self.sent_at: dict[int, float] = {}

    async def run(self, count: int, rate: float | None = None) -> float:
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(count):
            queue.put_nowait(i)
        headers = {"authorization": f"Bearer {TOKEN}", "content-type": "application/json"}
        started = time.perf_counter()
        connector = aiohttp.TCPConnector(limit=CONCURRENCY)
        async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

            async def producer(n: int) -> None:
                base = self.base_urls[n % len(self.base_urls)]
                url = f"{base}/api/v1/app/{self.app_id}/msg"
                while not queue.empty():
                    i = queue.get_nowait()
                    if rate is not None:
                        await asyncio.sleep(max(0.0, started + i / rate - time.perf_counter()))
                    body = json.dumps({"eventType": "bench.tick", "payload": {"i": i, **PAYLOAD}})
                    sent = time.perf_counter()
                    self.sent_at[i] = time.time()
                    async with session.post(url, data=body) as response:
                        await response.read()
                        if response.status != 202:
                            raise RuntimeError(f"publish failed: {response.status}")
                    self.latencies.append(time.perf_counter() - sent)

            await asyncio.gather(*(producer(n) for n in range(CONCURRENCY)))
        return time.perf_counter() - started


async def publish_load(base_url: str, app_id: str, count: int) -> Load:
    """Publish ``count`` 1 KB messages with h2load; every one must be accepted (202)."""
    body = json.dumps({"eventType": "bench.tick", "payload": PAYLOAD}).encode()
    headers = {"authorization": f"Bearer {TOKEN}", "content-type": "application/json"}
    load = await h2load(f"{base_url}/api/v1/app/{app_id}/msg", count, body, headers)
    if load.accepted != count:
        raise RuntimeError(f"only {load.accepted} of {count} publishes were accepted")
    return load


async def setup_app(
    base_url: str, endpoint_urls: list[str], throttle_rate: int | None = None
) -> str:
    headers = {"authorization": f"Bearer {TOKEN}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        async with session.post(f"{base_url}/api/v1/app", json={"name": "bench"}) as r:
            app_id = str((await r.json())["id"])
        for url in endpoint_urls:
            async with session.post(
                f"{base_url}/api/v1/app/{app_id}/endpoint",
                json={"url": url, "throttleRate": throttle_rate},
            ) as r:
                if r.status != 201:
                    raise RuntimeError(await r.text())
    return app_id


async def wait_for(count: Callable[[], Awaitable[int]], target: int, timeout: float) -> float:
    """Poll until ``count()`` reaches ``target``; return the time it was first seen there."""
    deadline = time.perf_counter() + timeout
    while True:
        if await count() >= target:
            return time.perf_counter()
        if time.perf_counter() > deadline:
            raise RuntimeError(f"timed out: {await count()} of {target} after {timeout}s")
        await asyncio.sleep(0.02)


async def last_receipt(
    receipts: Callable[[], Awaitable[int]],
    target: int,
    recorded: Callable[[], Awaitable[int]] | None = None,
) -> tuple[float, dict[str, float]]:
    """When nginx received the ``target``-th request; then, untimed, wait until the system
    under test has recorded every one as delivered. Receipts beyond the target (a delivery
    sent again after a lost answer) are returned as a figure, since they are not free."""
    done = await wait_for(receipts, target, timeout=1800)
    if recorded is not None:
        await wait_for(recorded, target, timeout=120)
    extra = await receipts() - target
    return done, ({"repeated receipts": extra} if extra else {})


def sqlite_success_counter(
    path: Path, endpoint_url: str | None = None
) -> Callable[[], Awaitable[int]]:
    """Count successful deliveries (to one endpoint URL, if given) from outside hookline."""
    query = "SELECT count(*) FROM deliveries AS d WHERE d.status = 0"
    params: tuple[str, ...] = ()
    if endpoint_url is not None:
        query += " AND d.endpoint_id IN (SELECT id FROM endpoints WHERE url = ?)"
        params = (endpoint_url,)

    async def count() -> int:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            return int(conn.execute(query, params).fetchone()[0])
        finally:
            conn.close()

    return count


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


# -- scenarios ---------------------------------------------------------------------------


async def receiver_ceiling(nginx: Nginx, count: int) -> Result:
    """What nginx answers to the same producer (h2load, 64 connections): the limit."""
    load = await h2load(nginx.url, count, json.dumps(PAYLOAD).encode(), {}, expect_status=200)
    rate = load.accepted / load.seconds
    return Result("receiver ceiling (nginx, h2load, 64 connections)", {"requests/s": rate}, rate)


async def end_to_end_sqlite(
    nginx: Nginx,
    work: Path,
    count: int,
    fan_out: int = 1,
    processes: int = 1,
    throttle_rate: int | None = None,
    metrics: bool = True,
) -> Result:
    """``throttle_rate`` sets a rate limit on the endpoint that does not bind (far above what
    is delivered), so that admission's pacing path runs (issue 13's "admission on" run);
    ``metrics=False`` turns the Prometheus metrics off (issue 15's "metrics off" run)."""
    db = work / f"e2e-{fan_out}-{processes}.db"
    env = {"HOOKLINE_DATABASE_URL": f"sqlite:///{db}", "HOOKLINE_PROCESSES": str(processes)}
    if not metrics:
        env["HOOKLINE_METRICS"] = "false"
    proc = Hookline(["serve"], env, work / "hookline.log", free_port()).start()
    try:
        app_id = await setup_app(proc.url, [nginx.url] * fan_out, throttle_rate)
        receipts = nginx.receipts()
        started = time.perf_counter()
        load = await publish_load(proc.url, app_id, count)
        done, extra = await last_receipt(receipts, count * fan_out, sqlite_success_counter(db))
    finally:
        proc.stop()
    deliveries = count * fan_out
    rate = deliveries / (done - started)
    name = f"end-to-end, SQLite, serve --processes {processes}" + (
        f", fan-out {fan_out}" if fan_out > 1 else ""
    )
    if throttle_rate is not None:
        name += f", throttleRate {throttle_rate} (not binding)"
    if not metrics:
        name += ", metrics off"
    return Result(
        name,
        {
            "deliveries/s": rate,
            "messages": count,
            "ingest msg/s during run": count / load.seconds,
            "hookline CPU µs/delivery": proc.cpu_seconds / deliveries * 1e6,
            **extra,
        },
        rate,
    )


async def ingest_sqlite(work: Path, count: int) -> Result:
    db = work / "ingest.db"
    proc = Hookline(
        ["serve", "--no-worker"],
        {"HOOKLINE_DATABASE_URL": f"sqlite:///{db}"},
        work / "hookline.log",
        free_port(),
    ).start()
    try:
        app_id = await setup_app(proc.url, ["http://127.0.0.1:9/never"])
        load = await publish_load(proc.url, app_id, count)
    finally:
        proc.stop()
    rate = count / load.seconds
    return Result(
        "ingest, SQLite (202 after commit, 64 producers)",
        {
            "messages/s": rate,
            "p50 ms": percentile(load.durations, 0.50) * 1000,
            "p99 ms": percentile(load.durations, 0.99) * 1000,
        },
        rate,
    )


async def end_to_end_postgres(nginx: Nginx, work: Path, count: int, workers: int) -> Result:
    name = f"hookline_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(PG_ADMIN_URL)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    env = {"HOOKLINE_DATABASE_URL": url}
    procs: list[Hookline] = []
    try:
        api = Hookline(["serve", "--no-worker"], env, work / "hookline.log", free_port()).start()
        procs.append(api)
        procs += [
            Hookline(["worker"], env, work / "hookline.log").start(wait_http=False)
            for _ in range(workers)
        ]
        app_id = await setup_app(api.url, [nginx.url])
        db = await asyncpg.connect(url)

        async def count_done() -> int:
            return int(await db.fetchval("SELECT count(*) FROM deliveries WHERE status = 0"))

        receipts = nginx.receipts()
        started = time.perf_counter()
        await publish_load(api.url, app_id, count)
        done, extra = await last_receipt(receipts, count, count_done)
        await db.close()
    finally:
        for proc in procs:
            proc.stop()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    rate = count / (done - started)
    return Result(
        f"end-to-end, PostgreSQL, 1 API + {workers} worker process(es)",
        {"deliveries/s": rate, "messages": count, **extra},
        rate,
    )


async def baseline_celery(nginx: Nginx, work: Path, count: int) -> Result:
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    worker = subprocess.Popen(  # noqa: ASYNC220 - started once, before anything is timed
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "bench.baseline_celery",
            "worker",
            "--pool",
            "prefork",
            "--concurrency",
            "2",
            "--loglevel",
            "WARNING",
        ],
        cwd=ROOT,
        env={**os.environ, "BENCH_REDIS_URL": REDIS_URL},
        stdout=(work / "celery.log").open("ab"),
        stderr=subprocess.STDOUT,
    )
    try:
        from bench.baseline_celery import app, deliver

        deadline = time.monotonic() + 60
        while not app.control.ping(timeout=0.5):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the Celery worker did not start: see {work / 'celery.log'}")
        body = json.dumps(PAYLOAD)
        secret = "whsec_" + "A" * 32
        receipts = nginx.receipts()
        started = time.perf_counter()
        for i in range(count):
            deliver.delay(nginx.url, f"msg_{i}", body, secret)
        enqueued = time.perf_counter() - started
        done, extra = await last_receipt(receipts, count)
    finally:
        worker.terminate()
        worker.wait(30)
        client.flushdb()
    rate = count / (done - started)
    return Result(
        "baseline: Celery 5.7 + Redis + requests, prefork 2",
        {
            "deliveries/s": rate,
            "enqueue tasks/s": count / enqueued,
            "messages": count,
            **extra,
        },
        rate,
    )


async def latency_sqlite(work: Path, rate: float, seconds: float) -> Result:
    """A steady publish rate; time from publish to receipt at a Python receiver."""
    probe = await Probe(free_port()).start()
    db = work / "latency.db"
    proc = Hookline(
        ["serve"], {"HOOKLINE_DATABASE_URL": f"sqlite:///{db}"}, work / "hookline.log", free_port()
    ).start()
    count = int(rate * seconds)
    try:
        app_id = await setup_app(proc.url, [probe.url("rx")])
        publisher = Publisher([proc.url], app_id)
        await publisher.run(count, rate=rate)

        async def received() -> int:
            return len(probe.received_at)

        await wait_for(received, count, timeout=120)
    finally:
        proc.stop()
        await probe.stop()
    waits = [probe.received_at[i] - publisher.sent_at[i] for i in range(count)]
    return Result(
        f"latency, SQLite, {rate:.0f} messages/s for {seconds:.0f} s",
        {
            "p50 ms": percentile(waits, 0.50) * 1000,
            "p99 ms": percentile(waits, 0.99) * 1000,
            "p99.9 ms": percentile(waits, 0.999) * 1000,
        },
    )


async def isolation_sqlite(nginx: Nginx, work: Path, count: int) -> Result:
    """Healthy deliveries/s with a 10 s endpoint and a refusing one, against a clean run.

    Clean and mixed runs alternate, three times each. The share is the median of the three
    neighbouring pairs' shares, so that one disturbance on the shared machine, landing on one
    side of one pair, does not decide it; each side's mean rate is printed with it.
    """
    probe = await Probe(free_port()).start()
    dead = f"http://127.0.0.1:{free_port()}/dead"
    clean_endpoints = [nginx.url]
    mixed_endpoints = [nginx.url, probe.url("slow"), dead]
    rates: dict[int, list[float]] = {1: [], 3: []}
    repeated = 0.0
    try:
        for run, endpoints in enumerate([clean_endpoints, mixed_endpoints] * ISOLATION_PAIRS):
            db = work / f"isolation-{run}.db"
            proc = Hookline(
                ["serve"],
                {"HOOKLINE_DATABASE_URL": f"sqlite:///{db}"},
                work / "hookline.log",
                free_port(),
            ).start()
            try:
                app_id = await setup_app(proc.url, endpoints)
                recorded = sqlite_success_counter(db, endpoint_url=nginx.url)
                receipts = nginx.receipts()
                started = time.perf_counter()
                await publish_load(proc.url, app_id, count)
                done, extra = await last_receipt(receipts, count, recorded)
                repeated += sum(extra.values())
                rates[len(endpoints)].append(count / (done - started))
            finally:
                proc.stop()
    finally:
        await probe.stop()
    clean, mixed = (sum(rates[n]) / len(rates[n]) for n in (1, 3))
    share = statistics.median(m / c for c, m in zip(rates[1], rates[3], strict=True))
    return Result(
        "isolation, SQLite: + one 10 s endpoint + one refusing",
        {
            "healthy deliveries/s": mixed,
            "clean run": clean,
            "share %": 100 * share,
            **({"repeated receipts": repeated} if repeated else {}),
        },
        mixed,
    )


async def backlog_sqlite(nginx: Nginx, work: Path, pending: int, seconds: float) -> Result:
    """Memory, drain rate and API read latency with a large backlog of pending deliveries."""
    db = work / "backlog.db"
    store = SqliteStore(str(db))
    await store.open()
    now = utcnow()
    app = Application(ids.new_id(ids.APP), "backlog", None, None, {}, now, now)
    await store.create_application(app)
    endpoint = Endpoint(
        ids.new_id(ids.ENDPOINT),
        app.id,
        nginx.url,
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
    await store.create_endpoint(endpoint)
    body = json.dumps(PAYLOAD).encode()
    for start in range(0, pending, 1000):
        batch = [
            Message(ids.new_id(ids.MESSAGE), app.id, "bench.tick", None, body, None, None, now)
            for _ in range(min(1000, pending - start))
        ]
        await store.publish(batch, now)
    await store.close()
    proc = Hookline(
        ["serve"], {"HOOKLINE_DATABASE_URL": f"sqlite:///{db}"}, work / "hookline.log", free_port()
    ).start()
    reads: list[float] = []
    peak_rss = 0
    try:
        receipts = nginx.receipts()
        started = time.perf_counter()
        headers = {"authorization": f"Bearer {TOKEN}"}
        async with aiohttp.ClientSession(headers=headers) as session:
            while time.perf_counter() - started < seconds:
                sent = time.perf_counter()
                async with session.get(f"{proc.url}/api/v1/app/{app.id}/msg?limit=20") as r:
                    await r.read()
                reads.append(time.perf_counter() - sent)
                assert proc.process is not None
                peak_rss = max(peak_rss, rss_bytes(proc.process.pid))
                await asyncio.sleep(0.05)
        drained = await receipts()
        elapsed = time.perf_counter() - started
    finally:
        proc.stop()
    return Result(
        f"backlog, SQLite, {pending:,} pending deliveries",
        {
            "peak RSS MB": peak_rss / 2**20,
            "drain deliveries/s": drained / elapsed,
            "API read p99 ms": percentile(reads, 0.99) * 1000,
        },
        drained / elapsed,
    )


@dataclass
class SizedRun:
    """One end-to-end run with the database's size sampled throughout."""

    rate: float
    seconds: float
    samples: list[tuple[float, int]]
    """(seconds since the first publish, bytes in use) every half second."""
    final: int
    """Bytes in use once the run has stopped (SQLite: the file, its WAL checkpointed)."""
    cpu_us: float
    """CPU µs per delivery of the hookline processes."""
    server_cpu_us: float = 0.0
    """PostgreSQL's CPU µs per delivery: the run's database's backends (the vacuums
    included) and the server's WAL writer, checkpointer and background writer."""


async def sample_size(
    size: Callable[[], Awaitable[int]], samples: list[tuple[float, int]], started: float
) -> None:
    """Append the database's size twice a second until cancelled."""
    while True:
        samples.append((time.perf_counter() - started, await size()))
        await asyncio.sleep(0.5)


def sqlite_size(path: Path) -> Callable[[], Awaitable[int]]:
    """The SQLite file and its WAL: what the disk holds."""

    async def size() -> int:
        return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())

    return size


SERVER_PROCESSES = (
    "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
    " OR backend_type IN ('walwriter', 'checkpointer', 'background writer')"
)
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


async def server_cpu(db: asyncpg.Connection) -> dict[int, float]:
    """CPU seconds so far of each PostgreSQL process serving the run (same host): a
    figure that, unlike a rate, the host's other work barely moves."""
    return process_cpu([pid for (pid,) in await db.fetch(SERVER_PROCESSES)])


def process_cpu(pids: list[int]) -> dict[int, float]:
    seconds: dict[int, float] = {}
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            seconds[pid] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return seconds


def cpu_between(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds used between two readings, a process that started meanwhile whole."""
    return sum(used - before.get(pid, 0.0) for pid, used in after.items())


PG_TABLES_SIZE = (
    "SELECT sum(pg_total_relation_size(t))::bigint"
    " FROM unnest(ARRAY['messages', 'deliveries', 'attempts']) AS t"
)


async def end_to_end_sized(
    nginx: Nginx, work: Path, count: int, retention: str, tag: str, postgres: bool = False
) -> SizedRun:
    """The end-to-end run under ``HOOKLINE_RETENTION``, pruning every second when on: SQLite
    with ``serve --processes 1``, or PostgreSQL with one API and one worker process. The
    timed part ends at the last receipt; then, untimed, one more second of samples. With
    pruning on, delivered rows vanish, so success rows cannot be counted."""
    env = {"HOOKLINE_RETENTION": retention, "HOOKLINE_PRUNE_INTERVAL": "1"}
    procs: list[Hookline] = []
    samples: list[tuple[float, int]] = []
    size: Callable[[], Awaitable[int]]
    recorded: Callable[[], Awaitable[int]]
    server_cpu_used = 0.0
    async with contextlib.AsyncExitStack() as stack:
        if postgres:
            url = await stack.enter_async_context(postgres_database())
            env["HOOKLINE_DATABASE_URL"] = url
            api = Hookline(["serve", "--no-worker"], env, work / "hookline.log", free_port())
            procs += [api.start(), Hookline(["worker"], env, work / "hookline.log")]
            procs[-1].start(wait_http=False)
            db = await asyncpg.connect(url)
            stack.push_async_callback(db.close)

            async def tables_size() -> int:
                return int(await db.fetchval(PG_TABLES_SIZE) or 0)

            async def done_rows() -> int:
                return int(await db.fetchval("SELECT count(*) FROM deliveries WHERE status = 0"))

            size, recorded = tables_size, done_rows
            if await db.fetchval("SHOW autovacuum") == "off":
                vacuum = asyncio.create_task(vacuum_as_autovacuum(url))
                stack.callback(vacuum.cancel)
        else:
            path = work / f"retention-{tag}.db"
            env["HOOKLINE_DATABASE_URL"] = f"sqlite:///{path}"
            api = Hookline(["serve"], env, work / "hookline.log", free_port()).start()
            procs.append(api)
            size, recorded = sqlite_size(path), sqlite_success_counter(path)
        try:
            app_id = await setup_app(api.url, [nginx.url])
            receipts = nginx.receipts()
            server_before = await server_cpu(db) if postgres else {}
            started = time.perf_counter()
            sampler = asyncio.create_task(sample_size(size, samples, started))
            await publish_load(api.url, app_id, count)
            done, _ = await last_receipt(receipts, count, recorded if retention == "off" else None)
            if postgres:
                server_cpu_used = cpu_between(server_before, await server_cpu(db))
            await asyncio.sleep(1.0)
            sampler.cancel()
        finally:
            for proc in procs:
                proc.stop()
        final = await size()
    cpu_us = sum(proc.cpu_seconds for proc in procs) / count * 1e6
    return SizedRun(
        count / (done - started),
        done - started,
        samples,
        final,
        cpu_us,
        server_cpu_used / count * 1e6,
    )


TABLE_CHANGES = (
    "SELECT s.relname, s.n_dead_tup, s.n_ins_since_vacuum, s.n_mod_since_analyze,"
    " greatest(c.reltuples, 0) FROM pg_stat_user_tables AS s"
    " JOIN pg_class AS c ON c.oid = s.relid"
)


async def vacuum_as_autovacuum(url: str) -> None:
    """What autovacuum would do, for a server that has it off: each second, ``VACUUM`` and
    ``ANALYZE`` each table whose changes passed autovacuum's default triggers, throttled as
    autovacuum is, on a connection of its own, until cancelled."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f"SET vacuum_cost_delay = '{AUTOVACUUM_COST_DELAY}'")
        while True:
            await asyncio.sleep(1.0)
            for table, dead, inserted, changed, rows in await conn.fetch(TABLE_CHANGES):
                vacuum = (
                    dead > AUTOVACUUM_THRESHOLD + AUTOVACUUM_SCALE_FACTOR * rows
                    or inserted
                    > AUTOVACUUM_INSERT_THRESHOLD + AUTOVACUUM_INSERT_SCALE_FACTOR * rows
                )
                analyze = changed > AUTOANALYZE_THRESHOLD + AUTOANALYZE_SCALE_FACTOR * rows
                if vacuum:
                    await conn.execute(f"VACUUM {'(ANALYZE) ' if analyze else ''}{table}")
                elif analyze:
                    await conn.execute(f"ANALYZE {table}")
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def postgres_database() -> AsyncIterator[str]:
    """A fresh PostgreSQL database for one run, dropped after it."""
    name = f"hookline_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(PG_ADMIN_URL)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def size_at(run: SizedRun, seconds: float) -> float:
    """The database's size in MB at the sample nearest ``seconds`` into the run."""
    _, size = min(run.samples, key=lambda s: abs(s[0] - seconds))
    return size / 2**20


async def retention_run(
    nginx: Nginx, work: Path, count: int, pairs: int, postgres: bool = False
) -> Result:
    """End to end with pruning on (a horizon a third of the run, pruned every second) beside
    the same run without it, alternating ``pairs`` times. The horizon is set from the first
    run without pruning, so each run publishes three horizons' worth: the size with pruning
    should level off after the first horizon, while without it it grows to the end.

    PostgreSQL reuses deleted rows' space only once autovacuum has visited the table (every
    minute at most, by default), so its run is twice as long: a horizon of a few seconds
    would only show that autovacuum had not come yet. Its pairs are as many as SQLite's: one
    pair's share moved between 84 % and 104 % from run to run on an idle host."""
    off_runs: list[SizedRun] = []
    on_runs: list[SizedRun] = []
    horizon = 0.0
    for pair in range(pairs):
        off = await end_to_end_sized(nginx, work, count, "off", f"off-{pair}", postgres)
        off_runs.append(off)
        if not horizon:
            horizon = max(3.0, round(off.seconds / RETENTION_HORIZONS))
        on_runs.append(
            await end_to_end_sized(nginx, work, count, f"{horizon:g}s", f"on-{pair}", postgres)
        )
    shares = [on.rate / off.rate for off, on in zip(off_runs, on_runs, strict=True)]
    share = statistics.median(shares)
    off, on = off_runs[-1], on_runs[-1]
    at = {n: horizon * n for n in range(1, RETENTION_HORIZONS + 1)}
    backend = "PostgreSQL, 1 API + 1 worker" if postgres else "SQLite"
    return Result(
        f"retention pruning during the end-to-end run, {backend}",
        {
            "deliveries/s without pruning": statistics.mean(r.rate for r in off_runs),
            "deliveries/s with pruning": statistics.mean(r.rate for r in on_runs),
            "share %": 100 * share,
            "hookline CPU µs/delivery without pruning": statistics.mean(r.cpu_us for r in off_runs),
            "hookline CPU µs/delivery with pruning": statistics.mean(r.cpu_us for r in on_runs),
            **(
                {
                    "PostgreSQL CPU µs/delivery without pruning": statistics.mean(
                        r.server_cpu_us for r in off_runs
                    ),
                    "PostgreSQL CPU µs/delivery with pruning": statistics.mean(
                        r.server_cpu_us for r in on_runs
                    ),
                }
                if postgres
                else {}
            ),
            **({"lowest pair's share %": 100 * min(shares)} if len(shares) > 1 else {}),
            **({"highest pair's share %": 100 * max(shares)} if len(shares) > 1 else {}),
            "horizon s": horizon,
            **{f"MB at {n}h without": size_at(off, t) for n, t in at.items()},
            **{f"MB at {n}h with": size_at(on, t) for n, t in at.items()},
            "MB after without": off.final / 2**20,
            "MB after with": on.final / 2**20,
            "bytes/delivery without": off.final / count,
        },
        statistics.mean(r.rate for r in on_runs),
    )


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


# -- report ------------------------------------------------------------------------------


def machine_facts() -> dict[str, str]:
    cpu = "unknown"
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    versions = {
        name: metadata.version(name)
        for name in ("hookline", "httptools", "aiohttp", "uvicorn", "asyncpg", "orjson", "celery")
    }
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cores": str(os.cpu_count()),
        "cpu": cpu,
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "nginx": subprocess.run(
            ["nginx", "-v"], capture_output=True, text=True, check=False
        ).stderr.strip(),
        **{f"pkg {k}": v for k, v in versions.items()},
        "h2load": subprocess.run(
            ["h2load", "--version"], capture_output=True, text=True, check=False
        ).stdout.strip(),
        "settings": "hookline defaults (HOOKLINE_PROCESSES as named per scenario); "
        "HOOKLINE_ALLOW_NETWORKS=127.0.0.1/32; 1 KB JSON; "
        f"producers: h2load, {CONCURRENCY} keep-alive connections (latency: {CONCURRENCY} "
        "aiohttp clients at a fixed rate)",
    }


def report(results: list[Result], facts: dict[str, str]) -> str:
    baseline = next((r.rate for r in results if r.scenario.startswith("baseline")), None)
    limit = next((r.rate for r in results if r.scenario.startswith("receiver")), None)
    lines = ["# hookline bench", ""]
    lines += [f"- {k}: {v}" for k, v in facts.items()]
    lines += [
        "",
        "| scenario | figures | x baseline | share of limit |",
        "| --- | --- | ---: | ---: |",
    ]
    for r in results:
        shown = ", ".join(
            f"{k} {v:,.1f}" if isinstance(v, float) else f"{k} {v:,}" for k, v in r.figures.items()
        )
        ratio = f"{r.rate / baseline:.1f}x" if baseline and r.rate else ""
        share = f"{r.rate / limit:.0%}" if limit and r.rate else ""
        lines.append(f"| {r.scenario} | {shown} | {ratio} | {share} |")
    return "\n".join(lines) + "\n"


SCENARIOS = (
    "ceiling",
    "baseline",
    "e2e",
    "metrics-off",
    "admission",
    "fanout",
    "ingest",
    "latency",
    "isolation",
    "backlog",
    "postgres",
    "ratelimit",
    "fairness",
    "retention",
    "retention-postgres",
    "stats",
    "anomalies",
    "metrics-scale",
    "search-scale",
    "search-publish-cost",
)


async def _run_step(step: Callable[[], Awaitable[Result]]) -> Result:
    result = await step()
    print(f"{result.scenario}: {result.figures}", flush=True)
    return result


def median_round(rounds: list[Result]) -> Result:
    """The round with the median rate, its figures as measured, and the spread of the rest."""
    ordered = sorted(rounds, key=lambda r: r.rate or 0.0)
    middle = ordered[(len(ordered) - 1) // 2]
    if len(ordered) == 1:
        return middle
    return Result(
        f"{middle.scenario} (median of {len(ordered)} rounds)",
        {
            **middle.figures,
            "slowest round": ordered[0].rate or 0.0,
            "fastest round": ordered[-1].rate or 0.0,
        },
        middle.rate,
    )


async def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated")
    parser.add_argument("--messages", type=int, default=100_000, help="end-to-end size")
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    parser.add_argument(
        "--search-messages", type=int, default=1_000_000, help="search-scale's messages"
    )
    args = parser.parse_args(argv)
    from bench import (
        anomaly_pass,
        attempt_stats,
        metrics_scale,
        policy,
        search_scale,
    )  # they build on this module's helpers

    chosen = args.scenarios.split(",")
    big = 5000 if args.quick else args.messages
    small = 2000 if args.quick else 20_000
    baseline_n = 1000 if args.quick else 5000
    backlog_n = 50_000 if args.quick else 1_000_000
    scale_endpoints = 1000 if args.quick else 10_000
    retention_pairs = 1 if args.quick else RETENTION_PAIRS
    anomalous = 400 if args.quick else anomaly_pass.ENDPOINTS
    search_n = 20_000 if args.quick else args.search_messages
    work = Path(tempfile.mkdtemp(prefix="hookline-bench-"))
    nginx = Nginx(free_port()).start()
    results: list[Result] = []
    try:
        if "ceiling" in chosen:
            results.append(await _run_step(lambda: receiver_ceiling(nginx, big)))
        rounded: list[tuple[str, Callable[[], Awaitable[Result]]]] = [
            ("baseline", lambda: baseline_celery(nginx, work, baseline_n)),
            ("e2e", lambda: end_to_end_sqlite(nginx, work, big)),
            ("e2e", lambda: end_to_end_sqlite(nginx, work, big, processes=2)),
            ("metrics-off", lambda: end_to_end_sqlite(nginx, work, big, metrics=False)),
            ("admission", lambda: end_to_end_sqlite(nginx, work, big, throttle_rate=NOT_BINDING)),
            (
                "admission",
                lambda: end_to_end_sqlite(nginx, work, big, processes=2, throttle_rate=NOT_BINDING),
            ),
        ]
        runs: dict[str, list[Result]] = {}
        for _ in range(1 if args.quick else RATIO_ROUNDS):
            for key, step in rounded:
                if key in chosen:
                    result = await _run_step(step)
                    runs.setdefault(result.scenario, []).append(result)
        results += [median_round(found) for found in runs.values()]
        steps: list[tuple[str, Callable[[], Awaitable[Result]]]] = [
            ("fanout", lambda: end_to_end_sqlite(nginx, work, small // 2, fan_out=10)),
            (
                "fanout",
                lambda: end_to_end_sqlite(nginx, work, small // 2, fan_out=10, processes=2),
            ),
            ("ingest", lambda: ingest_sqlite(work, small)),
            ("latency", lambda: latency_sqlite(work, 500, 5 if args.quick else 30)),
            ("isolation", lambda: isolation_sqlite(nginx, work, big)),
            ("backlog", lambda: backlog_sqlite(nginx, work, backlog_n, 10 if args.quick else 30)),
            ("postgres", lambda: end_to_end_postgres(nginx, work, big, workers=1)),
            ("postgres", lambda: end_to_end_postgres(nginx, work, big, workers=2)),
            ("ratelimit", lambda: policy.rate_limit_postgres(work, None)),
            ("ratelimit", lambda: policy.rate_limit_postgres(work, policy.RATE)),
            ("fairness", lambda: policy.fairness(nginx, work, big, workers=0)),
            ("fairness", lambda: policy.fairness(nginx, work, big, workers=2)),
            ("retention", lambda: retention_run(nginx, work, big, retention_pairs)),
            (
                "retention-postgres",
                lambda: retention_run(nginx, work, 2 * big, retention_pairs, postgres=True),
            ),
            ("stats", lambda: attempt_stats.stats_run(nginx, work, small, postgres=False)),
            ("stats", lambda: attempt_stats.stats_run(nginx, work, small, postgres=True)),
            (
                "anomalies",
                lambda: anomaly_pass.anomaly_run(work, postgres=False, endpoints=anomalous),
            ),
            (
                "anomalies",
                lambda: anomaly_pass.anomaly_run(work, postgres=True, endpoints=anomalous),
            ),
            (
                "metrics-scale",
                lambda: metrics_scale.metrics_scale_run(
                    work, scale_endpoints, backlog_n, postgres=False
                ),
            ),
            (
                "metrics-scale",
                lambda: metrics_scale.metrics_scale_run(
                    work, scale_endpoints, backlog_n, postgres=True
                ),
            ),
            (
                "search-scale",
                lambda: search_scale.search_scale_run(work, search_n, postgres=False),
            ),
            (
                "search-scale",
                lambda: search_scale.search_scale_run(work, search_n, postgres=True),
            ),
            (
                "search-publish-cost",
                lambda: search_scale.publish_cost_run(work, postgres=False),
            ),
            (
                "search-publish-cost",
                lambda: search_scale.publish_cost_run(work, postgres=True),
            ),
        ]
        for key, step in steps:
            if key in chosen:
                results.append(await _run_step(step))
    finally:
        nginx.stop()
    text = report(results, machine_facts())
    print("\n" + text)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{datetime.now(UTC):%Y-%m-%dT%H%M%S}.md"
    out.write_text(text)
    print(f"written to {out.relative_to(ROOT)}; logs in {work}")
    if not args.quick:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
