"""The HTTP API in process: wire format, errors, auth, tenancy and idempotency."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from hookline.api.routes import all_routes
from hookline.domain.breaker import CircuitState, ProbeGrant, Reason
from hookline.storage.base import ListQuery, MessageFilter
from tests.conftest import utcnow
from tests.integration.conftest import Api

CLOSED_CIRCUIT = {
    "state": "closed",
    "consecutiveFailures": None,
    "failureRatio": None,
    "reason": None,
    "openedAt": None,
    "nextProbeAt": None,
    "probing": False,
}


async def _app(api: Api, uid: str = "acme") -> dict[str, Any]:
    r = await api.client.post("/api/v1/app", json={"name": "Acme", "uid": uid})
    assert r.status_code == 201, r.text
    return dict(r.json())


async def _event_type(api: Api, name: str) -> None:
    r = await api.client.post("/api/v1/event-type", json={"name": name, "description": name})
    assert r.status_code == 201, r.text


async def _message_count(api: Api, app_id: str) -> int:
    page = await api.store.list_messages(app_id, ListQuery(limit=250), MessageFilter())
    return len(page.data)


async def test_missing_or_wrong_token_is_401_with_json(api: Api) -> None:
    """Requests without a valid bearer token get 401 and a JSON error body."""
    async with httpx.AsyncClient(transport=api.client._transport, base_url="http://h") as anon:
        r = await anon.get("/api/v1/app")
        assert r.status_code == 401
        assert r.json()["code"] == "authentication_failed"
    async with api.as_token("hl_admin_wrong") as wrong:
        r = await wrong.get("/api/v1/app")
        assert r.status_code == 401 and "detail" in r.json()


async def test_health_needs_no_token(api: Api) -> None:
    """Health endpoints answer without a token and report the database."""
    async with httpx.AsyncClient(transport=api.client._transport, base_url="http://h") as anon:
        r = await anon.get("/api/v1/health")
        assert r.status_code == 200 and r.json()["database"] == "ok"
        assert (await anon.get("/health/ping")).status_code == 200
        assert (await anon.get("/api/v1/health/ping")).status_code == 200


async def test_unknown_route_is_json_404_and_unimplemented_svix_route_is_501(api: Api) -> None:
    """Unknown paths get a JSON 404; Svix operations hookline lacks get a JSON 501."""
    r = await api.client.get("/nope")
    assert r.status_code == 404 and r.json()["code"] == "not_found"
    r = await api.client.post("/api/v1/app/x/integration", json={})
    assert r.status_code == 501 and r.json()["code"] == "not_implemented"


async def test_every_svix_route_hookline_lacks_answers_a_json_501(api: Api) -> None:
    """Each route of the SDK's list that is not implemented, ingest included, is a 501."""
    missing = [route for route in all_routes() if not route.implemented]
    assert any(route.path.startswith("/ingest/api/v1/") for route in missing)
    for route in missing:
        path = re.sub(r"\{\w+\}", "x", route.path)
        r = await api.client.request(route.method, path, json={})
        assert r.status_code == 501, f"{route.method} {path}: {r.status_code}"
        assert r.json()["code"] == "not_implemented"


async def test_application_crud_by_uid_and_trailing_slash(api: Api) -> None:
    """Applications are created, read by uid (trailing slash optional), patched, deleted."""
    created = await _app(api)
    assert created["id"].startswith("app_") and created["uid"] == "acme"
    r = await api.client.get("/api/v1/app/acme/")
    assert r.json()["id"] == created["id"]
    again = await api.client.post(
        "/api/v1/app?get_if_exists=true", json={"name": "Other", "uid": "acme"}
    )
    assert again.status_code == 200 and again.json()["name"] == "Acme"
    r = await api.client.patch("/api/v1/app/acme", json={"name": "Renamed"})
    assert r.json()["name"] == "Renamed" and r.json()["uid"] == "acme"
    assert (await api.client.get(f"/api/v1/app/{created['id']}")).json()["name"] == "Renamed"
    assert (await api.client.delete("/api/v1/app/acme")).status_code == 204
    assert (await api.client.get("/api/v1/app/acme")).status_code == 404


async def test_malformed_json_is_422_and_stores_nothing(api: Api) -> None:
    """A body that is not JSON gets a FastAPI-style 422 and creates no message."""
    app = await _app(api)
    r = await api.client.post(
        "/api/v1/app/acme/msg",
        content=b'{"eventType": "a.b", "payload": {',
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 422
    assert r.json()["detail"][0]["type"] == "json_invalid"
    assert await _message_count(api, app["id"]) == 0


async def test_non_object_payload_is_422_and_stores_nothing(api: Api) -> None:
    """A payload that is not a JSON object is refused with the field's location."""
    app = await _app(api)
    r = await api.client.post("/api/v1/app/acme/msg", json={"eventType": "a.b", "payload": [1]})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "payload"]
    assert await _message_count(api, app["id"]) == 0


async def test_payload_over_limit_is_413_and_stores_nothing(api: Api) -> None:
    """A body larger than HOOKLINE_MAX_PAYLOAD_BYTES gets 413 before anything is stored."""
    app = await _app(api)
    r = await api.client.post(
        "/api/v1/app/acme/msg", json={"eventType": "a.b", "payload": {"x": "y" * 5000}}
    )
    assert r.status_code == 413 and r.json()["code"] == "payload_too_large"
    assert await _message_count(api, app["id"]) == 0


async def test_endpoint_with_unknown_event_type_or_bad_url_is_refused(api: Api) -> None:
    """An unknown event type in a filter, or a non-http URL, is a 422 and no endpoint."""
    await _app(api)
    r = await api.client.post(
        "/api/v1/app/acme/endpoint",
        json={"url": "https://example.com/h", "filterTypes": ["no.such"]},
    )
    assert r.status_code == 422 and "no.such" in r.json()["detail"][0]["msg"]
    r = await api.client.post("/api/v1/app/acme/endpoint", json={"url": "ftp://example.com/"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "url"]
    listed = await api.client.get("/api/v1/app/acme/endpoint")
    assert listed.json()["data"] == []


async def test_app_scoped_token_sees_only_its_application(api: Api) -> None:
    """A portal token reads its own app; other apps are 404, admin-only routes 403."""
    await _app(api, "mine")
    await _app(api, "theirs")
    r = await api.client.post("/api/v1/auth/app-portal-access/mine", json={})
    assert r.status_code == 200
    token = r.json()["token"]
    async with api.as_token(token) as portal:
        assert (await portal.get("/api/v1/app/mine/endpoint")).status_code == 200
        other = await portal.get("/api/v1/app/theirs/endpoint")
        assert other.status_code == 404 and other.json()["code"] == "not_found"
        r = await portal.post("/api/v1/app/theirs/msg", json={"eventType": "a.b", "payload": {}})
        assert r.status_code == 404
        assert (await portal.get("/api/v1/app")).status_code == 403


async def test_idempotency_key_replays_first_response_and_refuses_other_body(api: Api) -> None:
    """The same key and body return the first response once stored; another body is a 409."""
    app = await _app(api)
    body = {"eventType": "a.b", "payload": {"n": 1}}
    first = await api.client.post(
        "/api/v1/app/acme/msg", json=body, headers={"idempotency-key": "k-1"}
    )
    second = await api.client.post(
        "/api/v1/app/acme/msg", json=body, headers={"idempotency-key": "k-1"}
    )
    assert first.status_code == second.status_code == 202
    assert first.json()["id"] == second.json()["id"]
    assert second.headers["idempotent-replayed"] == "true"
    assert await _message_count(api, app["id"]) == 1
    other = await api.client.post(
        "/api/v1/app/acme/msg",
        json={**body, "payload": {"n": 2}},
        headers={"idempotency-key": "k-1"},
    )
    assert other.status_code == 409 and other.json()["code"] == "idempotency_conflict"


async def test_message_publish_is_accepted_and_a_repeated_event_id_conflicts(api: Api) -> None:
    """A publish is 202 with the message, and a repeated eventId is 409.

    The store, not the handler, tells the local worker about new deliveries (handoff)."""
    await _app(api)
    body = {"eventType": "a.b", "eventId": "evt-1", "payload": {"n": 1}, "channels": ["eu"]}
    r = await api.client.post("/api/v1/app/acme/msg", json=body)
    assert r.status_code == 202
    out = r.json()
    assert out["id"].startswith("msg_") and out["payload"] == {"n": 1}
    assert out["eventId"] == "evt-1" and out["channels"] == ["eu"]
    assert (await api.client.post("/api/v1/app/acme/msg", json=body)).status_code == 409
    by_event_id = await api.client.get("/api/v1/app/acme/msg/evt-1")
    assert by_event_id.json()["id"] == out["id"]


async def test_inline_application_is_created_on_publish(api: Api) -> None:
    """Publishing to a missing app with an inline ``application`` creates it under the path uid."""
    r = await api.client.post(
        "/api/v1/app/new-co/msg",
        json={"eventType": "a.b", "payload": {}, "application": {"name": "New Co"}},
    )
    assert r.status_code == 202
    app = await api.client.get("/api/v1/app/new-co")
    assert app.json()["name"] == "New Co"


async def test_custom_headers_hide_credentials_and_refuse_hop_by_hop(api: Api) -> None:
    """Authorization-like header values are withheld on read; hop-by-hop names are refused."""
    await _app(api)
    r = await api.client.post(
        "/api/v1/app/acme/endpoint",
        json={
            "url": "https://example.com/h",
            "uid": "ep1",
            "headers": {"Authorization": "Bearer s3cret", "X-Team": "core"},
        },
    )
    assert r.status_code == 201, r.text
    headers = (await api.client.get("/api/v1/app/acme/endpoint/ep1/headers")).json()
    assert headers == {"headers": {"X-Team": "core"}, "sensitive": ["Authorization"]}
    bad = await api.client.put(
        "/api/v1/app/acme/endpoint/ep1/headers", json={"headers": {"Transfer-Encoding": "x"}}
    )
    assert bad.status_code == 422


async def test_secret_rotation_changes_the_current_key(api: Api) -> None:
    """Rotating returns the new key and the endpoint's current secret becomes the new key."""
    await _app(api)
    await api.client.post(
        "/api/v1/app/acme/endpoint", json={"url": "https://example.com/h", "uid": "ep1"}
    )
    before = (await api.client.get("/api/v1/app/acme/endpoint/ep1/secret")).json()["key"]
    assert before.startswith("whsec_")
    r = await api.client.post("/api/v1/app/acme/endpoint/ep1/secret/rotate", json={})
    assert r.status_code == 200
    after = (await api.client.get("/api/v1/app/acme/endpoint/ep1/secret")).json()["key"]
    assert r.json()["key"] == after
    assert after != before and after.startswith("whsec_")


async def test_list_limit_is_validated(api: Api) -> None:
    """A limit outside 1..250 is a 422 naming the query parameter."""
    r = await api.client.get("/api/v1/app?limit=1000")
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "limit"]


async def test_openapi_document_describes_real_routes(api: Api) -> None:
    """The OpenAPI document lists implemented operations with their schemas."""
    r = await api.client.get("/api/v1/openapi.json")
    doc = r.json()
    assert doc["openapi"].startswith("3.")
    assert "post" in doc["paths"]["/api/v1/app/{app_id}/msg"]
    assert "MessageIn" in doc["components"]["schemas"]
    docs = await api.client.get("/docs")
    assert docs.status_code == 200 and b"/api/v1/app/{app_id}/msg" in docs.content


async def _endpoint(api: Api, uid: str, **extra: Any) -> dict[str, Any]:
    r = await api.client.post(
        "/api/v1/app/acme/endpoint", json={"url": "https://example.com/h", "uid": uid, **extra}
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


async def test_endpoint_put_upserts_and_patch_keeps_unset_fields(api: Api) -> None:
    """PUT creates a missing endpoint under the path uid; PATCH changes only what it names."""
    await _app(api)
    await _event_type(api, "a.b")
    created = await api.client.put(
        "/api/v1/app/acme/endpoint/by-put", json={"url": "https://example.com/put"}
    )
    assert created.status_code == 201 and created.json()["uid"] == "by-put"
    patched = await api.client.patch(
        "/api/v1/app/acme/endpoint/by-put", json={"filterTypes": ["a.b"], "disabled": True}
    )
    body = patched.json()
    assert body["url"] == "https://example.com/put"
    assert body["eventTypes"] == body["filterTypes"] == ["a.b"]
    assert body["disabled"] is True
    updated = await api.client.put(
        "/api/v1/app/acme/endpoint/by-put", json={"url": "https://example.com/new"}
    )
    assert updated.status_code == 200 and updated.json()["eventTypes"] is None


async def test_endpoint_and_application_policy_is_set_shown_patched_and_cleared(
    api: Api,
) -> None:
    """``policy`` is taken on create, shown on read, a PATCH replaces it, null clears it."""
    app = await api.client.post(
        "/api/v1/app", json={"name": "P", "policy": {"retry": {"schedule": [1, 2]}}}
    )
    assert app.status_code == 201 and app.json()["policy"] == {"retry": {"schedule": [1.0, 2.0]}}
    policy = {"ordering": {"onExhausted": "hold"}, "retry": {"maxAgeSeconds": 60}}
    created = await api.client.post(
        f"/api/v1/app/{app.json()['id']}/endpoint",
        json={"url": "https://example.com/p", "policy": policy},
    )
    assert created.status_code == 201
    path = f"/api/v1/app/{app.json()['id']}/endpoint/{created.json()['id']}"
    shown = (await api.client.get(path)).json()["policy"]
    assert shown == {"retry": {"maxAgeSeconds": 60.0}, "ordering": {"onExhausted": "hold"}}
    patched = await api.client.patch(path, json={"policy": {"breaker": {"threshold": 2}}})
    assert patched.json()["policy"] == {"breaker": {"threshold": 2}}
    untouched = await api.client.patch(path, json={"description": "d"})
    assert untouched.json()["policy"] == {"breaker": {"threshold": 2}}
    cleared = await api.client.patch(path, json={"policy": None})
    assert cleared.json()["policy"] == {}


async def test_a_policy_hookline_cannot_use_is_a_422_naming_the_field(api: Api) -> None:
    """A bad policy value is refused with a JSON 422 that says which field, and nothing is
    stored."""
    await _app(api)
    refused = await api.client.post(
        "/api/v1/app/acme/endpoint",
        json={"url": "https://example.com/x", "policy": {"retry": {"schedule": [-1]}}},
    )
    assert refused.status_code == 422
    assert "policy.retry.schedule" in refused.text
    listed = (await api.client.get("/api/v1/app/acme/endpoint")).json()["data"]
    assert listed == []


async def test_event_type_delete_archives_unless_expunged(api: Api) -> None:
    """DELETE archives an event type (hidden from lists by default); expunge removes it."""
    await _event_type(api, "a.b")
    assert (await api.client.delete("/api/v1/event-type/a.b")).status_code == 204
    listed = (await api.client.get("/api/v1/event-type")).json()["data"]
    assert listed == []
    archived = (await api.client.get("/api/v1/event-type?include_archived=true")).json()["data"]
    assert [e["name"] for e in archived] == ["a.b"] and archived[0]["archived"] is True
    again = await api.client.post("/api/v1/event-type", json={"name": "a.b", "description": "x"})
    assert again.status_code == 409 and again.json()["code"] == "event_type_exists"
    assert (await api.client.delete("/api/v1/event-type/a.b?expunge=true")).status_code == 204
    assert (await api.client.get("/api/v1/event-type/a.b")).status_code == 404


async def test_send_example_publishes_schema_example_to_one_endpoint(api: Api) -> None:
    """send-example sends the event type's schema example only to the chosen endpoint."""
    await _app(api)
    r = await api.client.post(
        "/api/v1/event-type",
        json={
            "name": "a.b",
            "description": "x",
            "schemas": {"1": {"type": "object", "examples": [{"hello": "world"}]}},
        },
    )
    assert r.status_code == 201
    target = await _endpoint(api, "target")
    await _endpoint(api, "bystander")
    r = await api.client.post(
        "/api/v1/app/acme/endpoint/target/send-example", json={"eventType": "a.b"}
    )
    assert r.status_code == 202 and r.json()["payload"] == {"hello": "world"}
    destinations = await api.client.get(f"/api/v1/app/acme/msg/{r.json()['id']}/endpoint")
    assert [d["id"] for d in destinations.json()["data"]] == [target["id"]]
    assert destinations.json()["data"][0]["statusText"] == "pending"


async def test_messages_filter_expunge_and_attempted_views(api: Api) -> None:
    """Message lists filter by type and channel; expunge empties the payload; views join status."""
    await _app(api)
    ep = await _endpoint(api, "ep1")
    for event_type, channels in (("a.x", ["eu"]), ("b.x", None)):
        body: dict[str, Any] = {"eventType": event_type, "payload": {"t": event_type}}
        if channels:
            body["channels"] = channels
        assert (await api.client.post("/api/v1/app/acme/msg", json=body)).status_code == 202
    by_type = (await api.client.get("/api/v1/app/acme/msg?event_types=b.x")).json()["data"]
    by_channel = (await api.client.get("/api/v1/app/acme/msg?channel=eu")).json()["data"]
    assert [m["eventType"] for m in by_type] == ["b.x"]
    assert [m["eventType"] for m in by_channel] == ["a.x"]
    newest_first = (await api.client.get("/api/v1/app/acme/msg")).json()["data"]
    assert [m["eventType"] for m in newest_first] == ["b.x", "a.x"]
    msg_id = by_type[0]["id"]
    assert (await api.client.delete(f"/api/v1/app/acme/msg/{msg_id}/content")).status_code == 204
    assert (await api.client.get(f"/api/v1/app/acme/msg/{msg_id}")).json()["payload"] == {}
    sent = (await api.client.get("/api/v1/app/acme/endpoint/ep1/msg")).json()["data"]
    assert len(sent) == 2 and {m["statusText"] for m in sent} == {"pending"}
    stats = (await api.client.get("/api/v1/app/acme/endpoint/ep1/stats")).json()
    unlimited = {"limit": None, "source": None, "currentRate": None, "recoversAt": None}
    assert stats == {
        **{"success": 0, "pending": 2, "sending": 0, "fail": 0, "canceled": 0},
        "rateLimit": unlimited,
        "circuit": CLOSED_CIRCUIT,
    }
    bad = await api.client.get(f"/api/v1/app/acme/attempt/endpoint/{ep['id']}?status=9")
    assert bad.status_code == 422


async def test_resend_of_a_pair_that_was_never_sent_is_404(api: Api) -> None:
    """Resending to an endpoint the message never targeted is a 404, not a new delivery."""
    await _app(api)
    await _event_type(api, "a.b")
    await _endpoint(api, "only-a", filterTypes=["a.b"])
    msg = (
        await api.client.post("/api/v1/app/acme/msg", json={"eventType": "c.d", "payload": {}})
    ).json()
    r = await api.client.post(f"/api/v1/app/acme/msg/{msg['id']}/endpoint/only-a/resend")
    assert r.status_code == 404


async def test_patching_headers_matches_names_in_any_case_and_keeps_the_new_case(
    api: Api,
) -> None:
    """PATCH of ``x-team`` replaces ``X-Team``; ``deleteHeaders`` removes a name in any case."""
    await _app(api)
    await api.client.post(
        "/api/v1/app/acme/endpoint",
        json={
            "url": "https://example.com/h",
            "uid": "ep1",
            "headers": {"X-Team": "core", "X-Old": "1"},
        },
    )
    r = await api.client.patch(
        "/api/v1/app/acme/endpoint/ep1/headers",
        json={"headers": {"x-team": "edge"}, "deleteHeaders": ["x-OLD"]},
    )
    assert r.status_code == 204, r.text
    headers = (await api.client.get("/api/v1/app/acme/endpoint/ep1/headers")).json()
    assert headers == {"headers": {"x-team": "edge"}, "sensitive": []}


async def test_a_query_parameter_a_route_does_not_read_is_a_422_and_changes_nothing(
    api: Api,
) -> None:
    """An unknown parameter is refused, naming it, before anything is written."""
    created = await _app(api)
    r = await api.client.post(
        "/api/v1/app/acme/msg?deliver_later=1",
        json={"eventType": "a.b", "payload": {}},
    )
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["query", "deliver_later"]
    assert await _message_count(api, created["id"]) == 0
    listed = await api.client.get("/api/v1/app/acme/msg?event_types[]=a.b&tag=x")
    assert listed.status_code == 200, listed.text


async def test_endpoint_stats_refuse_a_range_that_ends_before_it_starts(api: Api) -> None:
    """``since`` must be earlier than ``until``: 422, not an empty answer."""
    await _app(api)
    await api.client.post(
        "/api/v1/app/acme/endpoint", json={"url": "https://example.com/h", "uid": "ep1"}
    )
    r = await api.client.get(
        "/api/v1/app/acme/endpoint/ep1/stats",
        params={"since": "2026-12-07T10:00:00Z", "until": "2026-12-07T09:00:00Z"},
    )
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "since"]


async def test_rate_limit_is_an_alias_of_throttle_rate_on_endpoints_and_applications(
    api: Api,
) -> None:
    """``rateLimit`` (Svix's older name) sets ``throttleRate``; an endpoint shows both; the
    two at odds are a 422 that changes nothing."""
    r = await api.client.post("/api/v1/app", json={"name": "Acme", "uid": "acme", "rateLimit": 9})
    assert r.status_code == 201 and r.json()["throttleRate"] == 9
    r = await api.client.post(
        "/api/v1/app/acme/endpoint",
        json={"url": "https://example.com/h", "uid": "ep", "rateLimit": 50},
    )
    assert r.status_code == 201, r.text
    assert r.json()["throttleRate"] == r.json()["rateLimit"] == 50
    r = await api.client.patch("/api/v1/app/acme/endpoint/ep", json={"rateLimit": 20})
    assert r.json()["throttleRate"] == r.json()["rateLimit"] == 20
    r = await api.client.patch(
        "/api/v1/app/acme/endpoint/ep", json={"rateLimit": 5, "throttleRate": 6}
    )
    assert r.status_code == 422 and "rateLimit" in r.text
    assert (await api.client.get("/api/v1/app/acme/endpoint/ep")).json()["throttleRate"] == 20


async def test_endpoint_stats_show_the_rate_limit_and_its_slowdown(api: Api) -> None:
    """Stats carry hookline's ``rateLimit``: the limit and where it comes from, and while a
    receiver has the endpoint slowed down, its current rate and when it recovers."""
    r = await api.client.post("/api/v1/app", json={"name": "Acme", "uid": "acme", "rateLimit": 8})
    r = await api.client.post(
        "/api/v1/app/acme/endpoint", json={"url": "https://example.com/h", "uid": "ep"}
    )
    endpoint_id = r.json()["id"]
    stats = (await api.client.get("/api/v1/app/acme/endpoint/ep/stats")).json()
    assert stats["rateLimit"] == {
        "limit": 8,
        "source": "application",
        "currentRate": None,
        "recoversAt": None,
    }
    await api.store.slow_endpoint(endpoint_id, 4.0, utcnow())
    r = await api.client.patch("/api/v1/app/acme/endpoint/ep", json={"throttleRate": 16})
    slowed = (await api.client.get("/api/v1/app/acme/endpoint/ep/stats")).json()["rateLimit"]
    assert (slowed["limit"], slowed["source"]) == (16, "endpoint")
    assert 4.0 <= slowed["currentRate"] < 5.0
    assert slowed["recoversAt"] is not None


async def test_an_endpoints_circuit_is_shown_on_the_endpoint_its_list_and_its_stats(
    api: Api,
) -> None:
    """``circuit`` says closed for a new endpoint; once a worker saved an open circuit, the
    endpoint, the list and the stats show it open with its counts, the rule that opened it,
    when it opened and when the probe may go; past the cooldown, half-open with the probe
    out; and closed again once it is closed."""
    app = await _app(api)
    created = await api.client.post(
        "/api/v1/app/acme/endpoint", json={"url": "https://example.com/c", "uid": "ep"}
    )
    assert created.json()["circuit"] == CLOSED_CIRCUIT
    endpoint_id = created.json()["id"]
    now = utcnow().timestamp()
    state = CircuitState(7, now + 60.0, 60.0, now - 1.0, 0.95, Reason.FAILURE_RATIO)
    await api.store.save_circuit(endpoint_id, state)
    shown = (await api.client.get("/api/v1/app/acme/endpoint/ep")).json()["circuit"]
    assert shown["state"] == "open" and shown["probing"] is False
    assert (shown["consecutiveFailures"], shown["failureRatio"], shown["reason"]) == (
        7,
        0.95,
        "failureRatio",
    )
    assert shown["openedAt"].startswith(api_time(now - 1.0))
    assert shown["nextProbeAt"].startswith(api_time(now + 60.0))
    listed = (await api.client.get("/api/v1/app/acme/endpoint")).json()["data"]
    assert [e["circuit"] for e in listed] == [shown]
    stats = (await api.client.get("/api/v1/app/acme/endpoint/ep/stats")).json()
    assert stats["circuit"] == shown
    await api.store.save_circuit(endpoint_id, None)
    await api.store.save_circuit(endpoint_id, CircuitState(5, now - 1.0, 5.0, now - 6.0))
    later = utcnow()
    bid = await api.store.claim_probe(endpoint_id, "wrk_x", later, later + timedelta(seconds=20))
    assert bid[0] is ProbeGrant.GRANTED
    half_open = (await api.client.get("/api/v1/app/acme/endpoint/ep")).json()["circuit"]
    assert half_open["state"] == "halfOpen" and half_open["probing"] is True
    await api.store.save_circuit(endpoint_id, None)
    closed = (await api.client.get(f"/api/v1/app/{app['id']}/endpoint/ep")).json()["circuit"]
    assert closed == CLOSED_CIRCUIT


def api_time(seconds: float) -> str:
    """The API's rendering of a time, to the second."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
