"""``GET /api/v1/deliveries`` through the real ASGI app: the operator's search of every
application's deliveries, its filters and terms, its pages, and its refusals: a bad filter
or term is a 422 naming it, an unknown application or endpoint a 404, an application token
a 403."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.conftest import Api

URL = "/api/v1/deliveries"


async def _setup(api: Api) -> dict[str, str]:
    """Two applications, an endpoint each, and three messages; their ids by name."""
    made: dict[str, str] = {}
    for app in ("shop-a", "shop-b"):
        r = await api.client.post("/api/v1/app", json={"name": app, "uid": app})
        assert r.is_success, r.text
        r = await api.client.post(
            f"/api/v1/app/{app}/endpoint",
            json={"url": "https://example.com/hook", "uid": "orders"},
        )
        assert r.is_success, r.text
        made[app] = r.json()["id"]
    bodies = {
        "order": ("shop-a", {"customer": {"id": "cus_123"}, "note": "Blue widget"}),
        "refund": ("shop-a", {"customer": {"id": "cus_999"}}),
        "user": ("shop-b", {"name": "Blue Inc"}),
    }
    for name, (app, payload) in bodies.items():
        r = await api.client.post(
            f"/api/v1/app/{app}/msg", json={"eventType": f"{name}.created", "payload": payload}
        )
        assert r.status_code == 202, r.text
        made[name] = r.json()["id"]
    return made


def msg_ids(rows: list[dict[str, Any]]) -> list[str]:
    return [r["msgId"] for r in rows]


async def _rows(api: Api, **params: str) -> list[dict[str, Any]]:
    r = await api.client.get(URL, params=params)
    assert r.status_code == 200, r.text
    rows: list[dict[str, Any]] = r.json()["data"]
    return rows


async def test_lists_every_applications_deliveries_newest_first(api: Api) -> None:
    """An admin sees each delivery of every application, newest message first, in
    camelCase with its message's event type and no attempt yet."""
    made = await _setup(api)
    rows = await _rows(api)
    assert [r["msgId"] for r in rows] == [made["user"], made["refund"], made["order"]]
    first = rows[0]
    assert first["endpointId"] == made["shop-b"]
    assert first["eventType"] == "user.created"
    assert (first["status"], first["statusText"], first["attemptCount"]) == (1, "pending", 0)
    assert first["lastStatusCode"] is None
    assert set(first) >= {"id", "appId", "nextAttempt", "updatedAt", "timestamp"}


async def test_filters_and_terms_narrow_the_list(api: Api) -> None:
    """The application (by uid), its endpoint (by uid), event types, payload words, a path
    and the webhook-id header each keep what they name."""
    made = await _setup(api)
    assert msg_ids(await _rows(api, app_id="shop-a")) == [made["refund"], made["order"]]
    assert msg_ids(await _rows(api, app_id="shop-a", endpoint_id="orders")) == [
        made["refund"],
        made["order"],
    ]
    assert msg_ids(await _rows(api, endpoint_id=made["shop-b"])) == [made["user"]]
    assert msg_ids(await _rows(api, event_types="order.created,user.created")) == [
        made["user"],
        made["order"],
    ]
    assert msg_ids(await _rows(api, q="blue")) == [made["user"], made["order"]]
    assert msg_ids(await _rows(api, q="blue", app_id="shop-b")) == [made["user"]]
    assert msg_ids(await _rows(api, q="customer.id=cus_999")) == [made["refund"]]
    assert msg_ids(await _rows(api, q=f"header.webhook-id={made['order']}")) == [made["order"]]
    assert await _rows(api, status="0") == []


async def test_pages_follow_the_iterator_to_done(api: Api) -> None:
    """limit=1 pages walk every delivery once, newest first, each page's iterator leading
    to the next, the last one done."""
    made = await _setup(api)
    seen: list[str] = []
    params = {"limit": "1"}
    while True:
        r = await api.client.get(URL, params=params)
        assert r.status_code == 200, r.text
        page = r.json()
        seen += [row["msgId"] for row in page["data"]]
        if page["done"]:
            break
        params["iterator"] = page["iterator"]
    assert seen == [made["user"], made["refund"], made["order"]]


@pytest.mark.parametrize(
    ("params", "name", "says"),
    [
        ({"q": '"unclosed'}, "q", "quote"),
        ({"q": "---"}, "q", "no letter or digit"),
        ({"q": "a..b=1"}, "q", "not a payload path"),
        ({"q": "header.authorization=x"}, "q", "secrets"),
        ({"q": "header.webhook-signature=v1,x"}, "q", "not stored"),
        ({"q": "header.traceparent=nope"}, "q", "trace id"),
        ({"q": " ".join(f"w{i}" for i in range(9))}, "q", "at most 8 terms"),
        ({"iterator": "msg_1"}, "iterator", "iterator"),
        ({"status_code": "600"}, "status_code", "between"),
        ({"status_code_class": "250"}, "status_code_class", "one of"),
        ({"status": "9"}, "status", "must be"),
        ({"before": "yesterday"}, "before", "date-time"),
        ({"limit": "0"}, "limit", "between"),
        ({"colour": "blue"}, "colour", ""),
    ],
)
async def test_bad_input_is_a_422_naming_the_parameter(
    api: Api, params: dict[str, str], name: str, says: str
) -> None:
    """Each bad filter or term gets a 422 whose detail names the query parameter and says
    what is wrong, never a 500."""
    await _setup(api)
    r = await api.client.get(URL, params=params)
    assert r.status_code == 422, r.text
    (problem,) = r.json()["detail"]
    assert problem["loc"] == ["query", name]
    assert says in problem["msg"]


async def test_an_unknown_application_or_endpoint_is_a_404(api: Api) -> None:
    """A filter naming nothing is a 404, not an empty list that reads as no deliveries."""
    await _setup(api)
    assert (await api.client.get(URL, params={"app_id": "nope"})).status_code == 404
    r = await api.client.get(URL, params={"app_id": "shop-a", "endpoint_id": "nope"})
    assert r.status_code == 404, r.text


async def test_an_application_token_may_not_search(api: Api) -> None:
    """The search spans every application: an application-scoped token gets 403, even
    filtered to its own application, and no row."""
    await _setup(api)
    r = await api.client.post("/api/v1/token", json={"appId": "shop-a"})
    assert r.status_code == 201, r.text
    async with api.as_token(r.json()["token"]) as scoped:
        for params in ({}, {"app_id": "shop-a"}, {"q": "blue"}):
            refused = await scoped.get(URL, params=params)
            assert refused.status_code == 403, refused.text
            assert "data" not in refused.json()
