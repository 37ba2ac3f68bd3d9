"""Background tasks, replays and dead letters over HTTP: Svix's shapes, dry runs, errors,
and another application's token kept out of every route."""

from __future__ import annotations

from svix.models import BackgroundTaskOut, ListResponseBackgroundTaskOut, RecoverOut, ReplayOut

from hookline.operations.context import Operations
from hookline.operations.tasks import TaskRunner
from tests.integration.conftest import Api, fail_next_delivery

SINCE = "2020-01-01T00:00:00Z"
EP = "/api/v1/app/acme/endpoint/ep"


async def _setup(api: Api, failures: int = 2) -> None:
    """Application acme, event type a.b, endpoint ep, and ``failures`` failed deliveries."""
    assert (await api.client.post("/api/v1/app", json={"name": "A", "uid": "acme"})).is_success
    r = await api.client.post("/api/v1/event-type", json={"name": "a.b", "description": "a"})
    assert r.is_success
    r = await api.client.post(
        "/api/v1/app/acme/endpoint", json={"url": "https://example.com/h", "uid": "ep"}
    )
    assert r.status_code == 201, r.text
    for _ in range(failures):
        r = await api.client.post("/api/v1/app/acme/msg", json={"eventType": "a.b", "payload": {}})
        assert r.status_code == 202
        await fail_next_delivery(api.store)


async def test_recover_answers_svix_recover_out_and_the_task_is_readable(api: Api) -> None:
    """POST …/recover is 202 with Svix's RecoverOut; the task reads back and lists in
    Svix's models, filters by status and task, and shows its progress in data."""
    await _setup(api)
    r = await api.client.post(f"{EP}/recover", json={"since": SINCE})
    assert r.status_code == 202, r.text
    out = RecoverOut.model_validate(r.json())
    assert (out.status.value, out.task.value) == ("running", "endpoint.recover")
    while await TaskRunner(Operations(api.store)).run_one():
        pass
    got = await api.client.get(f"/api/v1/background-task/{out.id}")
    task = BackgroundTaskOut.model_validate(got.json())
    assert task.status.value == "finished"
    assert task.data == {"messagesScanned": 2, "messagesSent": 2}
    listed = await api.client.get("/api/v1/background-task?status=finished&task=endpoint.recover")
    page = ListResponseBackgroundTaskOut.model_validate(listed.json())
    assert [t.id for t in page.data] == [out.id] and page.done
    none = await api.client.get("/api/v1/background-task?status=running")
    assert none.json()["data"] == []


async def test_replays_answer_svix_replay_out_and_dry_run_counts(api: Api) -> None:
    """replay-missing and bulk-replay are 202 with ReplayOut; ?dry_run=true is 200 with the
    count and starts no task."""
    await _setup(api)
    r = await api.client.post(f"{EP}/bulk-replay?dry_run=true", json={"since": SINCE, "status": 2})
    assert r.status_code == 200 and r.json() == {
        "task": "endpoint.bulk-replay",
        "count": 2,
        "dryRun": True,
    }
    r = await api.client.post(f"{EP}/replay-missing?dry_run=true", json={"since": SINCE})
    assert r.json()["count"] == 0
    assert (await api.client.get("/api/v1/background-task")).json()["data"] == []
    for path, task in (
        ("replay-missing", "endpoint.replay"),
        ("bulk-replay", "endpoint.bulk-replay"),
    ):
        r = await api.client.post(f"{EP}/{path}", json={"since": SINCE, "eventTypes": ["a.b"]})
        assert r.status_code == 202, r.text
        assert ReplayOut.model_validate(r.json()).task.value == task


async def test_bad_input_is_a_422_that_starts_nothing(api: Api) -> None:
    """A missing since, a bad status-code class, an unknown task filter or a bad dry_run
    value are 422s; no task is stored."""
    await _setup(api, failures=0)
    bad = [
        api.client.post(f"{EP}/recover", json={}),
        api.client.post(f"{EP}/bulk-replay", json={"since": SINCE, "statusCodeClass": 250}),
        api.client.post(f"{EP}/recover?dry_run=maybe", json={"since": SINCE}),
        api.client.post(f"{EP}/recover", json={"since": "2999-01-01T00:00:00Z"}),
        api.client.get("/api/v1/background-task?task=endpoint.nothing"),
        api.client.get("/api/v1/background-task?status=sleeping"),
        api.client.get("/api/v1/app/acme/dead-letter?status_code_class=42"),
    ]
    for request in bad:
        r = await request
        assert r.status_code == 422, r.text
    assert (await api.client.get("/api/v1/background-task")).json()["data"] == []


async def test_dead_letters_list_and_redrive(api: Api) -> None:
    """The dead-letter list shows each failure with its last status code; a redrive is a
    202 task shown as a bulk replay; a canceled task is failed with data.canceled, and a
    second cancel is a 409; the list's status=failed finds it, and so does status=canceled."""
    await _setup(api)
    r = await api.client.get("/api/v1/app/acme/dead-letter?status_code_class=500&limit=1")
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["data"]) == 1 and body["done"] is False
    letter = body["data"][0]
    assert letter["lastStatusCode"] == 500 and letter["eventType"] == "a.b"
    assert letter["endpointId"].startswith("ep_") and letter["msgId"].startswith("msg_")
    r = await api.client.post("/api/v1/app/acme/dead-letter/redrive", json={"endpointId": "ep"})
    assert r.status_code == 202
    task = r.json()
    assert task["task"] == "endpoint.bulk-replay"
    r = await api.client.post(f"/api/v1/background-task/{task['id']}/cancel")
    assert r.status_code == 200
    assert (r.json()["status"], r.json()["data"]["canceled"]) == ("failed", True)
    again = await api.client.post(f"/api/v1/background-task/{task['id']}/cancel")
    assert again.status_code == 409 and again.json()["code"] == "task_not_running"
    for status, found in (("failed", [task["id"]]), ("canceled", [task["id"]]), ("running", [])):
        listed = await api.client.get(f"/api/v1/background-task?status={status}")
        assert [t["id"] for t in listed.json()["data"]] == found, status


async def test_another_applications_token_reaches_nothing_of_acme(api: Api) -> None:
    """A portal token of another application gets 404 on every route that could reach
    acme's endpoints, messages, dead letters or tasks, with acme's key or with crafted ids
    under its own; it lists only its own tasks."""
    await _setup(api)
    endpoint_id = (await api.client.get(EP)).json()["id"]
    acme_task = (await api.client.post(f"{EP}/recover", json={"since": SINCE})).json()["id"]
    assert (await api.client.post("/api/v1/app", json={"name": "O", "uid": "other"})).is_success
    token = (await api.client.post("/api/v1/auth/app-portal-access/other", json={})).json()
    async with api.as_token(token["token"]) as other:
        own_ep = f"/api/v1/app/other/endpoint/{endpoint_id}"
        for base in (EP, own_ep):
            for path in ("recover", "replay-missing", "bulk-replay"):
                for dry in ("", "?dry_run=true"):
                    r = await other.post(f"{base}/{path}{dry}", json={"since": SINCE})
                    assert r.status_code == 404, (base, path, r.text)
        reaches = [
            other.get("/api/v1/app/acme/dead-letter"),
            other.post("/api/v1/app/acme/dead-letter/redrive", json={}),
            other.get(f"/api/v1/app/other/dead-letter?endpoint_id={endpoint_id}"),
            other.post("/api/v1/app/other/dead-letter/redrive", json={"endpointId": endpoint_id}),
            other.get(f"/api/v1/background-task/{acme_task}"),
            other.post(f"/api/v1/background-task/{acme_task}/cancel"),
        ]
        for request in reaches:
            r = await request
            assert r.status_code == 404, r.text
        assert (await other.get("/api/v1/background-task")).json()["data"] == []
    task = (await api.client.get(f"/api/v1/background-task/{acme_task}")).json()
    assert task["status"] == "running"
