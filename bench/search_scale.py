"""The deliveries-search scenario of `make bench` (`--scenarios search-scale`): the operator
console's search (`Store.search_deliveries`, `GET /api/v1/deliveries`) with 1,000,000
messages and about 10,000,000 attempts (issue 16: a filtered page under 300 ms p95, payload
search under 1 s), on SQLite and on PostgreSQL.

1. Fills the database straight through SQL (the schema and its triggers as migrated, so
   SQLite's word index is written by its triggers and PostgreSQL's by its index): 20
   applications of 5 endpoints; messages a few seconds apart over the last month, each to
   two endpoints of its application, with a 1 KB-ish payload (a unique customer id and
   email, a status word of skewed frequency, five words of a 1,000-word vocabulary);
   deliveries mostly succeeded, 5 % failed, 0.5 % pending; 1 to 9 attempts each (5 on
   average), the earlier ones failed with 500, 503, 0, 429 or 502. Then `ANALYZE`.
2. Times `Store.search_deliveries` for each shape in ``FILTERED`` and ``PAYLOAD``,
   ``REPEATS`` times with a different value each time, one after another, in this process
   against the real store, and reports p50 and p95 per shape and over each family.
"""

from __future__ import annotations

import json
import random
import sqlite3
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from bench import run as core
from hookline.config import load_settings
from hookline.domain import ids
from hookline.domain.models import Application, Endpoint, Message, MessageStatus, SigningKey
from hookline.domain.search import Cursor, DeliverySearch, parse_terms
from hookline.domain.signing import generate_secret
from hookline.server import open_store
from hookline.storage.base import Store

APPS = 20
ENDPOINTS_PER_APP = 5
FAN_OUT = 2
REPEATS = 20
STATUS_WORDS = (("paid", 70), ("pending", 20), ("refunded", 9), ("disputed", 1))
EVENT_TYPES = (*(f"order.step{i}" for i in range(19)), "invoice.disputed")
VOCABULARY = tuple(
    f"{a}{b}"
    for a in ("al", "be", "ga", "de", "ep", "ze", "et", "th", "io", "ka")
    for b in range(100)
)
CODES = (500, 503, 0, 429, 502)
BATCH = 20_000

Shape = Callable[[random.Random, "Seeded"], DeliverySearch]


class Seeded:
    """What the fill made, for the shapes to pick values from."""

    def __init__(self, messages: int, start_ms: int, step_ms: int) -> None:
        self.messages = messages
        self.start_ms = start_ms
        self.step_ms = step_ms
        self.apps = [f"app_search{a:02d}" for a in range(APPS)]
        self.endpoints = [
            f"ep_search{a:02d}{e}" for a in range(APPS) for e in range(ENDPOINTS_PER_APP)
        ]

    def msg_id(self, n: int) -> str:
        return ids.first_id_at(ids.MESSAGE, self.start_ms + n * self.step_ms)

    def at(self, n: int) -> datetime:
        return datetime.fromtimestamp((self.start_ms + n * self.step_ms) / 1000, tz=UTC)


def _mix(n: int) -> int:
    """A well-spread integer of ``n`` (Knuth's multiplicative hash), so that a message's
    status, attempts and words do not follow its application (``n % APPS``)."""
    return (n * 2654435761 % 2**32) >> 8


def _status_word(n: int) -> str:
    slot = _mix(n) % 100
    for word, share in STATUS_WORDS:
        if slot < share:
            return word
        slot -= share
    return STATUS_WORDS[0][0]


def _payload(n: int) -> bytes:
    rng = random.Random(n)
    return json.dumps(
        {
            "type": "order.updated",
            "data": {
                "id": f"ord_{n:08d}",
                "customer": {
                    "id": f"cus_{n:08d}",
                    "email": f"buyer{n}@example.com",
                    "tier": "gold",
                },
                "status": _status_word(n),
                "amount": n % 10_000,
                "currency": "EUR",
                "items": [{"sku": f"SKU-{n % 5000}", "qty": 1 + n % 3}],
                "note": " ".join(rng.choice(VOCABULARY) for _ in range(5)),
                "shipping": {"street": "12 Long Road", "city": "Lyon", "zip": "69001"},
            },
            "padding": "x" * 600,
        },
        separators=(",", ":"),
    ).encode()


def _event_type(n: int) -> str:
    return EVENT_TYPES[19] if n % 1000 == 7 else EVENT_TYPES[n % 19]


def _delivery_state(n: int, e: int) -> tuple[int, int]:
    """(status, attempt count) of message ``n``'s delivery to its ``e``-th endpoint."""
    k = _mix(n * 2 + e)
    if k % 200 == 3:
        return int(MessageStatus.PENDING), 1
    status = MessageStatus.FAIL if k % 20 == 1 else MessageStatus.SUCCESS
    return int(status), 1 + (k * 7) % 9


def _rows(
    seeded: Seeded,
) -> Iterator[tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]]]:
    """Batches of (messages, deliveries, attempts) rows."""
    msgs: list[tuple[Any, ...]] = []
    dels: list[tuple[Any, ...]] = []
    atts: list[tuple[Any, ...]] = []
    for n in range(seeded.messages):
        app = n % APPS
        msg_id = seeded.msg_id(n)
        created = seeded.start_ms + n * seeded.step_ms
        msgs.append((msg_id, seeded.apps[app], _event_type(n), _payload(n), created))
        for e in range(FAN_OUT):
            endpoint = seeded.endpoints[app * ENDPOINTS_PER_APP + (n + e) % ENDPOINTS_PER_APP]
            status, count = _delivery_state(n, e)
            suffix = msg_id[4:]
            dels.append(
                (f"dlv_{suffix}{e}", seeded.apps[app], msg_id, endpoint, status, count, created)
            )
            for i in range(count):
                last = i == count - 1
                code = 200 if last and status == 0 else CODES[(n + i) % len(CODES)]
                atts.append(
                    (
                        f"atmpt_{suffix}{e}{i}",
                        seeded.apps[app],
                        msg_id,
                        endpoint,
                        0 if code == 200 else 2,
                        code,
                        created + i * 1000,
                    )
                )
        if len(msgs) >= BATCH:
            yield msgs, dels, atts
            msgs, dels, atts = [], [], []
    if msgs:
        yield msgs, dels, atts


_APP_SQL = (
    "INSERT INTO applications (id, uid, name, metadata, created_at, updated_at) "
    "VALUES ($1, NULL, $1, '{}', 0, 0)"
)
_EP_SQL = (
    "INSERT INTO endpoints (id, app_id, url, description, metadata, headers, keys, "
    "created_at, updated_at) VALUES ($1, $2, 'https://example.com/h', '', '{}', '{}', "
    "'[]', 0, 0)"
)
_MSG_SQL = (
    "INSERT INTO messages (id, app_id, event_type, payload, created_at) VALUES ($1, $2, $3, $4, $5)"
)
_DEL_SQL = (
    "INSERT INTO deliveries (id, app_id, msg_id, endpoint_id, status, attempt_count, "
    "updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)"
)
_ATT_SQL = (
    "INSERT INTO attempts (id, app_id, msg_id, endpoint_id, url, status, "
    "response_status_code, response, duration_ms, trigger_type, created_at) "
    "VALUES ($1, $2, $3, $4, 'https://example.com/h', $5, $6, '', 30, 0, $7)"
)


_ATT_TEMP = (
    "CREATE TEMP TABLE IF NOT EXISTS att_in (id text, app_id text, msg_id text, "
    "endpoint_id text, status int, code int, created_at bigint)"
)


_ATT_COPY = (
    "INSERT INTO attempts (id, app_id, msg_id, endpoint_id, url, status, response_status_code, "
    "response, duration_ms, trigger_type, created_at) SELECT id, app_id, msg_id, endpoint_id, "
    "'https://example.com/h', status, code, '', 30, 0, created_at FROM att_in"
)


def _sqlite(text: str) -> str:
    for i in range(9, 0, -1):
        text = text.replace(f"${i}", f"?{i}")
    return text


def _fill_sqlite(path: Path, seeded: Seeded) -> None:
    conn = sqlite3.connect(path, timeout=60)
    try:
        conn.execute("PRAGMA synchronous = OFF")
        with conn:
            conn.executemany(_sqlite(_APP_SQL), [(a,) for a in seeded.apps])
            conn.executemany(
                _sqlite(_EP_SQL),
                [(e, seeded.apps[i // ENDPOINTS_PER_APP]) for i, e in enumerate(seeded.endpoints)],
            )
        for msgs, dels, atts in _rows(seeded):
            with conn:
                conn.executemany(_sqlite(_MSG_SQL), msgs)
                conn.executemany(_sqlite(_DEL_SQL), dels)
                conn.executemany(_sqlite(_ATT_SQL), atts)
        conn.execute("ANALYZE")
    finally:
        conn.close()


async def _fill_postgres(url: str, seeded: Seeded) -> None:
    db = await asyncpg.connect(url)
    try:
        await db.executemany(_APP_SQL, [(a,) for a in seeded.apps])
        await db.executemany(
            _EP_SQL,
            [(e, seeded.apps[i // ENDPOINTS_PER_APP]) for i, e in enumerate(seeded.endpoints)],
        )
        columns = {
            "messages": ("id", "app_id", "event_type", "payload", "created_at"),
            "deliveries": (
                "id",
                "app_id",
                "msg_id",
                "endpoint_id",
                "status",
                "attempt_count",
                "updated_at",
            ),
        }
        for msgs, dels, atts in _rows(seeded):
            async with db.transaction():
                await db.copy_records_to_table(
                    "messages", records=msgs, columns=columns["messages"]
                )
                await db.copy_records_to_table(
                    "deliveries", records=dels, columns=columns["deliveries"]
                )
                await db.execute(_ATT_TEMP)
                await db.copy_records_to_table("att_in", records=atts, columns=None)
                await db.execute(_ATT_COPY)
                await db.execute("TRUNCATE att_in")
        await db.execute("VACUUM ANALYZE")
    finally:
        await db.close()


def _filtered(seeded: Seeded) -> dict[str, Shape]:
    def pick_app(rng: random.Random) -> str:
        return rng.choice(seeded.apps)

    def window(rng: random.Random) -> DeliverySearch:
        n = rng.randrange(seeded.messages)
        return DeliverySearch(after=seeded.at(n), before=seeded.at(n) + timedelta(hours=6))

    def deep(rng: random.Random) -> DeliverySearch:
        n = rng.randrange(seeded.messages)
        return DeliverySearch(cursor=Cursor(seeded.msg_id(n), "ep_zzz"))

    return {
        "newest page": lambda rng, s: DeliverySearch(),
        "a page deep in the list (iterator)": lambda rng, s: deep(rng),
        "application": lambda rng, s: DeliverySearch(app_id=pick_app(rng)),
        "endpoint": lambda rng, s: DeliverySearch(endpoint_id=rng.choice(s.endpoints)),
        "event type (5 %)": lambda rng, s: DeliverySearch(
            event_types=(rng.choice(EVENT_TYPES[:19]),)
        ),
        "event type (0.1 %)": lambda rng, s: DeliverySearch(event_types=(EVENT_TYPES[19],)),
        "status failed": lambda rng, s: DeliverySearch(status=MessageStatus.FAIL),
        "application + failed": lambda rng, s: DeliverySearch(
            app_id=pick_app(rng), status=MessageStatus.FAIL
        ),
        "status code 503": lambda rng, s: DeliverySearch(status_code=503),
        "endpoint + 5xx": lambda rng, s: DeliverySearch(
            endpoint_id=rng.choice(s.endpoints), status_code_class=500
        ),
        "6 h window": lambda rng, s: window(rng),
        "application + event type + 6 h window": lambda rng, s: replace(
            window(rng), app_id=pick_app(rng), event_types=(rng.choice(EVENT_TYPES[:19]),)
        ),
    }


def _payload_shapes(seeded: Seeded) -> dict[str, Shape]:
    def term(text: str, **more: Any) -> DeliverySearch:
        return DeliverySearch(terms=parse_terms(text), **more)

    def n(rng: random.Random) -> int:
        return rng.randrange(seeded.messages)

    return {
        "customer id (1 message)": lambda rng, s: term(f"cus_{n(rng):08d}"),
        "email (1 message)": lambda rng, s: term(f"buyer{n(rng)}@example.com"),
        "path data.customer.id=… (1 message)": lambda rng, s: term(
            f"data.customer.id=cus_{n(rng):08d}"
        ),
        "vocabulary word (0.5 %)": lambda rng, s: term(rng.choice(VOCABULARY)),
        "two words": lambda rng, s: term(f"{rng.choice(VOCABULARY)} {rng.choice(VOCABULARY)}"),
        "status word (1 %)": lambda rng, s: term("disputed"),
        "status word (9 %)": lambda rng, s: term("refunded"),
        "status word (70 %)": lambda rng, s: term("paid"),
        "path data.status=refunded (9 %)": lambda rng, s: term("data.status=refunded"),
        "word (0.5 %) + application": lambda rng, s: term(
            rng.choice(VOCABULARY), app_id=rng.choice(s.apps)
        ),
        "absent word": lambda rng, s: term("nowhere"),
    }


async def _time(store: Store, seeded: Seeded, shapes: dict[str, Shape]) -> dict[str, list[float]]:
    rng = random.Random(16)
    took: dict[str, list[float]] = {}
    for name, shape in shapes.items():
        for _ in range(REPEATS):
            search = shape(rng, seeded)
            started = time.perf_counter()
            await store.search_deliveries(search)
            took.setdefault(name, []).append((time.perf_counter() - started) * 1000)
    return took


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(took: dict[str, list[float]]) -> dict[str, float]:
    every = [v for values in took.values() for v in values]
    figures = {"p50 ms": _p(every, 0.5), "p95 ms": _p(every, 0.95)}
    for name, values in took.items():
        figures[f"{name} p50/p95 ms"] = statistics.median(values)
        figures[f"{name} p95 ms"] = _p(values, 0.95)
    return figures


async def search_scale_run(work: Path, messages: int, postgres: bool) -> core.Result:
    """One backend: the fill, then the timed searches."""
    if postgres:
        async with core.postgres_database() as url:
            return await _run(url, None, messages)
    path = work / "search.db"
    path.unlink(missing_ok=True)
    return await _run(f"sqlite:///{path}", path, messages)


async def _run(url: str, sqlite_path: Path | None, messages: int) -> core.Result:
    store = open_store(load_settings({"database_url": url}, environ={}))
    await store.open()
    step_ms = max(4, int(timedelta(days=30).total_seconds() * 1000) // messages // 4 * 4)
    start_ms = int((datetime.now(UTC) - timedelta(days=31)).timestamp() * 1000)
    seeded = Seeded(messages, start_ms, step_ms)
    try:
        started = time.perf_counter()
        if sqlite_path is not None:
            _fill_sqlite(sqlite_path, seeded)
        else:
            await _fill_postgres(url, seeded)
        fill_s = time.perf_counter() - started
        filtered = await _time(store, seeded, _filtered(seeded))
        payload = await _time(store, seeded, _payload_shapes(seeded))
    finally:
        await store.close()
    backend = "postgres" if sqlite_path is None else "sqlite"
    figures: dict[str, float] = {"messages": float(messages), "fill s": fill_s}
    figures.update({f"filtered {k}": v for k, v in summary(filtered).items()})
    figures.update({f"payload {k}": v for k, v in summary(payload).items()})
    return core.Result(f"search-scale {backend}", figures)


# -- the word index's cost on the publish path ------------------------------------------

PUBLISH_BATCH = 100
"""Messages per `Store.publish` call: what one group commit holds under a steady load."""
_UNINDEXED = {
    "sqlite": (
        "DROP TRIGGER message_search_added",
        "DROP TRIGGER message_search_removed",
        "DROP TRIGGER message_search_expunged",
    ),
    "postgres": ("DROP INDEX messages_words",),
}
"""What takes the word index off the publish path: the same schema without it."""


async def _publish_once(url: str, indexed: bool, messages: int) -> float:
    """Seconds to publish ``messages`` realistic payloads, each to two endpoints, in batches
    of ``PUBLISH_BATCH``, into a fresh database with or without the word index."""
    store = open_store(load_settings({"database_url": url}, environ={}))
    await store.open()
    try:
        if not indexed:
            backend = "sqlite" if url.startswith("sqlite:") else "postgres"
            await _run_statements(url, _UNINDEXED[backend])
        now = datetime.now(UTC)
        app = Application(ids.new_id(ids.APP), "publish-cost", None, None, {}, now, now)
        await store.create_application(app)
        for _ in range(FAN_OUT):
            await store.create_endpoint(_endpoint(app.id, now))
        batches = [
            [
                Message(
                    ids.new_id(ids.MESSAGE),
                    app.id,
                    "order.updated",
                    None,
                    _payload(n),
                    None,
                    None,
                    now,
                )
                for n in range(start, min(messages, start + PUBLISH_BATCH))
            ]
            for start in range(0, messages, PUBLISH_BATCH)
        ]
        started = time.perf_counter()
        for batch in batches:
            await store.publish(batch, now)
        return time.perf_counter() - started
    finally:
        await store.close()


def _endpoint(app_id: str, now: datetime) -> Endpoint:
    return Endpoint(
        ids.new_id(ids.ENDPOINT),
        app_id,
        "https://example.com/h",
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


async def _run_statements(url: str, statements: tuple[str, ...]) -> None:
    if url.startswith("sqlite:"):
        conn = sqlite3.connect(url.removeprefix("sqlite:///"), timeout=60)
        try:
            for statement in statements:
                conn.execute(statement)
            conn.commit()
        finally:
            conn.close()
        return
    db = await asyncpg.connect(url)
    try:
        for statement in statements:
            await db.execute(statement)
    finally:
        await db.close()


async def publish_cost_run(
    work: Path, postgres: bool, messages: int = 20_000, rounds: int = 6
) -> core.Result:
    """Pairs of publishes, with and without the word index, alternating so that the host's
    drift hits both alike; the median over the pairs of the per-message cost of each, and
    the median of the pairs' ratios."""
    pairs: list[tuple[float, float]] = []
    for r in range(rounds):
        took: dict[bool, float] = {}
        for indexed in (r % 2 == 0, r % 2 != 0):
            if postgres:
                async with core.postgres_database() as url:
                    took[indexed] = await _publish_once(url, indexed, messages)
            else:
                path = work / f"publish-{indexed}-{r}.db"
                took[indexed] = await _publish_once(f"sqlite:///{path}", indexed, messages)
                path.unlink(missing_ok=True)
        pairs.append((took[True], took[False]))
    per = 1e6 / messages
    backend = "postgres" if postgres else "sqlite"
    return core.Result(
        f"search-publish-cost {backend}",
        {
            "messages": float(messages),
            "indexed µs/message": statistics.median(a for a, _ in pairs) * per,
            "unindexed µs/message": statistics.median(b for _, b in pairs) * per,
            "median ratio": statistics.median(a / b for a, b in pairs),
            "ratios": float(len(pairs)),
        },
        notes=", ".join(f"{a / b:.2f}" for a, b in pairs),
    )
