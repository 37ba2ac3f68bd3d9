"""The audit log over HTTP: one entry per change with who, from where and what; none for a
refused change; no secret in any entry; the admin and application views, their filters and
pages."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

import httpx

from hookline.operations.context import Operations
from hookline.operations.tasks import TaskRunner
from tests.integration.conftest import Api, fail_next_delivery

CLIENT = "127.0.0.1"
"""The address httpx's ASGI transport gives every request (its scope's ``client``)."""
EP = "/api/v1/app/acme/endpoint/ep"


async def _admin_id(api: Api) -> str:
    """The id of the configured admin token the test client sends."""
    (configured,) = [t for t in await api.store.list_tokens(None) if t.configured]
    return configured.id


async def _entries(api: Api, after: str | None = None, **params: str) -> list[dict[str, Any]]:
    """Every entry after the entry ``after`` (all without it), oldest first, page by page."""
    found: list[dict[str, Any]] = []
    query: dict[str, str] = {"order": "ascending", "limit": "3", **params}
    if after is not None:
        query["iterator"] = after
    while True:
        r = await api.client.get("/api/v1/audit", params=query)
        assert r.status_code == 200, r.text
        page = r.json()
        found += page["data"]
        if page["done"]:
            return found
        query["iterator"] = page["iterator"]


async def _newest(api: Api) -> str | None:
    r = await api.client.get("/api/v1/audit", params={"limit": "1"})
    data = r.json()["data"]
    return data[0]["id"] if data else None


async def _one(api: Api, change: Awaitable[httpx.Response], status: int = 0) -> dict[str, Any]:
    """Make the change (it must succeed) and return the one entry it recorded."""
    mark = await _newest(api)
    r = await change
    assert r.is_success and (not status or r.status_code == status), r.text
    new = await _entries(api, mark)
    assert len(new) == 1, new
    return new[0]


async def _none(api: Api, change: Awaitable[httpx.Response], status: int) -> None:
    """Make the change, which must be refused with ``status``, and find nothing recorded."""
    mark = await _newest(api)
    r = await change
    assert r.status_code == status, r.text
    assert await _entries(api, mark) == []


async def _acme(api: Api) -> None:
    """Application acme, event type a.b, endpoint ep."""
    assert (await api.client.post("/api/v1/app", json={"name": "A", "uid": "acme"})).is_success
    r = await api.client.post("/api/v1/event-type", json={"name": "a.b", "description": "a"})
    assert r.is_success
    r = await api.client.post(
        "/api/v1/app/acme/endpoint", json={"url": "https://example.com/h", "uid": "ep"}
    )
    assert r.status_code == 201, r.text


async def _scoped(api: Api, app: str, **body: Any) -> str:
    r = await api.client.post("/api/v1/token", json={"appId": app, **body})
    assert r.status_code == 201, r.text
    return str(r.json()["token"])


async def test_application_changes_are_each_one_entry_naming_the_token_and_address(
    api: Api,
) -> None:
    """Create, PATCH (its policy too), PUT, DELETE, and creation inline by a publish, of an
    application: one entry each, with the admin token's id, the client's address, the
    action, the application and the changed fields."""
    admin = await _admin_id(api)
    c = api.client
    created = await _one(api, c.post("/api/v1/app", json={"name": "A", "uid": "acme"}))
    app_id = created["targetId"]
    assert (created["actor"], created["address"], created["action"]) == (
        admin,
        CLIENT,
        "application.created",
    )
    assert created["appId"] == app_id and created["timestamp"]
    patched = await _one(api, c.patch("/api/v1/app/acme", json={"throttleRate": 5}))
    assert (patched["action"], patched["summary"]) == (
        "application.updated",
        {"fields": ["throttle_rate"]},
    )
    policy = {"policy": {"retry": {"schedule": [1, 2]}}}
    with_policy = await _one(api, c.patch("/api/v1/app/acme", json=policy))
    assert with_policy["summary"] == {"fields": ["policy"]}
    put = await _one(api, c.put("/api/v1/app/acme", json={"name": "B", "metadata": {"k": "v"}}))
    # PUT replaces every field: the policy set above goes back to inheriting.
    assert put["summary"]["fields"] == ["metadata", "name", "policy", "throttle_rate"]
    upserted = await _one(api, c.put("/api/v1/app/other", json={"name": "O"}), 201)
    assert upserted["action"] == "application.created"
    deleted = await _one(api, c.delete("/api/v1/app/acme"))
    assert (deleted["action"], deleted["targetId"]) == ("application.deleted", app_id)
    # A publish is not a change to record, but the application it creates inline is.
    inline = {"eventType": "a.b", "payload": {}, "application": {"name": "Inline"}}
    created_inline = await _one(api, c.post("/api/v1/app/fresh/msg", json=inline), 202)
    assert (created_inline["action"], created_inline["summary"]) == (
        "application.created",
        {"inline": True},
    )


async def test_event_type_changes_are_each_one_entry(api: Api) -> None:
    """Create, PATCH, PUT, archive (DELETE) and expunge of an event type: one entry each,
    targeting its name and no application."""
    c = api.client
    actions = []
    for change in (
        c.post("/api/v1/event-type", json={"name": "a.b", "description": "a"}),
        c.patch("/api/v1/event-type/a.b", json={"deprecated": True}),
        c.put("/api/v1/event-type/a.b", json={"description": "b"}),
        c.delete("/api/v1/event-type/a.b"),
        c.delete("/api/v1/event-type/a.b", params={"expunge": "true"}),
    ):
        entry = await _one(api, change)
        assert (entry["targetId"], entry["appId"]) == ("a.b", None)
        actions.append((entry["action"], entry["summary"].get("fields")))
    assert actions == [
        ("event_type.created", None),
        ("event_type.updated", ["deprecated"]),
        ("event_type.updated", ["deprecated", "description"]),
        ("event_type.archived", ["archived"]),
        ("event_type.deleted", None),
    ]


async def test_endpoint_changes_are_each_one_entry_with_their_own_action(api: Api) -> None:
    """Every way an endpoint changes is one entry under the endpoint's application: create,
    update (its policy too), disable, enable, PUT, secret rotation, headers replaced and
    patched, delete."""
    await _acme(api)
    c = api.client
    ep = (await c.get(EP)).json()["id"]
    app_id = (await c.get("/api/v1/app/acme")).json()["id"]
    expected = [
        (c.patch(EP, json={"description": "d"}), "endpoint.updated", ["description"]),
        (
            c.patch(EP, json={"policy": {"breaker": {"threshold": 2}}}),
            "endpoint.updated",
            ["policy"],
        ),
        (c.patch(EP, json={"disabled": True}), "endpoint.disabled", ["disabled"]),
        (c.patch(EP, json={"disabled": False}), "endpoint.enabled", ["disabled"]),
        (
            c.put(EP, json={"url": "https://example.com/new", "description": "d"}),
            "endpoint.updated",
            ["policy", "url"],  # PUT replaces every field, the policy set above too
        ),
        (c.post(f"{EP}/secret/rotate", json={}), "endpoint.secret_rotated", ["keys"]),
        (
            c.put(f"{EP}/headers", json={"headers": {"X-A": "1"}}),
            "endpoint.headers_replaced",
            ["headers"],
        ),
        (
            c.patch(f"{EP}/headers", json={"headers": {"X-B": "2"}, "deleteHeaders": ["X-A"]}),
            "endpoint.headers_updated",
            ["headers"],
        ),
        (c.delete(EP), "endpoint.deleted", None),
    ]
    for change, action, fields in expected:
        entry = await _one(api, change)
        assert (entry["action"], entry["appId"], entry["targetId"]) == (action, app_id, ep)
        assert entry["summary"].get("fields") == fields, entry
    created = await _one(api, c.post("/api/v1/app/acme/endpoint", json={"url": "https://e.com"}))
    assert created["action"] == "endpoint.created" and created["appId"] == app_id


async def test_endpoint_credentials_are_audited_by_setting_never_by_value(api: Api) -> None:
    """Setting and removing an endpoint's OAuth client and HTTP Basic login are one
    ``endpoint.auth_changed`` entry each, naming the setting and the change; neither the
    client secret nor the password is anywhere in the log."""
    await _acme(api)
    c = api.client
    client_secret, password = "audit-oauth-client-secret-x1", "audit-basic-password-x2"
    oauth = {
        "authMethod": "clientSecretPost",
        "clientId": "hookline",
        "clientSecret": client_secret,
        "grantType": "clientCredentials",
        "tokenUrl": "https://auth.example.com/token",
    }
    login = {"username": "hookline", "password": password}
    expected = [
        (c.put(f"{EP}/oauth", json=oauth), {"setting": "oauth", "change": "set"}),
        (c.delete(f"{EP}/oauth"), {"setting": "oauth", "change": "removed"}),
        (c.put(f"{EP}/basic-auth", json=login), {"setting": "basic-auth", "change": "set"}),
    ]
    for change, summary in expected:
        entry = await _one(api, change)
        assert entry["action"] == "endpoint.auth_changed", entry
        assert entry["summary"] == {"fields": ["auth"], **summary}, entry
    log = str(await _entries(api))
    assert client_secret not in log and password not in log


async def test_operational_webhook_endpoints_are_audited_under_no_application(api: Api) -> None:
    """The operator's operational-webhook endpoints are recorded as ``operational_endpoint.*``
    with no application, so no application's token ever reads them."""
    c = api.client
    base = "/api/v1/operational-webhook/endpoint"
    created = await _one(api, c.post(base, json={"url": "https://ops.example.com/h"}))
    assert (created["action"], created["appId"]) == ("operational_endpoint.created", None)
    ep = created["targetId"]
    rotated = await _one(api, c.post(f"{base}/{ep}/secret/rotate", json={}))
    assert rotated["action"] == "operational_endpoint.secret_rotated"
    deleted = await _one(api, c.delete(f"{base}/{ep}"))
    assert deleted["action"] == "operational_endpoint.deleted"


async def test_token_changes_are_each_one_entry_and_never_hold_the_token(api: Api) -> None:
    """Create (API and portal access), expire-all, revoke and logout: one entry each; the
    token's id is the target, the token itself is nowhere in the log."""
    await _acme(api)
    c = api.client
    mark = await _newest(api)
    created = await _one(api, c.post("/api/v1/token", json={"appId": "acme", "name": "ci"}))
    token_id = created["targetId"]
    assert created["action"] == "token.created" and created["summary"]["name"] == "ci"
    assert created["summary"]["admin"] is False and created["appId"] is not None
    portal = await _one(api, c.post("/api/v1/auth/app-portal-access/acme", json={}))
    assert portal["action"] == "token.created" and portal["summary"]["portal"] is True
    expired = await _one(api, c.post("/api/v1/auth/app/acme/expire-all", json={}))
    assert (expired["action"], expired["summary"]["expired"]) == ("token.expired_all", 2)
    revoked = await _one(api, c.delete(f"/api/v1/token/{token_id}"))
    assert (revoked["action"], revoked["targetId"]) == ("token.revoked", token_id)
    token = await _scoped(api, "acme")
    async with api.as_token(token) as scoped:
        entry = await _one(api, scoped.post("/api/v1/auth/logout"))
    assert entry["action"] == "token.logged_out" and entry["actor"] == entry["targetId"]
    everything = str(await _entries(api, mark))
    assert token not in everything and "hl_app_" not in everything


async def test_a_tokens_networks_are_in_its_entries_when_set_and_when_changed(api: Api) -> None:
    """A token created with an address allowlist shows it in its ``token.created`` entry; a
    PATCH of the list is one ``token.networks_changed`` entry with the new list (None when
    lifted): where a token may be used from is recorded, the token never is."""
    c = api.client
    body = {"name": "net", "allowedNetworks": ["10.0.0.0/8"]}
    created = await _one(api, c.post("/api/v1/token", json=body))
    assert created["summary"]["allowedNetworks"] == ["10.0.0.0/8"]
    path = f"/api/v1/token/{created['targetId']}"
    changed = await _one(api, c.patch(path, json={"allowedNetworks": ["192.0.2.0/24"]}))
    assert changed["action"] == "token.networks_changed"
    assert changed["summary"] == {"allowedNetworks": ["192.0.2.0/24"]}
    lifted = await _one(api, c.patch(path, json={"allowedNetworks": None}))
    assert lifted["summary"] == {"allowedNetworks": None}


async def test_message_and_bulk_operations_are_each_one_entry(api: Api) -> None:
    """Resend, content expunge, example sends, and starting and canceling a background task
    are each recorded once; a dry run, which changes nothing, is not recorded."""
    await _acme(api)
    c = api.client
    r = await c.post("/api/v1/app/acme/msg", json={"eventType": "a.b", "payload": {}})
    msg = r.json()["id"]
    await fail_next_delivery(api.store)
    resent = await _one(api, c.post(f"/api/v1/app/acme/msg/{msg}/endpoint/ep/resend"))
    ep = (await c.get(EP)).json()["id"]
    assert (resent["action"], resent["targetId"], resent["summary"]) == (
        "message.resent",
        msg,
        {"endpointId": ep},
    )
    example = await _one(api, c.post(f"{EP}/send-example", json={"eventType": "a.b"}))
    assert example["action"] == "message.example_sent"
    expunged = await _one(api, c.delete(f"/api/v1/app/acme/msg/{msg}/content"))
    assert (expunged["action"], expunged["targetId"]) == ("message.content_expunged", msg)
    since = {"since": "2020-01-01T00:00:00Z"}
    dry = c.post(f"{EP}/recover", params={"dry_run": "true"}, json=since)
    await _none(api, dry, 200)
    started = await _one(api, c.post(f"{EP}/recover", json=since))
    task = started["targetId"]
    assert started["action"] == "background_task.started"
    assert started["summary"] == {"task": "endpoint.recover", "endpointId": ep}
    canceled = await _one(api, c.post(f"/api/v1/background-task/{task}/cancel"))
    assert (canceled["action"], canceled["targetId"]) == ("background_task.canceled", task)


async def test_a_task_run_by_the_runner_adds_no_entry_of_its_own(api: Api) -> None:
    """The runner's batches carry out the started task: the start is the one entry."""
    await _acme(api)
    r = await api.client.post(f"{EP}/recover", json={"since": "2020-01-01T00:00:00Z"})
    assert r.status_code == 202
    mark = await _newest(api)
    assert await TaskRunner(Operations(api.store)).run_one()
    assert await _entries(api, mark) == []


async def test_a_refused_change_records_nothing(api: Api) -> None:
    """401 (no valid token), 403 (a read-only token), 404 (absent), 422 (invalid), 409
    (conflict): no entry."""
    await _acme(api)
    c = api.client
    await _none(api, c.patch("/api/v1/app/acme/endpoint/nope", json={"description": "x"}), 404)
    await _none(api, c.post("/api/v1/app/acme/endpoint", json={"url": "ftp://x"}), 422)
    await _none(api, c.patch(EP, json={"filterTypes": ["no.such"]}), 422)
    await _none(api, c.post("/api/v1/app", json={"name": "A", "uid": "acme"}), 409)
    await _none(api, c.post("/api/v1/event-type", json={"name": "a.b", "description": "a"}), 409)
    await _none(api, c.delete("/api/v1/token/tok_nope"), 404)
    await _none(api, c.post(f"{EP}/secret/rotate", json={"key": "not-a-secret"}), 422)
    async with api.as_token("hl_admin_not-a-token-of-this-deployment-at-all") as stranger:
        await _none(api, stranger.post("/api/v1/app", json={"name": "X"}), 401)
    read_only = await _scoped(api, "acme", readOnly=True)
    async with api.as_token(read_only) as scoped:
        await _none(api, scoped.patch(EP, json={"description": "x"}), 403)
        await _none(api, scoped.post(f"{EP}/secret/rotate", json={}), 403)
        await _none(api, scoped.post("/api/v1/app", json={"name": "X"}), 403)


async def test_no_secret_header_value_or_token_is_ever_in_an_entry(api: Api) -> None:
    """Secrets given at creation and at rotation, custom header values given in every way,
    and new tokens are absent from the whole log; header names are listed."""
    await _acme(api)
    c = api.client
    secret = "whsec_" + "c2VjcmV0LXNpZ25pbmcta2V5LTEyMzQ1Njc4"
    rotated = "whsec_" + "cm90YXRlZC1zaWduaW5nLWtleS05ODc2NTQz"
    values = ["Bearer s3cr3t-credential-one", "Basic s3cr3t-credential-two", "s3cr3t-three"]
    r = await c.post(
        "/api/v1/app/acme/endpoint",
        json={
            "url": "https://user:s3cr3t-pw@example.com/h",
            "uid": "ep2",
            "secret": secret,
            "headers": {"Authorization": values[0]},
        },
    )
    assert r.status_code == 201, r.text
    path = "/api/v1/app/acme/endpoint/ep2"
    assert (await c.post(f"{path}/secret/rotate", json={"key": rotated})).is_success
    assert (await c.put(f"{path}/headers", json={"headers": {"X-Key": values[1]}})).is_success
    patched = await _one(api, c.patch(f"{path}/headers", json={"headers": {"X-Other": values[2]}}))
    assert patched["summary"]["headers"] == {"set": ["x-other"], "removed": []}
    token = await _scoped(api, "acme")
    log = str(await _entries(api))
    for value in (secret, rotated, *values, token, "s3cr3t"):
        assert value not in log, value


async def test_the_address_is_the_clients_as_the_api_resolved_it(api: Api) -> None:
    """The entry's address is the request's client address (after the trusted-proxy
    rewrite uvicorn applies), not a fixed one."""
    transport = httpx.ASGITransport(
        app=api.client._transport.app,  # type: ignore[attr-defined]
        client=("203.0.113.9", 4000),
    )
    headers = dict(api.client.headers)
    async with httpx.AsyncClient(transport=transport, base_url="http://h", headers=headers) as c:
        entry = await _one(api, c.post("/api/v1/app", json={"name": "From afar"}))
    assert entry["address"] == "203.0.113.9"


async def test_an_application_token_reads_its_own_applications_entries_only(api: Api) -> None:
    """``GET /app/{app}/audit`` shows that application's entries only, with the admin shown
    as ``admin`` and without the operator's address; another application's token gets 404
    and the admin log is 403 to it."""
    await _acme(api)
    assert (await api.client.post("/api/v1/app", json={"name": "B", "uid": "beta"})).is_success
    r = await api.client.post("/api/v1/app/beta/endpoint", json={"url": "https://b.example"})
    assert r.status_code == 201
    mine = await _scoped(api, "acme", readOnly=True)
    writer = await _scoped(api, "acme")
    theirs = await _scoped(api, "beta")
    async with api.as_token(writer) as w:
        assert (await w.patch(EP, json={"description": "by the tenant"})).is_success
    writer_id = (await api.client.get("/api/v1/token", params={"app_id": "acme"})).json()
    writer_ids = {t["id"] for t in writer_id["data"]}
    acme_id = (await api.client.get("/api/v1/app/acme")).json()["id"]
    async with api.as_token(mine) as scoped:
        r = await scoped.get("/api/v1/app/acme/audit")
        assert r.status_code == 200, r.text
        entries = r.json()["data"]
        assert entries and {e["appId"] for e in entries} == {acme_id}
        by_tenant = [e for e in entries if e["actor"] in writer_ids]
        assert len(by_tenant) == 1 and by_tenant[0]["address"] == CLIENT
        by_admin = [e for e in entries if e not in by_tenant]
        assert by_admin and {(e["actor"], e["address"]) for e in by_admin} == {("admin", None)}
        assert (await scoped.get("/api/v1/app/beta/audit")).status_code == 404
        assert (await scoped.get("/api/v1/audit")).status_code == 403
    async with api.as_token(theirs) as other:
        assert (await other.get("/api/v1/app/acme/audit")).status_code == 404
        beta = (await other.get("/api/v1/app/beta/audit")).json()["data"]
        assert beta and all(e["appId"] != acme_id for e in beta)


async def test_the_admin_log_filters_and_pages(api: Api) -> None:
    """Filters by application (id or uid, and a deleted one's id), actor, action prefix and
    time (since inclusive, until exclusive); pages with limit and iterator; newest first by
    default."""
    await _acme(api)
    admin = await _admin_id(api)
    c = api.client
    acme_id = (await c.get("/api/v1/app/acme")).json()["id"]
    everything = await _entries(api)
    assert [e["action"] for e in everything] == [
        "token.configured",  # HOOKLINE_ADMIN_TOKEN stored at start, by the process
        "application.created",
        "event_type.created",
        "endpoint.created",
    ]
    newest_first = (await c.get("/api/v1/audit")).json()["data"]
    assert [e["id"] for e in newest_first] == [e["id"] for e in reversed(everything)]
    in_acme = await _entries(api, app_id=acme_id)
    assert [e["action"] for e in in_acme] == ["application.created", "endpoint.created"]
    assert await _entries(api, app_id="acme") == in_acme  # by uid too
    assert (await c.delete("/api/v1/app/acme")).status_code == 204
    gone = await _entries(api, app_id=acme_id)  # the entries outlive the application
    assert [e["action"] for e in gone][-1] == "application.deleted" and len(gone) == 3
    everything = await _entries(api)
    assert [e["action"] for e in await _entries(api, action="endpoint")] == ["endpoint.created"]
    assert await _entries(api, action="endpoint.updated") == []
    assert len(await _entries(api, actor=admin)) == 4
    assert [e["action"] for e in await _entries(api, actor="system")] == ["token.configured"]
    assert await _entries(api, actor="cli") == []
    assert len(await _entries(api, since="2020-01-01T00:00:00Z")) == 5
    assert await _entries(api, until="2020-01-01T00:00:00Z") == []
    last = everything[-1]
    assert last in await _entries(api, since=last["timestamp"])
    assert last not in await _entries(api, until=last["timestamp"])
    one = (await c.get("/api/v1/audit", params={"limit": "1"})).json()
    assert len(one["data"]) == 1 and one["done"] is False


async def test_bad_filters_are_a_422_naming_the_parameter(api: Api) -> None:
    """An action or actor that cannot name one, a bad date, an inverted range, an unknown
    parameter: each a 422 naming it."""
    for params, name in (
        ({"action": "endpoint%"}, "action"),
        ({"actor": "tok a"}, "actor"),
        ({"since": "yesterday"}, "since"),
        ({"since": "2024-01-02T00:00:00Z", "until": "2024-01-01T00:00:00Z"}, "since"),
        ({"target": "x"}, "target"),
    ):
        r = await api.client.get("/api/v1/audit", params=params)
        assert r.status_code == 422, (params, r.text)
        assert name in str(r.json()["detail"]), r.text


async def test_the_log_has_no_route_that_changes_an_entry(api: Api) -> None:
    """Append-only over HTTP too: PUT, PATCH, DELETE and POST on the log are refused (405)."""
    await _acme(api)
    entry = (await api.client.get("/api/v1/audit")).json()["data"][0]["id"]
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        r = await api.client.request(method, "/api/v1/audit")
        assert r.status_code == 405, (method, r.text)
        r = await api.client.request(method, f"/api/v1/audit/{entry}")
        assert r.status_code == 404, (method, r.text)
