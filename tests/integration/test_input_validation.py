"""Hostile input to every route that takes it: a 4xx JSON error, never a 500, and nothing
changed. Runs on SQLite and on PostgreSQL (which refuses a NUL in text and a 2**31 integer
that SQLite would take), through the real app in process.

The table replays what an attack on the API found (issue 14), and more; the fuzz sends
hypothesis-generated JSON bodies, path segments and query values to every implemented
route and asks only that nothing answers 5xx.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import asyncpg
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hookline.api.app import Services
from hookline.api.routes import all_routes, create_app
from hookline.config import load_settings
from hookline.operations.context import Operations
from hookline.server import ensure_admin_token
from hookline.storage.base import ListQuery, MessageFilter, Store
from tests.conftest import POSTGRES_URL, STORE_BACKENDS, database_url, make_store

ADMIN = "hl_admin_validation-token-long-enough-for-the-rule"
APP = "/api/v1/app/acme"
EP = APP + "/endpoint/ep1"
OPW = "/api/v1/operational-webhook/endpoint"


@dataclass
class Harness:
    """The app over one store, driven from synchronous tests (hypothesis cannot drive an
    async test) through one event loop kept for the whole test."""

    runner: asyncio.Runner
    client: httpx.AsyncClient
    store: Store

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.runner.run(self.client.request(method, path, **kwargs))

    def snapshot(self) -> dict[str, Any]:
        return self.runner.run(_snapshot(self.store))


async def _snapshot(store: Store) -> dict[str, Any]:
    """Every row a request could change, as comparable values."""
    everything = ListQuery(limit=250)
    apps = (await store.list_applications(everything)).data
    shown: dict[str, Any] = {
        "apps": apps,
        "event_types": (await store.list_event_types(everything, True)).data,
    }
    for app in apps:
        shown[app.id] = (await store.list_endpoints(app.id, everything)).data
        messages = await store.list_messages(app.id, everything, MessageFilter())
        shown[app.id + "/msg"] = [m.id for m in messages.data]
    shown["tasks"] = [t.id for t in (await store.list_tasks(None, everything)).data]
    return shown


@contextmanager
def _opened(request: pytest.FixtureRequest, where: Path) -> Iterator[Harness]:
    """The API on a fresh store of the requested backend, with an application ``acme``, an
    event type ``a.b``, an endpoint ``ep1`` and one message."""
    runner = asyncio.Runner()
    dropped: list[str] = []
    if request.param == "postgres":
        template = request.getfixturevalue("postgres_template")
        name = f"hookline_test_{uuid.uuid4().hex[:12]}"
        runner.run(_admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
        dropped.append(name)
        location = ("postgres", database_url(name))
    else:
        location = ("sqlite", str(where / "validation.db"))
    store = make_store(location)
    settings_ = load_settings({"admin_token": ADMIN}, environ={})
    runner.run(store.open())
    runner.run(ensure_admin_token(store, settings_))
    ops = Operations(store, base_url=settings_.base_url)
    app = create_app(Services(ops=ops, settings=settings_))
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://hookline",
        headers={"authorization": f"Bearer {ADMIN}"},
    )
    harness = Harness(runner, client, store)
    _seed(harness)
    try:
        yield harness
    finally:
        runner.run(client.aclose())
        runner.run(store.close())
        for name in dropped:
            runner.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        runner.close()


@pytest.fixture(params=STORE_BACKENDS)
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    """A harness of its own, for a test that changes things."""
    with _opened(request, tmp_path) as opened:
        yield opened


@pytest.fixture(scope="module", params=STORE_BACKENDS)
def shared(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Harness]:
    """One harness per backend for the table and the fuzz: a refused request changes
    nothing (each case checks it), so the cases need no fresh database each."""
    with _opened(request, tmp_path_factory.mktemp("validation")) as opened:
        yield opened


async def _admin(statement: str) -> None:
    assert POSTGRES_URL is not None
    connection = await asyncpg.connect(POSTGRES_URL)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def _seed(h: Harness) -> None:
    for method, path, body, status in [
        ("POST", "/api/v1/app", {"name": "Acme", "uid": "acme"}, 201),
        ("POST", "/api/v1/event-type", {"name": "a.b", "description": "d"}, 201),
        ("POST", APP + "/endpoint", {"url": "https://example.com/h", "uid": "ep1"}, 201),
        ("POST", APP + "/msg", {"eventType": "a.b", "payload": {"x": 1}, "eventId": "m1"}, 202),
    ]:
        r = h.call(method, path, json=body)
        assert r.status_code == status, r.text


NAIVE = "2024-01-01T00:00:00"
BIG = 2**70
HOSTILE_TEXT = ["a\r\nInjected: 1", "nul\x00", "esc\x1b[31m", "del\x7f"]

ATTACKS: list[tuple[str, str, str, dict[str, Any]]] = [
    # integers beyond 64 bits, and out-of-range numbers
    ("app rate 2**63", "POST", "/api/v1/app", {"json": {"name": "a", "throttleRate": 2**63}}),
    ("app rate 2**31", "POST", "/api/v1/app", {"json": {"name": "a", "throttleRate": 2**31}}),
    ("app rate 2**70 patch", "PATCH", APP, {"json": {"throttleRate": BIG}}),
    ("app rate via rateLimit", "PUT", APP, {"json": {"name": "a", "rateLimit": 2**63}}),
    ("endpoint rate", "PATCH", EP, {"json": {"throttleRate": 2**63}}),
    ("payload int", "POST", APP + "/msg", {"json": {"eventType": "a.b", "payload": {"x": BIG}}}),
    (
        "payload negative int",
        "POST",
        APP + "/msg",
        {"json": {"eventType": "a.b", "payload": {"x": [-(2**64)]}}},
    ),
    (
        "payload NaN",
        "POST",
        APP + "/msg",
        {"content": b'{"eventType":"a.b","payload":{"x":NaN}}'},
    ),
    (
        "payload 1e400",
        "POST",
        APP + "/msg",
        {"content": b'{"eventType":"a.b","payload":{"x":1e400}}'},
    ),
    (
        "schema int",
        "POST",
        "/api/v1/event-type",
        {"json": {"name": "c.d", "description": "d", "schemas": {"1": {"maximum": BIG}}}},
    ),
    (
        "schema int on PUT",
        "PUT",
        "/api/v1/event-type/a.b",
        {"json": {"description": "d", "schemas": {"1": {"maximum": BIG}}}},
    ),
    ("grace 2**70", "POST", EP + "/secret/rotate", {"json": {"gracePeriodSeconds": BIG}}),
    ("limit 2**70", "GET", APP + "/msg?limit=" + str(BIG), {}),
    (
        "retry schedule",
        "PATCH",
        EP,
        {"json": {"policy": {"retry": {"schedule": [BIG]}}}},
    ),
    # dates: out of range, overflowing offsets
    ("recover far future", "POST", EP + "/recover", {"json": {"since": "9999-12-31T23:00:00Z"}}),
    (
        "recover overflowing offset",
        "POST",
        EP + "/recover",
        {"json": {"since": "2024-01-01T00:00:00Z", "until": "9999-12-31T23:59:59-23:00"}},
    ),
    (
        "replay year 1",
        "POST",
        EP + "/replay-missing",
        {"json": {"since": "0001-01-01T00:00:00+01:00"}},
    ),
    (
        "redrive 1900",
        "POST",
        APP + "/dead-letter/redrive",
        {"json": {"since": "1900-01-01T00:00:00Z"}},
    ),
    ("stats 9999", "GET", EP + "/stats?since=9999-12-31T23:59:59-23:00", {}),
    ("msg list 9999", "GET", APP + "/msg?before=9999-12-31T23:59:59-23:00", {}),
    ("dead letters 1900", "GET", APP + "/dead-letter?since=1900-01-01T00:00:00Z", {}),
    # the upsert routes: the path becomes the uid or name
    ("app uid CRLF", "PUT", "/api/v1/app/bad%0d%0auid", {"json": {"name": "x"}}),
    ("app uid control", "PUT", "/api/v1/app/bad%01", {"json": {"name": "x"}}),
    ("app uid 5000", "PUT", "/api/v1/app/" + "u" * 5000, {"json": {"name": "x"}}),
    ("app name 5000", "PUT", "/api/v1/app/fresh", {"json": {"name": "n" * 5000}}),
    ("endpoint uid LF", "PUT", APP + "/endpoint/ep%0a2", {"json": {"url": "https://e.com/"}}),
    ("event type CR", "PUT", "/api/v1/event-type/e%0d1", {"json": {"description": "d"}}),
    ("event type 5000", "PUT", "/api/v1/event-type/" + "e" * 5000, {"json": {"description": "d"}}),
    ("opw uid NUL", "PUT", OPW + "/o%00", {"json": {"url": "https://e.com/"}}),
    # custom headers: counts, sizes, control characters, names
    (
        "10000 headers",
        "PUT",
        EP + "/headers",
        {"json": {"headers": {f"x-h{i}": "v" for i in range(10_000)}}},
    ),
    (
        "51 headers",
        "PATCH",
        EP + "/headers",
        {"json": {"headers": {f"x-{i}": "v" for i in range(51)}}},
    ),
    ("900 KB header", "PUT", EP + "/headers", {"json": {"headers": {"x-big": "v" * 900_000}}}),
    ("9 KB header", "PATCH", EP + "/headers", {"json": {"headers": {"x-big": "v" * 9_000}}}),
    ("header name space", "PUT", EP + "/headers", {"json": {"headers": {"x bad": "v"}}}),
    ("header name colon", "PUT", EP + "/headers", {"json": {"headers": {"x:bad": "v"}}}),
    (
        "header on create",
        "POST",
        APP + "/endpoint",
        {"json": {"url": "https://e.com/", "headers": {"x": "a\x0bb"}}},
    ),
    (
        "opw header DEL",
        "POST",
        OPW,
        {"json": {"url": "https://e.com/", "headers": {"x": "a\x7fb"}}},
    ),
    *[
        (f"header value {i}", "PUT", EP + "/headers", {"json": {"headers": {"x-v": text}}})
        for i, text in enumerate(["a\x0bb", "a\x7fb", *HOSTILE_TEXT])
    ],
    # URLs that would fail every delivery
    *[
        (f"url {url}", "POST", APP + "/endpoint", {"json": {"url": url}})
        for url in [
            "https://example.com:99999/",
            "https://example.com:0/",
            "https://ex ample.com/",
            "https://127.1/",
            "gopher://example.com/",
            "https://[::1/",
        ]
    ],
    ("url on PUT", "PUT", EP, {"json": {"url": "https://example.com:99999/"}}),
    ("url on PATCH", "PATCH", EP, {"json": {"url": "https://example.com:65536/"}}),
    ("opw url", "PUT", OPW + "/o1", {"json": {"url": "https://e x.com/"}}),
    # names and text with control characters
    *[
        (f"app name {i}", "POST", "/api/v1/app", {"json": {"name": text}})
        for i, text in enumerate(HOSTILE_TEXT)
    ],
    *[
        (f"endpoint description {i}", "PATCH", EP, {"json": {"description": text}})
        for i, text in enumerate(HOSTILE_TEXT[1:])
    ],
    ("description 9000", "PATCH", "/api/v1/event-type/a.b", {"json": {"description": "d" * 9000}}),
    (
        "inline app name",
        "POST",
        "/api/v1/app/new1/msg",
        {"json": {"eventType": "a.b", "payload": {}, "application": {"name": "a\nb"}}},
    ),
    (
        "tag CRLF",
        "POST",
        APP + "/msg",
        {"json": {"eventType": "a.b", "payload": {}, "tags": ["a\r\nb"]}},
    ),
    ("group name", "PATCH", "/api/v1/event-type/a.b", {"json": {"groupName": "a b"}}),
    # query values and headers
    ("channel NUL", "GET", APP + "/msg?channel=%00", {}),
    ("tag NUL", "GET", APP + "/msg?tag=a%00", {}),
    ("iterator NUL", "GET", APP + "/endpoint?iterator=%00", {}),
    ("event_types CR", "GET", APP + "/msg?event_types=a%0db", {}),
    ("endpoint_id NUL", "GET", APP + "/dead-letter?endpoint_id=%00", {}),
    (
        "idempotency key too long",
        "POST",
        "/api/v1/app",
        {"json": {"name": "a"}, "headers": {"idempotency-key": "k" * 300}},
    ),
    ("path NUL on get", "GET", "/api/v1/app/a%00b", {}),
    # found by Schemathesis (tests/e2e/test_schemathesis.py): empty filters, numbers taken
    # for dates, coerced types, an empty idempotency key, token fields without rules
    ("empty tag", "GET", APP + "/msg?tag=", {}),
    ("empty iterator", "GET", APP + "/endpoint?iterator=", {}),
    ("empty until", "GET", APP + "/dead-letter?until=", {}),
    ("empty limit", "GET", "/api/v1/app?limit=", {}),
    ("before as seconds", "GET", APP + "/msg?before=0.5", {}),
    ("since as seconds", "POST", EP + "/recover", {"json": {"since": "1700000000"}}),
    ("since as a number", "POST", EP + "/recover", {"json": {"since": 1700000000}}),
    (
        "empty idempotency key",
        "POST",
        "/api/v1/app",
        {"json": {"name": "a"}, "headers": {"idempotency-key": ""}},
    ),
    ("readOnly 0", "POST", "/api/v1/token", {"json": {"appId": "acme", "readOnly": 0}}),
    ("deprecated 0", "PATCH", "/api/v1/event-type/a.b", {"json": {"deprecated": 0}}),
    ("disabled string", "PATCH", EP, {"json": {"disabled": "true"}}),
    ("rate as string", "POST", "/api/v1/app", {"json": {"name": "a", "throttleRate": "5"}}),
    ("token name CRLF", "POST", "/api/v1/token", {"json": {"name": "a\r\nb"}}),
    ("token app id space", "POST", "/api/v1/token", {"json": {"appId": "a b"}}),
]


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [pytest.param(m, p, k, id=name) for name, m, p, k in ATTACKS],
)
def test_hostile_input_is_refused_and_changes_nothing(
    shared: Harness, method: str, path: str, kwargs: dict[str, Any]
) -> None:
    """Every input of the table answers a 4xx JSON error naming the problem, and every
    application, endpoint (its version and headers), event type, message and task is as
    it was."""
    before = shared.snapshot()
    r = shared.call(method, path, **kwargs)
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:300])
    assert r.headers["content-type"] == "application/json"
    assert "detail" in r.json()
    assert shared.snapshot() == before


def test_naive_dates_are_read_as_utc_on_every_route(harness: Harness) -> None:
    """A date without an offset (the attack's 500 in ``recover``) is UTC, in bodies and
    query strings alike, and mixes with offset-carrying ones."""
    for method, path, body in [
        ("POST", EP + "/recover?dry_run=true", {"since": NAIVE}),
        (
            "POST",
            EP + "/replay-missing?dry_run=true",
            {"since": NAIVE, "until": "2025-01-01T00:00:00+01:00"},
        ),
        ("POST", EP + "/bulk-replay?dry_run=true", {"since": NAIVE}),
        ("POST", APP + "/dead-letter/redrive?dry_run=true", {"since": NAIVE}),
    ]:
        r = harness.call(method, path, json=body)
        assert r.status_code == 200, (path, r.text)
    for path in [
        EP + f"/stats?since={NAIVE}&until=2030-01-01T00:00:00Z",
        APP + f"/msg?before={NAIVE}",
        APP + f"/dead-letter?since={NAIVE}",
    ]:
        assert harness.call("GET", path).status_code == 200, path


def test_endpoints_per_application_are_capped(harness: Harness) -> None:
    """Past HOOKLINE_MAX_ENDPOINTS_PER_APP (100 by default) a create, or a PUT that would
    create, answers 409 ``endpoint_limit_reached``; a PUT of an existing one still works."""
    for i in range(99):
        r = harness.call("POST", APP + "/endpoint", json={"url": f"https://e.com/{i}"})
        assert r.status_code == 201, r.text
    before = harness.snapshot()
    refused = harness.call("POST", APP + "/endpoint", json={"url": "https://e.com/x"})
    assert refused.status_code == 409 and refused.json()["code"] == "endpoint_limit_reached"
    upsert = harness.call("PUT", APP + "/endpoint/ep-new", json={"url": "https://e.com/x"})
    assert upsert.status_code == 409
    assert harness.snapshot() == before
    kept = harness.call("PUT", EP, json={"url": "https://e.com/changed"})
    assert kept.status_code == 200


# -- fuzz --------------------------------------------------------------------------------

_TEXT = st.text(max_size=40) | st.sampled_from([*HOSTILE_TEXT, "", "a" * 300])
_NUMBER = (
    st.integers()
    | st.sampled_from([2**63, 2**64, -(2**63) - 1, 2**31, 10**30])
    | st.floats(allow_nan=False, allow_infinity=False)
)
_JSON = st.recursive(
    st.none() | st.booleans() | _NUMBER | _TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
    max_leaves=12,
)
_FIELDS = [
    "name", "uid", "url", "description", "throttleRate", "rateLimit", "eventTypes",
    "filterTypes", "channels", "metadata", "policy", "secret", "headers", "deleteHeaders",
    "eventType", "payload", "eventId", "tags", "application", "deliverAt", "orderingKey",
    "since", "until", "status", "statusCodeClass", "tag", "channel", "gracePeriodSeconds",
    "key", "schemas", "groupName", "featureFlags", "archived", "endpointId", "expiry",
    "payloadRetentionPeriod", "payloadRetentionHours", "exampleIndex",
]  # fmt: skip
_BODIES = st.dictionaries(st.sampled_from(_FIELDS), _JSON, max_size=6) | _JSON
_BODY_ROUTES = sorted(
    {(r.method, r.path) for r in all_routes() if r.implemented and r.body is not None}
)
_VALUES = {
    "app_id": "acme",
    "endpoint_id": "ep1",
    "event_type_name": "a.b",
    "msg_id": "m1",
    "attempt_id": "atmpt_x",
    "task_id": "qtask_x",
}


def _path(template: str, hostile: dict[str, str] | None = None) -> str:
    values = {**_VALUES, **{k: quote(v, safe="") for k, v in (hostile or {}).items()}}
    for name, value in values.items():
        template = template.replace("{" + name + "}", value)
    return template


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(route=st.sampled_from(_BODY_ROUTES), body=_BODIES)
def test_no_json_body_gets_a_5xx(shared: Harness, route: tuple[str, str], body: Any) -> None:
    """Any JSON body, to any route that takes one, answers below 500 with JSON (or 204)."""
    method, path = route
    r = shared.call(method, _path(path), json=body)
    assert r.status_code < 500, (method, path, body, r.text[:300])
    if r.status_code != 204:
        r.json()


_SEGMENT = st.text(
    st.characters(codec="utf-8", exclude_characters="/?#%"), min_size=1, max_size=300
)
_ALL_ROUTES = sorted({(r.method, r.path, r.query) for r in all_routes() if r.implemented})


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    route=st.sampled_from(_ALL_ROUTES),
    segment=_SEGMENT,
    query_value=_TEXT | _NUMBER.map(str),
)
def test_no_path_segment_or_query_value_gets_a_5xx(
    shared: Harness, route: tuple[str, str, tuple[str, ...]], segment: str, query_value: str
) -> None:
    """Any text as a path segment, and any text as the value of each query parameter a
    route reads, answers below 500."""
    method, path, names = route
    hostile = {name: segment for name in _VALUES if "{" + name + "}" in path}
    target = _path(path, dict(list(hostile.items())[:1]))
    query = {name: query_value for name in names}
    r = shared.call(method, target, params=query, json={})
    assert r.status_code < 500, (method, target, query, r.text[:300])


def test_a_405_lists_the_allowed_methods(shared: Harness) -> None:
    """RFC 9110 §15.5.6: a 405 says which methods the resource supports, in ``Allow``."""
    r = shared.call("DELETE", "/api/v1/app")
    assert r.status_code == 405 and r.headers["allow"] == "GET, POST"
    r = shared.call("POST", APP)
    assert r.status_code == 405 and r.headers["allow"] == "DELETE, GET, PATCH, PUT"
    assert "allow" not in shared.call("GET", "/api/v1/nothing-here").headers
