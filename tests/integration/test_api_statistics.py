"""Statistics in process: ``GET …/endpoint/{id}/attempt-stats`` (attempt counts read from the
rollups) and Svix's statistics tasks (``/api/v1/stats/usage/…``), run by a task runner."""

from __future__ import annotations

from datetime import timedelta

from svix.models import AggregateEventTypesOut, AppUsageStatsOut

from hookline.operations.context import Operations
from hookline.operations.tasks import TaskRunner
from tests.conftest import utcnow
from tests.integration.conftest import Api, fail_next_delivery

STATS = "/api/v1/app/acme/endpoint/ep1/attempt-stats"


async def _failed_attempt(api: Api) -> None:
    """An application ``acme`` with endpoint ``ep1`` and one attempt that got a 500."""
    r = await api.client.post("/api/v1/app", json={"name": "Acme", "uid": "acme"})
    assert r.status_code == 201, r.text
    r = await api.client.post(
        "/api/v1/app/acme/endpoint", json={"url": "https://example.com/h", "uid": "ep1"}
    )
    assert r.status_code == 201, r.text
    r = await api.client.post("/api/v1/app/acme/msg", json={"eventType": "a.x", "payload": {}})
    assert r.status_code == 202, r.text
    await fail_next_delivery(api.store)


async def test_attempt_stats_count_recorded_attempts_by_outcome(api: Api) -> None:
    """An attempt recorded by the store shows in Svix's success/fail/canceled counts and in
    hookline's outcome classes, duration percentiles and payload bytes."""
    await _failed_attempt(api)
    found = (await api.client.get(STATS)).json()
    assert (found["success"], found["fail"], found["canceled"]) == (0, 1, 0)
    assert found["outcomes"]["5xx"] == 1
    assert sum(found["outcomes"].values()) == 1
    assert found["latency"]["p50Ms"] == 10
    assert found["payloadBytes"] == len(b"{}")


async def test_attempt_stats_honour_since_and_until(api: Api) -> None:
    """A window that holds the attempt counts it; one that ends before it counts nothing."""
    await _failed_attempt(api)
    now = utcnow()
    around = {"since": (now - timedelta(hours=1)).isoformat(), "until": now.isoformat()}
    before = {
        "since": (now - timedelta(days=3)).isoformat(),
        "until": (now - timedelta(days=2)).isoformat(),
    }
    assert (await api.client.get(STATS, params=around)).json()["fail"] == 1
    assert (await api.client.get(STATS, params=before)).json()["fail"] == 0


async def test_attempt_stats_refuse_a_reversed_window_and_a_bad_date(api: Api) -> None:
    """``since`` not before ``until`` and a date that is no date are 422s naming the field."""
    await _failed_attempt(api)
    now = utcnow().isoformat()
    reversed_window = await api.client.get(STATS, params={"since": now, "until": now})
    assert reversed_window.status_code == 422
    assert reversed_window.json()["detail"][0]["loc"] == ["query", "since"]
    bad = await api.client.get(STATS, params={"until": "yesterday"})
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["query", "until"]


async def test_attempt_stats_of_an_unknown_endpoint_are_404(api: Api) -> None:
    """An endpoint that does not exist has no statistics: a 404, as for its other routes."""
    await _failed_attempt(api)
    missing = await api.client.get("/api/v1/app/acme/endpoint/nope/attempt-stats")
    assert missing.status_code == 404


async def _run_tasks(api: Api) -> None:
    while await TaskRunner(Operations(api.store)).run_one():
        pass


async def test_app_usage_task_counts_each_applications_attempts_from_the_rollups(
    api: Api,
) -> None:
    """POST /api/v1/stats/usage/app answers Svix's AppUsageStatsOut with the ids it could not
    resolve; once a runner took it, its data lists each application's attempts in the range
    as ``messageDestinations``."""
    await _failed_attempt(api)
    now = utcnow()
    body = {
        "since": (now - timedelta(hours=2)).isoformat(),
        "until": (now + timedelta(minutes=1)).isoformat(),
        "appIds": ["acme", "app_2zzzzzzzzzzzzzzzzzzzzzzzzzz"],
    }
    r = await api.client.post("/api/v1/stats/usage/app", json=body)
    assert r.status_code == 202, r.text
    out = AppUsageStatsOut.model_validate(r.json())
    assert (out.status.value, out.task.value) == ("running", "application.stats")
    assert out.unresolved_app_ids == ["app_2zzzzzzzzzzzzzzzzzzzzzzzzzz"]
    await _run_tasks(api)
    task = (await api.client.get(f"/api/v1/background-task/{out.id}")).json()
    app = (await api.client.get("/api/v1/app/acme")).json()
    assert task["status"] == "finished"
    assert task["data"] == {
        "appStats": [{"appId": app["id"], "appUid": "acme", "messageDestinations": 1}]
    }


async def test_app_usage_of_only_unknown_applications_is_a_422(api: Api) -> None:
    """As in Svix, a request none of whose appIds resolves is refused, and starts nothing."""
    now = utcnow()
    body = {"since": (now - timedelta(hours=1)).isoformat(), "until": now.isoformat()}
    r = await api.client.post("/api/v1/stats/usage/app", json={**body, "appIds": ["nope"]})
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == ["body", "appIds"]
    assert (await api.client.get("/api/v1/background-task")).json()["data"] == []


async def test_event_type_task_lists_each_applications_subscriptions(api: Api) -> None:
    """PUT /api/v1/stats/usage/event-types answers Svix's AggregateEventTypesOut; the task's
    data lists, per application with endpoints, the event types they name and whether one
    takes every type."""
    await _failed_attempt(api)  # ep1 has no filter: a catch-all endpoint
    for name in ("a.x", "b.y"):
        r = await api.client.post("/api/v1/event-type", json={"name": name, "description": name})
        assert r.status_code == 201, r.text
    r = await api.client.post(
        "/api/v1/app/acme/endpoint",
        json={"url": "https://example.com/b", "filterTypes": ["b.y", "a.x"]},
    )
    assert r.status_code == 201, r.text
    r = await api.client.put("/api/v1/stats/usage/event-types")
    assert r.status_code == 202, r.text
    out = AggregateEventTypesOut.model_validate(r.json())
    assert out.task.value == "event-type.aggregate"
    await _run_tasks(api)
    task = (await api.client.get(f"/api/v1/background-task/{out.id}")).json()
    app = (await api.client.get("/api/v1/app/acme")).json()
    assert task["status"] == "finished"
    assert task["data"] == {
        "event_types": [
            {
                "appId": app["id"],
                "explicitlySubscribedEventTypes": ["a.x", "b.y"],
                "hasCatchAllEndpoint": True,
            }
        ]
    }


async def test_statistics_tasks_are_admin_only(api: Api) -> None:
    """An application's token can start neither statistics task (Svix: organization-wide),
    nor read one an admin started."""
    await _failed_attempt(api)
    started = (await api.client.put("/api/v1/stats/usage/event-types")).json()
    token = (await api.client.post("/api/v1/auth/app-portal-access/acme", json={})).json()
    now = utcnow().isoformat()
    async with api.as_token(token["token"]) as scoped:
        r = await scoped.put("/api/v1/stats/usage/event-types")
        assert r.status_code == 403, r.text
        r = await scoped.post("/api/v1/stats/usage/app", json={"since": now, "until": now})
        assert r.status_code == 403, r.text
        assert (await scoped.get(f"/api/v1/background-task/{started['id']}")).status_code == 404
