"""The console's Deliveries and Failures screens through the real app: a search by payload
word finds a delivery among others, its screen shows why it failed, Resend queues an
attempt; a failure group is acknowledged, resolved and replayed after its count; every
change needs the session's CSRF token."""

from __future__ import annotations

import re

import httpx

from hookline.operations.context import Operations
from hookline.operations.tasks import TaskRunner
from tests.integration.conftest import Api, fail_next_delivery, group_failures

Console = tuple[httpx.AsyncClient, str]


async def _failed_message(api: Api, word: str) -> tuple[str, str, str]:
    """An application with one endpoint and a message whose delivery failed for good with
    a 500 (its answer kept in the attempt); its (app, message, endpoint) ids."""
    app = (await api.client.post("/api/v1/app", json={"name": word, "uid": word})).json()["id"]
    endpoint = await api.client.post(
        f"/api/v1/app/{word}/endpoint", json={"url": f"https://{word}.example/hook"}
    )
    sent = await api.client.post(
        f"/api/v1/app/{word}/msg",
        json={"eventType": "order.paid", "payload": {"note": f"refund {word}"}},
    )
    await fail_next_delivery(api.store)
    return app, sent.json()["id"], endpoint.json()["id"]


async def _state(api: Api, app: str) -> str:
    """The state of the application's one delivery, as the deliveries search shows it."""
    (row,) = (await api.client.get("/api/v1/deliveries", params={"app_id": app})).json()["data"]
    return str(row["statusText"])


async def test_a_payload_word_finds_the_delivery_and_its_screen_shows_why_it_failed(
    api: Api, console: Console
) -> None:
    """Two applications' failed deliveries; searching one's word lists only its delivery;
    the delivery's screen shows the failed attempt's status; Resend (with the CSRF token)
    queues an attempt, and without it is refused, changing nothing."""
    web, csrf = console
    app, msg, endpoint = await _failed_message(api, "walrus")
    await _failed_message(api, "narwhal")
    found = await web.get("/dashboard/deliveries", params={"q": "walrus", "status": "fail"})
    assert found.status_code == 200, found.text
    assert msg in found.text and "narwhal" not in found.text
    one = f"/dashboard/deliveries/{app}/{msg}/{endpoint}"
    assert f'href="{one}"' in found.text
    shown = await web.get(one)
    assert shown.status_code == 200 and ">500<" in shown.text
    refused = await web.post(one + "/resend")
    assert refused.status_code == 403
    assert await _state(api, app) == "fail"
    resent = await web.post(one + "/resend", data={"csrf": csrf})
    assert resent.status_code == 303 and "Resend+queued" in resent.headers["location"]
    assert await _state(api, app) == "pending"


async def test_an_unknown_filter_is_refused_with_a_reason(console: Console) -> None:
    """A status or period the form does not offer is a 422 naming it, not a 500."""
    web, _ = console
    for params in ({"status": "lost"}, {"since": "1y"}):
        r = await web.get("/dashboard/deliveries", params=params)
        assert r.status_code == 422, r.text
    r = await web.get("/dashboard/failures", params={"status": "panicking"})
    assert r.status_code == 422


async def test_a_failure_group_is_acknowledged_resolved_and_replayed_after_its_count(
    api: Api, console: Console
) -> None:
    """The group of a failed delivery is listed with its error; Acknowledge and Resolve
    change its status; Replay shows how many deliveries it would send before starting the
    background task that sends them."""
    web, csrf = console
    app, _, _ = await _failed_message(api, "otter")
    (group,) = await group_failures(api.store)
    listed = await web.get("/dashboard/failures")
    assert group.id in listed.text and "5xx (500)" in listed.text
    base = f"/dashboard/failures/{app}/{group.id}"
    confirm = await web.get(base + "/replay")
    assert confirm.status_code == 200 and "1 failed delivery" in confirm.text
    assert (await api.client.get("/api/v1/background-task")).json()["data"] == []
    started = await web.post(base + "/replay", data={"csrf": csrf})
    assert started.status_code == 303 and "background+task" in started.headers["location"]
    (task,) = (await api.client.get("/api/v1/background-task")).json()["data"]
    assert await TaskRunner(Operations(api.store)).run_one()
    done = (await api.client.get(f"/api/v1/background-task/{task['id']}")).json()
    assert done["data"]["messagesSent"] == 1
    acknowledged = await web.post(base + "/acknowledge", data={"csrf": csrf})
    assert acknowledged.status_code == 303
    shown = (await api.client.get(f"/api/v1/app/{app}/failure-group/{group.id}")).json()
    assert shown["status"] == "acknowledged"
    await web.post(base + "/resolve", data={"csrf": csrf})
    shown = (await api.client.get(f"/api/v1/app/{app}/failure-group/{group.id}")).json()
    assert shown["status"] == "resolved"
    assert re.search(r">resolved<", (await web.get("/dashboard/failures")).text)
