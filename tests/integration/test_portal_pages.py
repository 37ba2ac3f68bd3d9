"""The portal's pages through the real app (``create_app``): the shell, its static files,
and the fragments' authentication, capabilities and form validation."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from hookline.api.app import Services
from hookline.api.routes import create_app
from hookline.config import load_settings
from hookline.operations.context import Operations
from hookline.operations.tasks import TaskRunner
from hookline.server import ensure_admin_token
from hookline.storage.sqlite import SqliteStore
from tests.conftest import make_app, make_message
from tests.integration.conftest import ADMIN_TOKEN, Api, fail_next_delivery

APP = "acme"


async def _portal_token(api: Api, **body: Any) -> str:
    created = await api.client.post("/api/v1/app", json={"name": "Acme", "uid": APP})
    assert created.status_code in (201, 409), created.text
    r = await api.client.post(f"/api/v1/auth/app-portal-access/{APP}", json=body)
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


async def _app_id(api: Api) -> str:
    return str((await api.client.get(f"/api/v1/app/{APP}")).json()["id"])


def _page(api: Api, token: str | None = None) -> httpx.AsyncClient:
    """A browser's htmx requests: the bearer token only, no admin header."""
    headers = {} if token is None else {"authorization": f"Bearer {token}"}
    return httpx.AsyncClient(
        transport=api.client._transport, base_url="http://hookline", headers=headers
    )


async def _endpoints(api: Api) -> list[dict[str, Any]]:
    r = await api.client.get(f"/api/v1/app/{APP}/endpoint")
    data: list[dict[str, Any]] = r.json()["data"]
    return data


async def _event_type(api: Api, name: str) -> None:
    r = await api.client.post("/api/v1/event-type", json={"name": name, "description": name})
    assert r.status_code == 201, r.text


async def test_the_shell_is_html_with_its_assets_and_a_frame_ancestors_policy(api: Api) -> None:
    """The shell answers without a token (the token is in the fragment, never sent), with
    the application id escaped, its script and htmx served from the package, and
    ``frame-ancestors 'self'`` by default."""
    async with _page(api) as web:
        r = await web.get("/portal/app_<b>")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        assert "app_&lt;b&gt;" in r.text and "app_<b>" not in r.text
        assert "frame-ancestors 'self'" in r.headers["content-security-policy"]
        assert r.headers["cache-control"] == "no-store"
        for asset in ("/static/hookline.css", "/static/portal.js"):
            assert asset in r.text
            assert (await web.get(asset)).status_code == 200
        htmx = await web.get("/static/vendor/htmx/htmx.min.js")
        assert htmx.status_code == 200 and "htmx" in htmx.text
        assert (await web.get("/static/vendor/uplot/uPlot.iife.min.js")).status_code == 200


async def test_branding_parameters_become_css_variables_in_a_nonced_style(api: Api) -> None:
    """Svix's ``primaryColor``, ``fontFamily``, ``darkMode`` and ``icon`` set the page's
    custom properties, theme and logo; the style element carries the policy's nonce."""
    query = {
        "primaryColor": "#ff5500",
        "fontFamily": "Inter, Helvetica Neue",
        "darkMode": "true",
        "icon": "https://cdn.example.com/logo.png",
    }
    async with _page(api) as web:
        r = await web.get("/portal/app_1", params=query)
    assert r.status_code == 200, r.text
    assert "--brand-primary: #ff5500;" in r.text
    assert "--brand-font: Inter, Helvetica Neue, system-ui, sans-serif;" in r.text
    assert 'data-theme="dark"' in r.text
    assert 'src="https://cdn.example.com/logo.png"' in r.text
    nonce = re.search(r'<style nonce="([^"]+)"', r.text)
    assert nonce is not None
    assert f"'nonce-{nonce.group(1)}'" in r.headers["content-security-policy"]


async def test_a_branding_value_outside_its_grammar_is_a_400_naming_the_parameter(
    api: Api,
) -> None:
    """A colour that is not one, a font with CSS in it, or a logo that is not https is
    refused with the parameter named, and the value never reaches a style or attribute."""
    bad = [
        {"primaryColor": "red;}body{display:none"},
        {"fontFamily": "x;}</style><script>alert(1)</script>"},
        {"icon": "javascript:alert(1)"},
        {"icon": "http://127.0.0.1/logo.png"},
        {"darkMode": "sometimes"},
    ]
    async with _page(api) as web:
        for query in bad:
            r = await web.get("/portal/app_1", params=query)
            (name,) = query
            assert r.status_code == 400, query
            assert name in r.text
            assert "<script>alert" not in r.text and "display:none" not in r.text


async def test_a_fragment_without_a_valid_token_is_a_401_shown_in_the_main_region(
    api: Api,
) -> None:
    """No token, an unknown one: 401 with a clear message, retargeted to the main region."""
    await _portal_token(api)
    for token in (None, "hl_app_not-a-token"):
        async with _page(api, token) as web:
            r = await web.get(f"/portal/{APP}/endpoints")
        assert r.status_code == 401, r.text
        assert "Your access has ended" in r.text and "Open the portal again" in r.text
        assert r.headers["hx-retarget"] == "#portal-main"


async def test_logout_and_expire_all_end_a_portal_token_on_the_next_fragment(api: Api) -> None:
    """Revocation works as in the API: the next fragment request is refused."""
    token = await _portal_token(api)
    async with _page(api, token) as web:
        assert (await web.get(f"/portal/{APP}/endpoints")).status_code == 200
        assert (await web.post("/api/v1/auth/logout")).status_code == 204
        assert (await web.get(f"/portal/{APP}/endpoints")).status_code == 401
    other = await _portal_token(api)
    expired = await api.client.post(f"/api/v1/auth/app/{APP}/expire-all", json={})
    assert expired.status_code == 204
    async with _page(api, other) as web:
        assert (await web.get(f"/portal/{APP}/endpoints")).status_code == 401


async def test_another_applications_token_sees_this_application_as_absent(api: Api) -> None:
    """Tenant isolation holds in the pages: another application's token gets 404."""
    await _portal_token(api)
    await api.client.post("/api/v1/app", json={"name": "Other", "uid": "other"})
    r = await api.client.post("/api/v1/auth/app-portal-access/other", json={})
    async with _page(api, r.json()["token"]) as web:
        answer = await web.get(f"/portal/{APP}/endpoints")
    assert answer.status_code == 404


async def test_a_read_only_token_sees_no_controls_and_every_change_is_a_403(api: Api) -> None:
    """``readOnly``: the list and detail show no create, edit, disable or secret controls,
    and posting to each mutating route directly is refused with 403, changing nothing."""
    token = await _portal_token(api, readOnly=True)
    made = await api.client.post(
        f"/api/v1/app/{APP}/endpoint", json={"url": "https://example.com/hook"}
    )
    endpoint = made.json()
    before = (await api.client.get(f"/api/v1/app/{APP}/endpoint/{endpoint['id']}")).json()
    secret = (await api.client.get(f"/api/v1/app/{APP}/endpoint/{endpoint['id']}/secret")).json()
    base = f"/portal/{APP}/endpoints"
    async with _page(api, token) as web:
        listing = await web.get(base)
        assert listing.status_code == 200 and "https://example.com/hook" in listing.text
        assert "Add endpoint" not in listing.text
        detail = await web.get(f"{base}/{endpoint['id']}")
        assert detail.status_code == 200
        for control in ("Edit", "Disable", "Reveal secret", "Rotate secret"):
            assert f">{control}<" not in detail.text
        refused = [
            await web.get(f"{base}/new"),
            await web.post(base, data={"url": "https://example.com/other"}),
            await web.get(f"{base}/{endpoint['id']}/edit"),
            await web.post(f"{base}/{endpoint['id']}", data={"url": "https://evil.example"}),
            await web.post(f"{base}/{endpoint['id']}/disable"),
            await web.get(f"{base}/{endpoint['id']}/secret"),
            await web.post(f"{base}/{endpoint['id']}/secret/rotate", data={"graceHours": "0"}),
        ]
    for answer in refused:
        assert answer.status_code == 403, (answer.request.url, answer.text)
        assert "Not allowed" in answer.text
    after = (await api.client.get(f"/api/v1/app/{APP}/endpoint/{endpoint['id']}")).json()
    assert after == before and len(await _endpoints(api)) == 1
    again = await api.client.get(f"/api/v1/app/{APP}/endpoint/{endpoint['id']}/secret")
    assert again.json() == secret


async def test_creating_an_endpoint_through_the_form_stores_it_as_the_api_shows_it(
    api: Api,
) -> None:
    """Every field of the form reaches the endpoint: url, description, event types,
    channels, rate limit, headers and the disabled flag; the answer is its detail (201)."""
    token = await _portal_token(api)
    await _event_type(api, "invoice.paid")
    form = {
        "url": "https://example.com/hooks",
        "description": "Billing",
        "eventTypes": "invoice.paid",
        "channels": "eu, billing",
        "rateLimit": "12",
        "headers": "X-Team: billing",
        "disabled": "on",
    }
    async with _page(api, token) as web:
        r = await web.post(f"/portal/{APP}/endpoints", data=form)
        assert r.status_code == 201, r.text
        assert "Endpoint created." in r.text and "https://example.com/hooks" in r.text
        listing = await web.get(f"/portal/{APP}/endpoints")
    assert "https://example.com/hooks" in listing.text
    (stored,) = await _endpoints(api)
    assert stored["url"] == "https://example.com/hooks" and stored["description"] == "Billing"
    assert stored["filterTypes"] == ["invoice.paid"] and stored["channels"] == ["eu", "billing"]
    assert stored["rateLimit"] == 12 and stored["disabled"] is True
    headers = await api.client.get(f"/api/v1/app/{APP}/endpoint/{stored['id']}/headers")
    assert headers.json()["headers"] == {"X-Team": "billing"}


async def test_a_refused_form_is_shown_again_with_the_error_beside_its_field(api: Api) -> None:
    """The operations' rules and the form's own: a bad URL, an unknown event type, a rate
    limit that is not a number, a header line without a colon; each a 422 with the message
    next to its field and the values kept, and nothing stored."""
    token = await _portal_token(api)
    cases = [
        ({"url": "not a url"}, "url"),
        ({"url": "https://example.com/h", "eventTypes": "no.such"}, "eventTypes"),
        ({"url": "https://example.com/h", "rateLimit": "fast"}, "rateLimit"),
        ({"url": "https://example.com/h", "headers": "no colon here"}, "headers"),
        ({"url": "https://example.com/h", "channels": "bad channel!"}, "channels"),
    ]
    async with _page(api, token) as web:
        for form, field in cases:
            r = await web.post(f"/portal/{APP}/endpoints", data=form)
            assert r.status_code == 422, (form, r.text)
            assert f'id="{field}-error"' in r.text, (form, r.text)
            assert 'aria-invalid="true"' in r.text
    assert await _endpoints(api) == []


async def test_editing_an_endpoint_changes_its_fields_and_headers(api: Api) -> None:
    """The edit form is filled from the endpoint; saving patches the fields, replaces the
    shown headers (a removed line deletes its header) and clears an emptied rate limit."""
    token = await _portal_token(api)
    made = await api.client.post(
        f"/api/v1/app/{APP}/endpoint",
        json={"url": "https://example.com/a", "rateLimit": 5, "headers": {"X-Old": "1"}},
    )
    key = made.json()["id"]
    async with _page(api, token) as web:
        form = await web.get(f"/portal/{APP}/endpoints/{key}/edit")
        assert form.status_code == 200 and "X-Old: 1" in form.text
        saved = await web.post(
            f"/portal/{APP}/endpoints/{key}",
            data={"url": "https://example.com/b", "description": "New", "headers": "X-New: 2"},
        )
        assert saved.status_code == 200 and "Endpoint saved." in saved.text
    stored = (await api.client.get(f"/api/v1/app/{APP}/endpoint/{key}")).json()
    assert stored["url"] == "https://example.com/b" and stored["description"] == "New"
    assert stored["rateLimit"] is None
    headers = (await api.client.get(f"/api/v1/app/{APP}/endpoint/{key}/headers")).json()
    assert headers["headers"] == {"X-New": "2"}


async def test_a_refused_edit_changes_nothing(api: Api) -> None:
    """A bad header on an edit that also changes the URL stores neither."""
    token = await _portal_token(api)
    made = await api.client.post(f"/api/v1/app/{APP}/endpoint", json={"url": "https://e.com/a"})
    key = made.json()["id"]
    before = (await api.client.get(f"/api/v1/app/{APP}/endpoint/{key}")).json()
    async with _page(api, token) as web:
        r = await web.post(
            f"/portal/{APP}/endpoints/{key}",
            data={"url": "https://e.com/changed", "headers": "Connection: close"},
        )
    assert r.status_code == 422 and 'id="headers-error"' in r.text
    assert (await api.client.get(f"/api/v1/app/{APP}/endpoint/{key}")).json() == before


async def test_disable_enable_reveal_and_rotate_act_as_the_api(api: Api) -> None:
    """Disable and enable flip the endpoint; the revealed secret is the API's; a rotation
    makes a new one, which the API then shows."""
    token = await _portal_token(api)
    made = await api.client.post(f"/api/v1/app/{APP}/endpoint", json={"url": "https://e.com/a"})
    key = made.json()["id"]
    secret_url = f"/api/v1/app/{APP}/endpoint/{key}/secret"
    old = (await api.client.get(secret_url)).json()["key"]
    async with _page(api, token) as web:
        assert (await web.post(f"/portal/{APP}/endpoints/{key}/disable")).status_code == 200
        stored = await api.client.get(f"/api/v1/app/{APP}/endpoint/{key}")
        assert stored.json()["disabled"] is True
        assert (await web.post(f"/portal/{APP}/endpoints/{key}/enable")).status_code == 200
        stored = await api.client.get(f"/api/v1/app/{APP}/endpoint/{key}")
        assert stored.json()["disabled"] is False
        shown = await web.get(f"/portal/{APP}/endpoints/{key}/secret")
        assert shown.status_code == 200 and old in shown.text
        rotate = f"/portal/{APP}/endpoints/{key}/secret/rotate"
        bad = await web.post(rotate, data={"graceHours": "999"})
        assert bad.status_code == 422
        assert (await api.client.get(secret_url)).json()["key"] == old
        rotated = await web.post(
            f"/portal/{APP}/endpoints/{key}/secret/rotate", data={"graceHours": "1"}
        )
    new = (await api.client.get(secret_url)).json()["key"]
    assert rotated.status_code == 200 and new != old and new in rotated.text


async def test_the_list_filters_by_event_type(api: Api) -> None:
    """``eventType`` keeps the endpoints that receive it: those filtering on it, and those
    with no filter at all."""
    token = await _portal_token(api)
    await _event_type(api, "a.one")
    await _event_type(api, "b.two")
    for url, types in (("https://e.com/one", ["a.one"]), ("https://e.com/two", ["b.two"])):
        await api.client.post(
            f"/api/v1/app/{APP}/endpoint", json={"url": url, "filterTypes": types}
        )
    await api.client.post(f"/api/v1/app/{APP}/endpoint", json={"url": "https://e.com/all"})
    async with _page(api, token) as web:
        r = await web.get(f"/portal/{APP}/endpoints", params={"eventType": "a.one"})
    assert "https://e.com/one" in r.text and "https://e.com/all" in r.text
    assert "https://e.com/two" not in r.text


async def test_the_list_filters_by_channel(api: Api) -> None:
    """``channel`` keeps the endpoints listening on it and those without channels."""
    token = await _portal_token(api)
    for url, channels in (("https://e.com/eu", ["eu"]), ("https://e.com/us", ["us"])):
        await api.client.post(
            f"/api/v1/app/{APP}/endpoint", json={"url": url, "channels": channels}
        )
    await api.client.post(f"/api/v1/app/{APP}/endpoint", json={"url": "https://e.com/all"})
    async with _page(api, token) as web:
        r = await web.get(f"/portal/{APP}/endpoints", params={"channel": "eu"})
    assert "https://e.com/eu" in r.text and "https://e.com/all" in r.text
    assert "https://e.com/us" not in r.text


async def test_the_event_catalog_shows_each_type_with_its_schema(api: Api) -> None:
    """The catalog lists the event types with their description and schema, escaped."""
    token = await _portal_token(api)
    schema = {"type": "object", "examples": [{"id": "<b>1</b>"}]}
    await api.client.post(
        "/api/v1/event-type",
        json={"name": "user.created", "description": "A user", "schemas": {"1": schema}},
    )
    async with _page(api, token) as web:
        r = await web.get(f"/portal/{APP}/event-types")
    assert r.status_code == 200 and "user.created" in r.text and "A user" in r.text
    assert "<b>1</b>" not in r.text


async def test_the_message_log_lists_the_newest_first_filters_and_pages(api: Api) -> None:
    """Messages newest first; ``eventType`` keeps one type; a full page links the older."""
    token = await _portal_token(api)
    await _event_type(api, "a.one")
    await _event_type(api, "b.two")
    for index in range(52):
        event = "a.one" if index % 2 else "b.two"
        r = await api.client.post(
            f"/api/v1/app/{APP}/msg",
            json={"eventType": event, "eventId": f"evt-{index:02}", "payload": {"i": index}},
        )
        assert r.status_code == 202, r.text
    async with _page(api, token) as web:
        first = await web.get(f"/portal/{APP}/messages")
        assert first.status_code == 200
        assert first.text.index("evt-51") < first.text.index("evt-50")
        assert "evt-01" not in first.text and "Older messages" in first.text
        older = re.search(r'hx-get="(/portal/[^"]+/messages\?iterator=[^"]+)"', first.text)
        assert older is not None
        second = await web.get(older.group(1).replace("&amp;", "&"))
        assert "evt-01" in second.text and "evt-51" not in second.text
        typed = await web.get(f"/portal/{APP}/messages", params={"eventType": "a.one"})
    assert "evt-51" in typed.text and "evt-50" not in typed.text


async def _portal_app(tmp_path: Path, **settings: str) -> tuple[httpx.AsyncClient, SqliteStore]:
    """The real app with extra settings, and an admin client of it."""
    loaded = load_settings({"admin_token": ADMIN_TOKEN, **settings}, environ={})
    store = SqliteStore(str(tmp_path / "portal.db"))
    await store.open()
    await ensure_admin_token(store, loaded)
    ops = Operations(store, base_url=loaded.base_url)
    app = create_app(Services(ops=ops, settings=loaded))
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://hookline",
        headers={"authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    return client, store


async def test_the_frame_ancestors_setting_is_the_policy_of_every_portal_response(
    tmp_path: Path,
) -> None:
    """``HOOKLINE_PORTAL_FRAME_ANCESTORS`` is what the shell and the fragments (refusals
    included) send as ``frame-ancestors``."""
    client, store = await _portal_app(
        tmp_path, portal_frame_ancestors="'self' https://dash.example.com"
    )
    async with client:
        shell = await client.get("/portal/app_1", headers={"authorization": ""})
        refusal = await client.get("/portal/app_1/endpoints", headers={"authorization": ""})
    await store.close()
    for answer in (shell, refusal):
        policy = answer.headers["content-security-policy"]
        assert policy.endswith("frame-ancestors 'self' https://dash.example.com")


async def test_the_api_s_address_allowlist_refuses_the_fragments_too(tmp_path: Path) -> None:
    """The pages' gate is the API's: a client outside ``HOOKLINE_API_ALLOW_NETWORKS`` gets
    the API's 403 on a fragment, whatever its token."""
    client, store = await _portal_app(tmp_path, api_allow_networks="10.0.0.0/8")
    async with client:
        fragment = await client.get("/portal/app_1/endpoints")
        api = await client.get("/api/v1/app")
    await store.close()
    assert api.status_code == 403 and fragment.status_code == 403
    assert "HOOKLINE_API_ALLOW_NETWORKS" in fragment.text


async def test_signing_out_revokes_the_token_and_tells_the_tab_to_forget_it(api: Api) -> None:
    """The portal's Sign out is Svix's logout: the token is refused afterwards, by the
    pages and by the API, and the answer triggers the tab's ``hookline:signed-out``."""
    token = await _portal_token(api)
    async with _page(api, token) as web:
        r = await web.post(f"/portal/{APP}/sign-out")
        assert r.status_code == 200 and "Signed out" in r.text
        assert r.headers["hx-trigger"] == "hookline:signed-out"
        assert (await web.get(f"/portal/{APP}/endpoints")).status_code == 401
        assert (await web.get(f"/api/v1/app/{APP}")).status_code == 401


async def _message_with_a_failed_attempt(api: Api) -> tuple[str, str]:
    """A message to one endpoint whose first attempt failed with a 500; their ids."""
    made = await api.client.post(
        f"/api/v1/app/{APP}/endpoint", json={"url": "https://e.com/receiver"}
    )
    sent = await api.client.post(
        f"/api/v1/app/{APP}/msg",
        json={"eventType": "user.created", "payload": {"name": "<b>Ada</b>"}},
    )
    assert sent.status_code == 202, sent.text
    await fail_next_delivery(api.store)
    return str(sent.json()["id"]), str(made.json()["id"])


async def test_a_message_shows_its_payload_attempts_and_destinations(api: Api) -> None:
    """The message screen: the payload (indented, escaped), each attempt with its status
    code, and each endpoint it went to with its delivery's state."""
    token = await _portal_token(api)
    msg_id, _ = await _message_with_a_failed_attempt(api)
    async with _page(api, token) as web:
        r = await web.get(f"/portal/{APP}/messages/{msg_id}")
    assert r.status_code == 200, r.text
    assert "&lt;b&gt;Ada&lt;/b&gt;" in r.text and "<b>Ada" not in r.text
    assert '"name": ' in r.text.replace("&#34;", '"')
    assert ">500<" in r.text and "https://e.com/receiver" in r.text and "Failed" in r.text


async def test_resend_queues_an_attempt_and_needs_create_attempts(api: Api) -> None:
    """Resend is offered and works with ``CreateAttempts``; a read-only token sees no
    button and its direct request is a 403 that queues nothing."""
    reader = await _portal_token(api, readOnly=True)
    full = await _portal_token(api)
    msg_id, endpoint_id = await _message_with_a_failed_attempt(api)
    path = f"/portal/{APP}/messages/{msg_id}/resend/{endpoint_id}"
    async with _page(api, reader) as web:
        shown = await web.get(f"/portal/{APP}/messages/{msg_id}")
        assert shown.status_code == 200 and ">Resend<" not in shown.text
        assert (await web.post(path)).status_code == 403
    assert api.published == []
    async with _page(api, full) as web:
        shown = await web.get(f"/portal/{APP}/messages/{msg_id}")
        assert ">Resend<" in shown.text
        resent = await web.post(path)
    assert resent.status_code == 200 and "Resend queued" in resent.text
    assert api.published != []


async def test_an_endpoint_shows_its_health_and_when_it_will_be_disabled(api: Api) -> None:
    """The endpoint's screen counts its attempts over 24 hours and 7 days from the rollups,
    and a failing endpoint says when auto-disable will take it unless a delivery succeeds."""
    token = await _portal_token(api)
    _, endpoint_id = await _message_with_a_failed_attempt(api)
    since = datetime(2026, 1, 2, 3, 4, tzinfo=UTC)
    await api.store.mark_endpoints_failing([endpoint_id], since)
    async with _page(api, token) as web:
        r = await web.get(f"/portal/{APP}/endpoints/{endpoint_id}")
    assert r.status_code == 200, r.text
    rows = re.findall(r'<td data-label="Attempts">(\d+)</td>', r.text)
    assert rows == ["1", "1"] and r.text.count("0.0 %") == 2
    assert "will be disabled at <strong>2026-01-07 03:04 UTC</strong>" in r.text


async def test_send_example_publishes_the_event_type_s_example_to_one_endpoint(
    api: Api,
) -> None:
    """With ``CreateAttempts`` the endpoint screen sends an event type's schema example to
    that endpoint (a message appears); a read-only token sees no form and gets a 403."""
    full = await _portal_token(api)
    reader = await _portal_token(api, readOnly=True)
    schema = {"type": "object", "examples": [{"order": 7}]}
    created = await api.client.post(
        "/api/v1/event-type",
        json={"name": "order.paid", "description": "x", "schemas": {"1": schema}},
    )
    assert created.status_code == 201, created.text
    made = await api.client.post(f"/api/v1/app/{APP}/endpoint", json={"url": "https://e.com/x"})
    key = made.json()["id"]
    path = f"/portal/{APP}/endpoints/{key}/send-example"
    async with _page(api, reader) as web:
        assert "Send example" not in (await web.get(f"/portal/{APP}/endpoints/{key}")).text
        assert (await web.post(path, data={"eventType": "order.paid"})).status_code == 403
    async with _page(api, full) as web:
        r = await web.post(path, data={"eventType": "order.paid"})
        unknown = await web.post(path, data={"eventType": "no.such"})
    assert r.status_code == 200 and "Example order.paid sent as msg_" in r.text
    assert unknown.status_code == 422 and "Unknown event type" in unknown.text
    (sent,) = (await api.client.get(f"/api/v1/app/{APP}/msg")).json()["data"]
    assert sent["eventType"] == "order.paid" and sent["payload"] == {"order": 7}


async def test_an_edit_past_the_header_cap_changes_nothing(api: Api) -> None:
    """Headers are checked with the endpoint's withheld ones before the first write: a
    form whose headers would pass the cap (50) is refused and the URL stays as it was."""
    token = await _portal_token(api)
    made = await api.client.post(
        f"/api/v1/app/{APP}/endpoint",
        json={"url": "https://e.com/a", "headers": {"Authorization": "Bearer secret"}},
    )
    key = made.json()["id"]
    lines = "\n".join(f"X-H{i}: v" for i in range(50))
    async with _page(api, token) as web:
        r = await web.post(
            f"/portal/{APP}/endpoints/{key}", data={"url": "https://e.com/b", "headers": lines}
        )
    assert r.status_code == 422 and 'id="headers-error"' in r.text
    stored = (await api.client.get(f"/api/v1/app/{APP}/endpoint/{key}")).json()
    assert stored["url"] == "https://e.com/a"
    headers = (await api.client.get(f"/api/v1/app/{APP}/endpoint/{key}/headers")).json()
    assert headers["sensitive"] == ["Authorization"] and headers["headers"] == {}


async def test_the_message_log_keeps_a_period_and_finds_a_message_by_id_or_event_id(
    api: Api,
) -> None:
    """A date preset keeps the messages created within it; searching an id or an eventId
    opens that message; an unknown one says so above the list; an unknown preset is a 422
    naming the choices."""
    token = await _portal_token(api)
    app_id = await _app_id(api)
    old = dataclasses.replace(
        make_message(make_app(), event_id="evt-old"),
        app_id=app_id,
        timestamp=datetime.now(UTC) - timedelta(days=3),
    )
    await api.store.publish([old], datetime.now(UTC))
    r = await api.client.post(
        f"/api/v1/app/{APP}/msg", json={"eventType": "a.b", "eventId": "evt-new", "payload": {}}
    )
    assert r.status_code == 202, r.text
    new_id = r.json()["id"]
    async with _page(api, token) as web:
        recent = await web.get(f"/portal/{APP}/messages", params={"since": "24h"})
        week = await web.get(f"/portal/{APP}/messages", params={"since": "7d"})
        by_event_id = await web.get(f"/portal/{APP}/messages", params={"id": "evt-new"})
        by_id = await web.get(f"/portal/{APP}/messages", params={"id": old.id})
        unknown = await web.get(f"/portal/{APP}/messages", params={"id": "evt-nowhere"})
        refused = await web.get(f"/portal/{APP}/messages", params={"since": "1y"})
    assert "evt-new" in recent.text and "evt-old" not in recent.text
    assert "evt-new" in week.text and "evt-old" in week.text
    assert new_id in by_event_id.text and "Payload" in by_event_id.text
    assert old.id in by_id.text and "evt-new" not in by_id.text
    assert "No message with the id or event id" in unknown.text and "evt-new" in unknown.text
    assert refused.status_code == 422 and "1h, 24h, 7d, 30d" in refused.text


async def test_the_form_sets_the_retry_schedule_and_ordering_and_keeps_the_rest_of_the_policy(
    api: Api,
) -> None:
    """The edit form shows the endpoint's schedule and ordering; saving sets them in its
    ``policy`` as the API shows it, keeping what the form does not show (the breaker, the
    maximum age); ``none`` means no retries and an empty schedule inherits the service's."""
    token = await _portal_token(api)
    policy = {
        "retry": {"schedule": [1, 2.5], "maxAgeSeconds": 3600},
        "breaker": {"threshold": 7},
    }
    made = await api.client.post(
        f"/api/v1/app/{APP}/endpoint", json={"url": "https://example.com/p", "policy": policy}
    )
    key = made.json()["id"]
    async with _page(api, token) as web:
        form = await web.get(f"/portal/{APP}/endpoints/{key}/edit")
        assert 'value="1, 2.5"' in form.text
        saved = await web.post(
            f"/portal/{APP}/endpoints/{key}",
            data={"url": "https://example.com/p", "retrySchedule": "5, 300", "ordering": "hold"},
        )
        assert saved.status_code == 200, saved.text
        stored = (await api.client.get(f"/api/v1/app/{APP}/endpoint/{key}")).json()["policy"]
        assert stored == {
            "retry": {"schedule": [5.0, 300.0], "maxAgeSeconds": 3600.0},
            "breaker": {"threshold": 7},
            "ordering": {"onExhausted": "hold"},
        }
        created = await web.post(
            f"/portal/{APP}/endpoints",
            data={"url": "https://example.com/q", "retrySchedule": "none"},
        )
        assert created.status_code == 201, created.text
        inherited = await web.post(
            f"/portal/{APP}/endpoints", data={"url": "https://example.com/r"}
        )
        assert inherited.status_code == 201, inherited.text
    by_url = {
        e["url"]: e["policy"]
        for e in (await api.client.get(f"/api/v1/app/{APP}/endpoint")).json()["data"]
    }
    assert by_url["https://example.com/q"] == {"retry": {"schedule": []}}
    assert by_url["https://example.com/r"] == {}


async def test_a_schedule_that_is_not_seconds_is_refused_beside_its_field_changing_nothing(
    api: Api,
) -> None:
    """A word in the schedule, or more delays than the domain allows, is a 422 with the
    message beside the retry schedule; the endpoint keeps its URL and policy."""
    token = await _portal_token(api)
    made = await api.client.post(f"/api/v1/app/{APP}/endpoint", json={"url": "https://e.com/s"})
    key = made.json()["id"]
    async with _page(api, token) as web:
        for schedule, reason in (
            ("5, soon", "is not a number of seconds"),
            (",".join(["5"] * 60), "at most"),
        ):
            refused = await web.post(
                f"/portal/{APP}/endpoints/{key}",
                data={"url": "https://e.com/changed", "retrySchedule": schedule},
            )
            assert refused.status_code == 422
            assert 'id="retrySchedule-error"' in refused.text and reason in refused.text
        odd = await web.post(
            f"/portal/{APP}/endpoints/{key}", data={"url": "https://e.com/s", "ordering": "random"}
        )
        assert odd.status_code == 422 and 'id="ordering-error"' in odd.text
    stored = (await api.client.get(f"/api/v1/app/{APP}/endpoint/{key}")).json()
    assert stored["url"] == "https://e.com/s" and stored["policy"] == {}


async def test_recover_shows_the_count_first_then_starts_and_reports_progress(api: Api) -> None:
    """*Count* answers how many failed messages a recover would send, starting nothing;
    confirming starts the recover from the time counted for, whose fragment polls while it
    runs and shows what it sent once a runner walked it; *Stop* cancels a running one."""
    token = await _portal_token(api)
    made = await api.client.post(f"/api/v1/app/{APP}/endpoint", json={"url": "https://e.com/r"})
    key = made.json()["id"]
    for index in range(2):
        r = await api.client.post(
            f"/api/v1/app/{APP}/msg", json={"eventType": "a.b", "payload": {"i": index}}
        )
        assert r.status_code == 202
        await fail_next_delivery(api.store)
    base = f"/portal/{APP}/endpoints/{key}"
    async with _page(api, token) as web:
        detail = await web.get(base)
        assert "Send again" in detail.text
        counted = await web.post(f"{base}/recovery/count", data={"kind": "recover", "since": "1h"})
        assert counted.status_code == 200, counted.text
        assert "<strong>2</strong> messages" in counted.text and "Send 2 again" in counted.text
        assert (await api.client.get("/api/v1/background-task")).json()["data"] == []
        since = re.search(r'name="sinceTime" value="([^"]+)"', counted.text)
        assert since is not None
        started = await web.post(
            f"{base}/recovery", data={"kind": "recover", "sinceTime": since.group(1)}
        )
        assert started.status_code == 202, started.text
        assert 'hx-trigger="every 1s"' in started.text
        (task,) = (await api.client.get("/api/v1/background-task")).json()["data"]
        assert task["task"] == "endpoint.recover"
        assert await TaskRunner(Operations(api.store)).run_one()
        done = await web.get(f"/portal/{APP}/tasks/{task['id']}")
        assert "finished" in done.text and "2 sent again" in done.text
        assert 'hx-trigger="every 1s"' not in done.text
        second = await web.post(f"{base}/recovery", data={"kind": "replay", "since": "24h"})
        second_id = re.search(r"<code>(qtask_[^<]+)</code>", second.text)
        assert second_id is not None
        stopped = await web.post(f"/portal/{APP}/tasks/{second_id.group(1)}/cancel")
        assert stopped.status_code == 200 and "canceled" in stopped.text


async def test_a_recovery_with_an_unknown_kind_or_period_is_refused_and_starts_nothing(
    api: Api,
) -> None:
    """A kind other than recover or replay, or a preset not offered, is a 422; a read-only
    token sees no panel and is refused (403) by the counting and starting routes."""
    token = await _portal_token(api)
    made = await api.client.post(f"/api/v1/app/{APP}/endpoint", json={"url": "https://e.com/x"})
    base = f"/portal/{APP}/endpoints/{made.json()['id']}"
    async with _page(api, token) as web:
        odd_kind = await web.post(f"{base}/recovery/count", data={"kind": "purge", "since": "1h"})
        odd_period = await web.post(f"{base}/recovery", data={"kind": "recover", "since": "1y"})
    assert odd_kind.status_code == 422 and odd_period.status_code == 422
    reader = await _portal_token(api, readOnly=True)
    async with _page(api, reader) as web:
        assert "Send again" not in (await web.get(base)).text
        for path in (f"{base}/recovery/count", f"{base}/recovery"):
            refused = await web.post(path, data={"kind": "recover", "since": "1h"})
            assert refused.status_code == 403
    assert (await api.client.get("/api/v1/background-task")).json()["data"] == []
