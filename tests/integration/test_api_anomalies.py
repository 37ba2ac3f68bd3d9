"""``GET /api/v1/anomalies`` through the real ASGI app: what anomaly detection found, newest
first, filtered by status and paged; admins only, as anomalies span every application."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

from hookline.domain import ids
from hookline.domain.anomaly import (
    DAILY,
    FAILURE_SPIKE,
    LATENCY_SHIFT,
    RECENT,
    VOLUME_DROP,
    Anomaly,
    describe,
)
from hookline.storage.base import ListQuery
from tests.conftest import make_app, make_endpoint
from tests.integration.conftest import Api

URL = "/api/v1/anomalies"
T0 = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
WIRE_UNITS = {FAILURE_SPIKE: "ratio", LATENCY_SHIFT: "ms", VOLUME_DROP: "per_minute"}
"""The documented unit of each kind (``AnomalyOut.unit``), stated here, not read back."""


def _when(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


async def _seed(api: Api) -> list[Anomaly]:
    """Four anomalies, oldest id first: an endpoint's failure spike (resolved), its latency
    shift (open), the application's volume drop (open), another endpoint's failure spike
    (resolved). As stored, resolved ones with their end."""
    app = make_app()
    await api.store.create_application(app)
    one, two = make_endpoint(app), make_endpoint(app, "https://example.com/two")
    for endpoint in (one, two):
        await api.store.create_endpoint(endpoint)
    given = [
        (FAILURE_SPIKE, one.id, 0.75, 0.0625, RECENT),
        (LATENCY_SHIFT, one.id, 812.5, 120.0, RECENT),
        (VOLUME_DROP, None, 0.0, 42.5, DAILY),
        (FAILURE_SPIKE, two.id, 0.5, 0.125, RECENT),
    ]
    made: list[Anomaly] = []
    for i, (kind, endpoint_id, observed, expected, basis) in enumerate(given):
        at = T0 + timedelta(minutes=10 * i)
        anomaly = Anomaly(
            id=ids.new_id(ids.ANOMALY),
            kind=kind,
            app_id=app.id,
            endpoint_id=endpoint_id,
            detected_at=at,
            last_seen_at=at + timedelta(minutes=2),
            resolved_at=None,
            observed=observed,
            expected=expected,
            basis=basis,
        )
        assert await api.store.open_anomaly(anomaly)
        made.append(anomaly)
    for i in (0, 3):
        ended = made[i].detected_at + timedelta(minutes=8)
        assert await api.store.resolve_anomaly(made[i].id, ended)
        made[i] = dataclasses.replace(made[i], resolved_at=ended)
    assert sorted(a.id for a in made) == [a.id for a in made]
    return made


def _check_wire(item: dict[str, Any], anomaly: Anomaly) -> None:
    """The item is the anomaly in camelCase, with its scope, unit, basis and description."""
    assert set(item) == {
        "id",
        "kind",
        "scope",
        "appId",
        "endpointId",
        "detectedAt",
        "lastSeenAt",
        "resolvedAt",
        "observed",
        "expected",
        "unit",
        "baseline",
        "description",
    }
    assert item["id"] == anomaly.id
    assert item["kind"] == anomaly.kind
    assert item["scope"] == ("application" if anomaly.endpoint_id is None else "endpoint")
    assert item["appId"] == anomaly.app_id
    assert item["endpointId"] == anomaly.endpoint_id
    assert _when(item["detectedAt"]) == anomaly.detected_at
    assert _when(item["lastSeenAt"]) == anomaly.last_seen_at
    assert _when(item["resolvedAt"]) == anomaly.resolved_at
    assert item["observed"] == anomaly.observed
    assert item["expected"] == anomaly.expected
    assert item["unit"] == WIRE_UNITS[anomaly.kind]
    assert item["baseline"] == anomaly.basis
    assert item["description"] == describe(anomaly) and item["description"]


async def _ids(api: Api, **params: str) -> list[str]:
    r = await api.client.get(URL, params=params)
    assert r.status_code == 200, r.text
    return [item["id"] for item in r.json()["data"]]


async def test_an_admin_lists_anomalies_newest_first_with_the_wire_fields(api: Api) -> None:
    """Every anomaly, newest (highest id) first by default, each with its camelCase wire
    fields: open ones with a null ``resolvedAt``, the application-wide one with a null
    ``endpointId`` and scope ``application``."""
    made = await _seed(api)
    r = await api.client.get(URL)
    assert r.status_code == 200, r.text
    page = r.json()
    assert page["done"] is True
    assert [item["id"] for item in page["data"]] == [a.id for a in reversed(made)]
    for item, anomaly in zip(page["data"], reversed(made), strict=True):
        _check_wire(item, anomaly)
    by_id = {item["id"]: item for item in page["data"]}
    assert by_id[made[1].id]["resolvedAt"] is None
    assert (by_id[made[2].id]["scope"], by_id[made[2].id]["endpointId"]) == ("application", None)
    assert await _ids(api, order="ascending") == [a.id for a in made]


async def test_no_anomalies_is_an_empty_done_page(api: Api) -> None:
    """With nothing found the list is empty and done."""
    r = await api.client.get(URL)
    assert r.status_code == 200, r.text
    assert (r.json()["data"], r.json()["done"]) == ([], True)


async def test_status_keeps_the_open_or_the_resolved_anomalies(api: Api) -> None:
    """``status=open`` lists the unresolved anomalies, ``status=resolved`` the ended ones,
    each newest first; without ``status`` every one is listed."""
    made = await _seed(api)
    assert await _ids(api, status="open") == [made[2].id, made[1].id]
    assert await _ids(api, status="resolved") == [made[3].id, made[0].id]
    assert await _ids(api) == [a.id for a in reversed(made)]
    r = await api.client.get(URL, params={"status": "resolved"})
    assert all(item["resolvedAt"] is not None for item in r.json()["data"])


async def test_an_unknown_status_is_a_422_naming_the_query_parameter(api: Api) -> None:
    """``status=bogus`` (or a case variant of a real one, both at once, or an empty value) is
    refused with a JSON 422 whose error locates ``status`` in the query, and changes
    nothing."""
    made = await _seed(api)
    before = await api.store.list_anomalies(ListQuery(limit=50), None)
    for bogus in ("bogus", "OPEN", "open,resolved", ""):
        r = await api.client.get(URL, params={"status": bogus})
        assert r.status_code == 422, r.text
        assert r.headers["content-type"].startswith("application/json")
        assert r.json()["detail"][0]["loc"] == ["query", "status"]
    assert await api.store.list_anomalies(ListQuery(limit=50), None) == before
    assert len(before.data) == len(made)


async def test_an_application_token_may_not_list_anomalies(api: Api) -> None:
    """Anomalies span every application: an application-scoped token gets 403, even for its
    own application's anomalies, and a token this deployment never issued gets 401."""
    await _seed(api)
    r = await api.client.post("/api/v1/app", json={"name": "A", "uid": "acme"})
    assert r.is_success, r.text
    r = await api.client.post("/api/v1/token", json={"appId": "acme"})
    assert r.status_code == 201, r.text
    async with api.as_token(r.json()["token"]) as scoped:
        refused = await scoped.get(URL)
        assert refused.status_code == 403, refused.text
        assert "data" not in refused.json()
        assert (await scoped.get(URL, params={"status": "open"})).status_code == 403
    async with api.as_token("hl_admin_not-a-token-of-this-deployment-at-all") as stranger:
        assert (await stranger.get(URL)).status_code == 401


async def test_anomalies_page_with_limit_and_iterator(api: Api) -> None:
    """``limit`` bounds a page and ``iterator`` continues after it, newest first, until a
    page says ``done``; the pages hold each anomaly once; with ``status`` the pages keep
    to it; an out-of-range ``limit`` is a 422 on ``limit``."""
    made = await _seed(api)
    newest_first = [a.id for a in reversed(made)]

    first = (await api.client.get(URL, params={"limit": "3"})).json()
    assert [item["id"] for item in first["data"]] == newest_first[:3]
    assert first["done"] is False and first["iterator"] == newest_first[2]
    second = (
        await api.client.get(URL, params={"limit": "3", "iterator": first["iterator"]})
    ).json()
    assert [item["id"] for item in second["data"]] == newest_first[3:]
    assert second["done"] is True

    seen: list[str] = []
    query = {"limit": "1", "status": "open"}
    for _ in range(10):
        page = (await api.client.get(URL, params=query)).json()
        seen += [item["id"] for item in page["data"]]
        if page["done"]:
            break
        query["iterator"] = page["iterator"]
    assert seen == [made[2].id, made[1].id]

    r = await api.client.get(URL, params={"limit": "0"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "limit"]


async def test_an_application_token_lists_its_own_applications_anomalies_only(api: Api) -> None:
    """``/api/v1/app/{app_id}/anomalies`` shows an application's token that application's
    anomalies (its own and its endpoints'), filtered by status, newest first; another
    application's is a 404, as every application route answers for it."""
    made = await _seed(api)
    other = make_app(uid="other")
    await api.store.create_application(other)
    foreign = dataclasses.replace(made[0], id=ids.new_id(ids.ANOMALY), app_id=other.id)
    assert await api.store.open_anomaly(foreign)
    r = await api.client.post("/api/v1/token", json={"appId": made[0].app_id})
    assert r.status_code == 201, r.text
    async with api.as_token(r.json()["token"]) as scoped:
        own = await scoped.get(f"/api/v1/app/{made[0].app_id}/anomalies")
        assert own.status_code == 200, own.text
        assert [item["id"] for item in own.json()["data"]] == [a.id for a in reversed(made)]
        opened = await scoped.get(
            f"/api/v1/app/{made[0].app_id}/anomalies", params={"status": "open"}
        )
        assert [item["id"] for item in opened.json()["data"]] == [made[2].id, made[1].id]
        assert (await scoped.get("/api/v1/app/other/anomalies")).status_code == 404
    listed = await api.client.get("/api/v1/app/other/anomalies")
    assert [item["id"] for item in listed.json()["data"]] == [foreign.id]
