"""``POST /api/v1/app/{app_id}/expunge-content`` through the real ASGI app: a dry-run count
that changes nothing, a refused body that changes nothing, and a started task whose
progress and cancel are the task routes'."""

from __future__ import annotations

from tests.integration.conftest import Api

PATH = "/api/v1/app/acme/expunge-content"
SINCE = {"since": "2020-01-01T00:00:00Z"}


async def _seed(api: Api) -> None:
    assert (await api.client.post("/api/v1/app", json={"name": "a", "uid": "acme"})).status_code
    for event_type in ("a.b", "a.b", "c.d"):
        body = {"eventType": event_type, "payload": {"n": 1}}
        assert (await api.client.post("/api/v1/app/acme/msg", json=body)).status_code == 202


async def test_a_dry_run_counts_the_matching_messages_and_starts_nothing(api: Api) -> None:
    """200 with the count of messages of the event type; no task is created."""
    await _seed(api)
    r = await api.client.post(
        PATH, params={"dry_run": "true"}, json={**SINCE, "eventTypes": ["a.b"]}
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"task": "application.purge_content", "count": 2, "dryRun": True}
    assert (await api.client.get("/api/v1/background-task")).json()["data"] == []


async def test_a_body_without_since_is_a_422_naming_it(api: Api) -> None:
    """The range is asked for explicitly: no ``since``, no purge, and no task."""
    await _seed(api)
    r = await api.client.post(PATH, json={"eventTypes": ["a.b"]})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "since"]
    assert (await api.client.get("/api/v1/background-task")).json()["data"] == []


async def test_an_expunge_starts_a_task_that_can_be_read_and_canceled(api: Api) -> None:
    """202 with the running task (Svix's ``application.purge_content`` type); the task
    routes show and cancel it."""
    await _seed(api)
    r = await api.client.post(PATH, json=SINCE)
    assert r.status_code == 202, r.text
    task = r.json()
    assert (task["task"], task["status"]) == ("application.purge_content", "running")
    listed = await api.client.get("/api/v1/background-task", params={"task": task["task"]})
    assert [t["id"] for t in listed.json()["data"]] == [task["id"]]
    canceled = await api.client.post(f"/api/v1/background-task/{task['id']}/cancel")
    assert canceled.status_code == 200 and canceled.json()["data"]["canceled"] is True
