"""Ordered delivery through the API: the ordering key on messages, what a held line shows,
and the skip that releases it (docs/delivery.md, "Ordered delivery")."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

from hookline.domain.models import MessageStatus
from tests.conftest import failed_outcome, utcnow
from tests.integration.conftest import Api


async def _ordered_app(api: Api) -> None:
    r = await api.client.post("/api/v1/app", json={"name": "Acme", "uid": "acme"})
    assert r.status_code == 201, r.text
    r = await api.client.post(
        "/api/v1/app/acme/endpoint",
        json={
            "url": "https://example.com/h",
            "uid": "line",
            "policy": {"ordering": {"onExhausted": "hold"}},
        },
    )
    assert r.status_code == 201, r.text


async def _publish(api: Api, **extra: Any) -> dict[str, Any]:
    r = await api.client.post(
        "/api/v1/app/acme/msg", json={"eventType": "order.paid", "payload": {}, **extra}
    )
    assert r.status_code == 202, r.text
    return dict(r.json())


async def test_the_ordering_key_is_taken_shown_and_checked(api: Api) -> None:
    """``orderingKey`` is echoed by the publish and by reads of the message, null without
    one; a key hookline cannot use is a 422 naming the field, and nothing is published."""
    await _ordered_app(api)
    keyed = await _publish(api, orderingKey="customer:42")
    plain = await _publish(api)
    assert keyed["orderingKey"] == "customer:42" and plain["orderingKey"] is None
    read = (await api.client.get(f"/api/v1/app/acme/msg/{keyed['id']}")).json()
    assert read["orderingKey"] == "customer:42"
    bad = await api.client.post(
        "/api/v1/app/acme/msg",
        json={"eventType": "order.paid", "payload": {}, "orderingKey": "has space"},
    )
    assert bad.status_code == 422 and "orderingKey" in bad.text
    listed = (await api.client.get("/api/v1/app/acme/msg")).json()
    assert len(listed["data"]) == 2


async def test_a_held_delivery_is_shown_and_skipping_it_releases_the_line(api: Api) -> None:
    """The delivery an ordered endpoint's line stopped at is listed ``held``, pending with no
    next attempt; ``…/skip`` fails it (204) and the line moves on. Skipping a delivery that is
    not held is a 409, and changes nothing."""
    await _ordered_app(api)
    first, second = await _publish(api), await _publish(api)
    early = await api.client.post(f"/api/v1/app/acme/msg/{second['id']}/endpoint/line/skip")
    assert early.status_code == 409 and early.json()["code"] == "not_held"
    now = utcnow()
    (head,) = await api.store.claim_due(10, now, now + timedelta(seconds=30), "w1")
    exhausted = failed_outcome(head)
    await api.store.complete([replace(exhausted, delivery_status=MessageStatus.PENDING)])  # held
    listed = (await api.client.get("/api/v1/app/acme/endpoint/line/msg")).json()["data"]
    by_id = {m["id"]: m for m in listed}
    assert by_id[first["id"]]["held"] is True
    assert by_id[first["id"]]["status"] == 1 and by_id[first["id"]]["nextAttempt"] is None
    assert by_id[second["id"]]["held"] is False
    skipped = await api.client.post(f"/api/v1/app/acme/msg/{first['id']}/endpoint/line/skip")
    assert skipped.status_code == 204
    listed = (await api.client.get("/api/v1/app/acme/endpoint/line/msg")).json()["data"]
    assert {m["id"]: (m["status"], m["held"]) for m in listed}[first["id"]] == (2, False)
    (following,) = await api.store.claim_due(10, utcnow(), utcnow() + timedelta(seconds=30), "w1")
    assert following.message.id == second["id"]
