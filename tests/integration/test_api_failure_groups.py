"""The failure-group routes through the real ASGI app: every application's groups for an
admin, one application's for its tokens, filters and their refusals, acknowledge, resolve,
replay with its dry run, and the audit log's entries."""

from __future__ import annotations

from typing import Any

from tests.integration.conftest import Api, fail_next_delivery, group_failures

ADMIN_LIST = "/api/v1/failure-group"


async def _seed(api: Api) -> dict[str, Any]:
    """Applications ``acme`` (endpoint ``ep1``, two failed messages) and ``beta`` (one), and
    their groups; the groups by application uid."""
    c = api.client
    for uid in ("acme", "beta"):
        assert (await c.post("/api/v1/app", json={"name": uid, "uid": uid})).status_code == 201
        ep = await c.post(
            f"/api/v1/app/{uid}/endpoint", json={"url": f"https://example.com/{uid}", "uid": "ep1"}
        )
        assert ep.status_code == 201
    for uid in ("acme", "acme", "beta"):
        sent = await c.post(f"/api/v1/app/{uid}/msg", json={"eventType": "a.b", "payload": {}})
        assert sent.status_code == 202
        await fail_next_delivery(api.store)
    groups = await group_failures(api.store)
    apps = {uid: (await c.get(f"/api/v1/app/{uid}")).json()["id"] for uid in ("acme", "beta")}
    return {uid: next(g for g in groups if g.app_id == app_id) for uid, app_id in apps.items()}


async def test_an_admin_lists_every_applications_groups_and_filters_them(api: Api) -> None:
    """The admin list holds both applications' groups, newest first; ``app_id`` (a uid) and
    ``status`` narrow it; the documented fields are there."""
    groups = await _seed(api)
    r = await api.client.get(ADMIN_LIST)
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert [g["id"] for g in data] == sorted((g.id for g in groups.values()), reverse=True)
    acme = next(g for g in data if g["id"] == groups["acme"].id)
    assert acme["failedAttempts"] == 2 and acme["messages"] == 2
    assert (acme["outcome"], acme["statusCode"], acme["status"]) == ("5xx", 500, "open")
    assert acme["resolvedAt"] is None and acme["reopened"] == 0
    only = await api.client.get(ADMIN_LIST, params={"app_id": "beta"})
    assert [g["id"] for g in only.json()["data"]] == [groups["beta"].id]
    resolved = await api.client.get(ADMIN_LIST, params={"status": "resolved"})
    assert resolved.json()["data"] == []


async def test_bad_filters_are_a_422_naming_the_parameter_and_an_unknown_app_a_404(
    api: Api,
) -> None:
    """A status that is not one of the three, and an unknown application or endpoint."""
    await _seed(api)
    bad = await api.client.get(ADMIN_LIST, params={"status": "closed"})
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["query", "status"]
    app_bad = await api.client.get("/api/v1/app/acme/failure-group", params={"status": "2"})
    assert app_bad.status_code == 422
    missing = await api.client.get(ADMIN_LIST, params={"app_id": "nobody"})
    assert (missing.status_code, missing.json()["code"]) == (404, "not_found")
    no_ep = await api.client.get("/api/v1/app/acme/failure-group", params={"endpoint_id": "x"})
    assert no_ep.status_code == 404


async def test_an_application_lists_its_own_groups_and_filters_by_its_endpoint(
    api: Api,
) -> None:
    """The application route shows its groups only; ``endpoint_id`` takes its uid."""
    groups = await _seed(api)
    r = await api.client.get("/api/v1/app/acme/failure-group", params={"endpoint_id": "ep1"})
    assert [g["id"] for g in r.json()["data"]] == [groups["acme"].id]
    one = await api.client.get(f"/api/v1/app/acme/failure-group/{groups['acme'].id}")
    assert one.status_code == 200 and one.json()["endpointId"] == groups["acme"].endpoint_id
    other = await api.client.get(f"/api/v1/app/beta/failure-group/{groups['acme'].id}")
    assert other.status_code == 404


async def test_acknowledge_then_resolve_then_acknowledge_again_is_a_409(api: Api) -> None:
    """Each answers the group as it now stands; a resolved group cannot be acknowledged;
    the audit log holds one entry per change."""
    groups = await _seed(api)
    path = f"/api/v1/app/acme/failure-group/{groups['acme'].id}"
    seen = await api.client.post(f"{path}/acknowledge")
    assert seen.status_code == 200 and seen.json()["status"] == "acknowledged"
    assert seen.json()["acknowledgedAt"] is not None
    done = await api.client.post(f"{path}/resolve")
    assert (done.json()["status"], done.json()["resolvedBy"]) == ("resolved", "operator")
    late = await api.client.post(f"{path}/acknowledge")
    assert (late.status_code, late.json()["code"]) == (409, "failure_group_resolved")
    audit = await api.client.get("/api/v1/audit", params={"action": "failure_group"})
    actions = sorted(e["action"] for e in audit.json()["data"])
    assert actions == ["failure_group.acknowledged", "failure_group.resolved"]


async def test_replay_counts_on_a_dry_run_then_starts_a_task_with_progress(api: Api) -> None:
    """``?dry_run=true`` answers the count and starts nothing; without it a background task
    starts (202) and is readable and cancelable through the task routes."""
    groups = await _seed(api)
    path = f"/api/v1/app/acme/failure-group/{groups['acme'].id}/replay"
    dry = await api.client.post(path, params={"dry_run": "true"})
    assert dry.status_code == 200, dry.text
    assert dry.json() == {"task": "endpoint.bulk-replay", "count": 2, "dryRun": True}
    listed = await api.client.get("/api/v1/background-task")
    assert listed.json()["data"] == []
    started = await api.client.post(path)
    assert started.status_code == 202, started.text
    task_id = started.json()["id"]
    task = await api.client.get(f"/api/v1/background-task/{task_id}")
    assert task.json()["status"] == "running"
    canceled = await api.client.post(f"/api/v1/background-task/{task_id}/cancel")
    assert canceled.status_code == 200 and canceled.json()["data"]["canceled"] is True


async def test_an_application_token_reaches_its_own_groups_only(api: Api) -> None:
    """beta's token lists beta's group, and acme's is absent to it on every route; a
    read-only token of acme reads but cannot acknowledge."""
    groups = await _seed(api)
    token = await api.client.post("/api/v1/token", json={"name": "b", "appId": "beta"})
    async with api.as_token(str(token.json()["token"])) as as_beta:
        own = await as_beta.get("/api/v1/app/beta/failure-group")
        assert [g["id"] for g in own.json()["data"]] == [groups["beta"].id]
        assert (await as_beta.get(ADMIN_LIST)).status_code == 403
        acme_id = groups["acme"].id
        for app in ("acme", "beta"):
            for suffix in ("", "/acknowledge", "/resolve", "/replay"):
                method = "GET" if not suffix else "POST"
                r = await as_beta.request(
                    method, f"/api/v1/app/{app}/failure-group/{acme_id}{suffix}"
                )
                assert r.status_code == 404, (app, suffix, r.text)
    reader = await api.client.post(
        "/api/v1/token", json={"name": "r", "appId": "acme", "capabilities": ["ViewBase"]}
    )
    assert reader.status_code == 201, reader.text
    async with api.as_token(str(reader.json()["token"])) as as_reader:
        path = f"/api/v1/app/acme/failure-group/{groups['acme'].id}"
        assert (await as_reader.get(path)).status_code == 200
        assert (await as_reader.post(f"{path}/acknowledge")).status_code == 403
    after = await api.client.get(f"/api/v1/app/acme/failure-group/{groups['acme'].id}")
    assert after.json()["status"] == "open"
