"""The operator console through the real app (``create_app``): signing in and out, the
session cookie, CSRF refusals that change nothing, expired and revoked sessions, and the
management forms' validation."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from hookline.api.app import Services
from hookline.api.routes import create_app
from hookline.config import load_settings
from hookline.operations.console_sessions import SESSION_LENGTH
from hookline.operations.context import Operations
from hookline.server import ensure_admin_token
from hookline.storage.sqlite import SqliteStore
from hookline.web.console import COOKIE
from tests.integration.conftest import ADMIN_TOKEN, Api

CSRF = re.compile(r'name="csrf" value="([0-9a-f]+)"')


def _browser(api: Api) -> httpx.AsyncClient:
    """A browser: no bearer header, cookies kept, redirects not followed."""
    return httpx.AsyncClient(transport=api.client._transport, base_url="http://hookline")


async def _sign_in(web: httpx.AsyncClient, token: str = ADMIN_TOKEN) -> httpx.Response:
    return await web.post("/dashboard/sign-in", data={"token": token})


async def _app_names(api: Api) -> list[str]:
    r = await api.client.get("/api/v1/app")
    return [app["name"] for app in r.json()["data"]]


async def test_signing_in_sets_a_strict_httponly_session_cookie_and_shows_the_overview(
    api: Api,
) -> None:
    """The admin token is posted, never put in a URL; the answer redirects to the overview
    with a cookie that is HttpOnly, SameSite=Strict and scoped to /dashboard, holding a
    session token, not the admin token."""
    async with _browser(api) as web:
        r = await _sign_in(web)
        assert r.status_code == 303 and r.headers["location"] == "/dashboard"
        cookie = r.headers["set-cookie"]
        assert cookie.startswith(f"{COOKIE}=")
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/dashboard" in cookie
        assert "Secure" not in cookie  # plain http here; https sets it
        assert ADMIN_TOKEN not in cookie and ADMIN_TOKEN not in r.headers["location"]
        page = await web.get("/dashboard")
        assert page.status_code == 200
        for figure in ("Attempts per second", "Success ratio", "Due backlog", "Hurting now"):
            assert figure in page.text
        assert "frame-ancestors" in page.headers["content-security-policy"]


async def test_without_a_session_pages_redirect_to_sign_in_and_htmx_gets_a_401(
    api: Api,
) -> None:
    """A full page redirects to the sign-in form; htmx and the event stream get 401 (with
    ``HX-Redirect``); the sign-in form itself needs no session."""
    async with _browser(api) as web:
        for path in ("/dashboard", "/dashboard/applications", "/dashboard/tail"):
            r = await web.get(path)
            assert r.status_code == 303 and r.headers["location"] == "/dashboard/sign-in", path
        r = await web.get("/dashboard/applications", headers={"hx-request": "true"})
        assert r.status_code == 401 and r.headers["hx-redirect"] == "/dashboard/sign-in"
        stream = await web.get("/dashboard/tail/stream", headers={"accept": "text/event-stream"})
        assert stream.status_code == 401
        form = await web.get("/dashboard/sign-in")
        assert form.status_code == 200 and 'name="token"' in form.text


async def test_an_application_token_or_an_unknown_one_cannot_sign_in_and_no_cookie_is_set(
    api: Api,
) -> None:
    """The console is the operator's: an application's token is refused (403), an unknown
    token 401, an empty form 422; none sets a cookie or creates a token."""
    created = await api.client.post("/api/v1/app", json={"name": "Acme", "uid": "acme"})
    assert created.status_code == 201
    r = await api.client.post("/api/v1/auth/app-portal-access/acme", json={})
    scoped = r.json()["token"]
    before = len((await api.client.get("/api/v1/token")).json()["data"])
    async with _browser(api) as web:
        for token, status in ((scoped, 403), ("hl_admin_not-a-token", 401), ("", 422)):
            r = await _sign_in(web, token)
            assert r.status_code == status, (token, r.text)
            assert "set-cookie" not in r.headers
            if token:
                assert token not in r.text
    assert len((await api.client.get("/api/v1/token")).json()["data"]) == before


async def test_a_change_without_the_csrf_token_is_refused_and_changes_nothing(
    api: Api, console: tuple[httpx.AsyncClient, str]
) -> None:
    """No token, a wrong one, or another origin: 403 and no application; the form's
    hidden field or htmx's ``X-CSRF-Token`` header is accepted."""
    web, csrf = console
    for data, headers in (
        ({"name": "Nope"}, {}),
        ({"name": "Nope", "csrf": "0" * 64}, {}),
        ({"name": "Nope", "csrf": csrf}, {"origin": "https://evil.example"}),
    ):
        r = await web.post("/dashboard/applications", data=data, headers=headers)
        assert r.status_code == 403, r.text
    assert "Nope" not in await _app_names(api)
    r = await web.post("/dashboard/applications", data={"name": "Form", "csrf": csrf})
    assert r.status_code == 303
    r = await web.post(
        "/dashboard/applications", data={"name": "Htmx"}, headers={"x-csrf-token": csrf}
    )
    assert r.status_code == 303
    assert {"Form", "Htmx"} <= set(await _app_names(api))


async def test_signing_out_needs_the_csrf_token_and_then_ends_the_session(
    api: Api, console: tuple[httpx.AsyncClient, str]
) -> None:
    """Sign-out without the CSRF token is refused and the session lives on; with it the
    session's token is deleted, so even a kept copy of the cookie is refused."""
    web, csrf = console
    kept = web.cookies[COOKIE]
    assert (await web.post("/dashboard/sign-out", data={})).status_code == 403
    assert (await web.get("/dashboard")).status_code == 200
    r = await web.post("/dashboard/sign-out", data={"csrf": csrf})
    assert r.status_code == 303 and r.headers["location"].startswith("/dashboard/sign-in")
    async with _browser(api) as other:
        other.cookies.set(COOKIE, kept, domain="hookline", path="/dashboard")
        assert (await other.get("/dashboard")).status_code == 303


async def test_revoking_the_session_token_signs_the_browser_out(
    api: Api, console: tuple[httpx.AsyncClient, str]
) -> None:
    """A console session is a token: revoking it through the API ends it at the next click."""
    web, _ = console
    tokens = (await api.client.get("/api/v1/token")).json()["data"]
    (session,) = [t for t in tokens if t["name"] == "console session"]
    assert (await api.client.delete(f"/api/v1/token/{session['id']}")).status_code == 204
    r = await web.get("/dashboard/applications")
    assert r.status_code == 303 and r.headers["location"] == "/dashboard/sign-in"


async def test_application_forms_show_the_operations_refusals_inline_and_change_nothing(
    api: Api, console: tuple[httpx.AsyncClient, str]
) -> None:
    """An empty name, a uid taken by another application and a rate limit that is not a
    number are shown beside their fields with 422; nothing is created."""
    web, csrf = console
    await web.post("/dashboard/applications", data={"name": "First", "uid": "taken", "csrf": csrf})
    cases = [
        ({"name": ""}, "name-error"),
        ({"name": "Second", "throttleRate": "fast"}, "throttleRate-error"),
    ]
    for data, marker in cases:
        r = await web.post("/dashboard/applications", data={**data, "csrf": csrf})
        assert r.status_code == 422, r.text
        assert marker in r.text
    r = await web.post(
        "/dashboard/applications", data={"name": "Dup", "uid": "taken", "csrf": csrf}
    )
    assert r.status_code == 422 and 'role="alert"' in r.text
    assert await _app_names(api) == ["First"]


async def test_an_application_and_its_endpoint_are_created_edited_and_deleted(
    api: Api, console: tuple[httpx.AsyncClient, str]
) -> None:
    """The console's application flow through the operations: create, add an endpoint
    (a bad URL is refused inline), rename, then delete after a confirmation page."""
    web, csrf = console
    r = await web.post("/dashboard/applications", data={"name": "Shop", "csrf": csrf})
    app_path = r.headers["location"].split("?")[0]
    bad = await web.post(f"{app_path}/endpoints", data={"url": "not a url", "csrf": csrf})
    assert bad.status_code == 422 and "url-error" in bad.text
    ok = await web.post(
        f"{app_path}/endpoints", data={"url": "https://example.com/hook", "csrf": csrf}
    )
    assert ok.status_code == 303
    page = await web.get(app_path)
    assert "https://example.com/hook" in page.text
    renamed = await web.post(app_path, data={"name": "Shop 2", "uid": "", "csrf": csrf})
    assert renamed.status_code == 303
    assert await _app_names(api) == ["Shop 2"]
    confirm = await web.get(f"{app_path}/delete")
    assert confirm.status_code == 200 and "cannot be undone" in confirm.text
    gone = await web.post(f"{app_path}/delete", data={"csrf": csrf})
    assert gone.status_code == 303
    assert await _app_names(api) == []
    assert (await web.get(app_path)).status_code == 404


async def test_event_type_schemas_are_validated_on_the_server(
    api: Api, console: tuple[httpx.AsyncClient, str]
) -> None:
    """Schemas that are not JSON, or not an object of versions, are refused beside the
    editor; valid ones are stored and shown again for editing; archiving hides the type
    from the API's list."""
    web, csrf = console
    for schemas in ("{not json", '["a"]'):
        r = await web.post(
            "/dashboard/event-types",
            data={"name": "invoice.paid", "description": "Paid", "schemas": schemas, "csrf": csrf},
        )
        assert r.status_code == 422 and "schemas-error" in r.text
    assert (await api.client.get("/api/v1/event-type/invoice.paid")).status_code == 404
    schema = '{"1": {"type": "object", "properties": {"id": {"type": "string"}}}}'
    r = await web.post(
        "/dashboard/event-types",
        data={"name": "invoice.paid", "description": "Paid", "schemas": schema, "csrf": csrf},
    )
    assert r.status_code == 303
    stored = (await api.client.get("/api/v1/event-type/invoice.paid")).json()
    assert stored["schemas"]["1"]["type"] == "object"
    edit = await web.get("/dashboard/event-types/invoice.paid")
    assert "&#34;type&#34;: &#34;object&#34;" in edit.text or "&quot;type&quot;" in edit.text
    r = await web.post("/dashboard/event-types/invoice.paid/archive", data={"csrf": csrf})
    assert r.status_code == 303
    listed = (await api.client.get("/api/v1/event-type")).json()["data"]
    assert listed == []


async def test_a_new_token_is_shown_once_and_can_be_revoked(
    api: Api, console: tuple[httpx.AsyncClient, str]
) -> None:
    """Creating a token shows its plaintext on that answer only; the list never does; a
    bad expiry is refused inline; revoking it makes the API refuse it."""
    web, csrf = console
    bad = await web.post(
        "/dashboard/tokens", data={"name": "ci", "expiresInDays": "-1", "csrf": csrf}
    )
    assert bad.status_code == 422 and "expiresInDays-error" in bad.text
    r = await web.post(
        "/dashboard/tokens", data={"name": "ci", "expiresInDays": "30", "csrf": csrf}
    )
    assert r.status_code == 201
    found = re.search(r'id="issued-token"[^>]*value="(hl_admin_[^"]+)"', r.text)
    assert found is not None
    token = found.group(1)
    listed = await web.get("/dashboard/tokens")
    assert token not in listed.text
    async with api.as_token(token) as as_ci:
        assert (await as_ci.get("/api/v1/app")).status_code == 200
        ci_id = next(
            t["id"]
            for t in (await api.client.get("/api/v1/token")).json()["data"]
            if t["name"] == "ci"
        )
        r = await web.post(f"/dashboard/tokens/{ci_id}/revoke", data={"csrf": csrf})
        assert r.status_code == 303
        assert (await as_ci.get("/api/v1/app")).status_code == 401


async def test_operational_webhook_endpoints_are_listed_created_and_deleted(
    api: Api, console: tuple[httpx.AsyncClient, str]
) -> None:
    """Through the operations of ``/api/v1/operational-webhook``: a bad URL is refused
    inline; a created endpoint is listed by the API; delete follows a confirmation."""
    web, csrf = console
    bad = await web.post("/dashboard/operational-webhooks", data={"url": "nope", "csrf": csrf})
    assert bad.status_code == 422 and "url-error" in bad.text
    r = await web.post(
        "/dashboard/operational-webhooks", data={"url": "https://ops.example.com/", "csrf": csrf}
    )
    assert r.status_code == 303
    listed = (await api.client.get("/api/v1/operational-webhook/endpoint")).json()["data"]
    assert [e["url"] for e in listed] == ["https://ops.example.com/"]
    page = await web.get("/dashboard/operational-webhooks")
    assert "https://ops.example.com/" in page.text
    r = await web.post(
        f"/dashboard/operational-webhooks/{listed[0]['id']}/delete", data={"csrf": csrf}
    )
    assert r.status_code == 303
    assert (await api.client.get("/api/v1/operational-webhook/endpoint")).json()["data"] == []


async def test_the_tail_page_lists_its_filters_and_a_bad_outcome_filter_is_refused(
    api: Api, console: tuple[httpx.AsyncClient, str]
) -> None:
    """The tail page names its stream; a stream with an unknown outcome is refused before it
    starts; another tenant's or an unknown application is a 404."""
    web, _ = console
    page = await web.get("/dashboard/tail")
    assert page.status_code == 200 and "/dashboard/tail/stream" in page.text
    r = await web.get("/dashboard/tail/stream", params={"outcome": "maybe"})
    assert r.status_code == 422
    r = await web.get("/dashboard/tail/stream", params={"app": "app_missing"})
    assert r.status_code == 404


async def test_an_expired_session_redirects_to_sign_in(
    api: Api, console: tuple[httpx.AsyncClient, str]
) -> None:
    """Past its 12 hours the session's token has expired: a page redirects to sign-in and
    a change is refused (401), changing nothing."""
    web, csrf = console
    app = api.client._transport.app  # type: ignore[attr-defined]
    ops = app.services.ops
    later = datetime.now(UTC) + SESSION_LENGTH + timedelta(minutes=1)
    ops.clock = lambda: later
    r = await web.get("/dashboard")
    assert r.status_code == 303 and r.headers["location"] == "/dashboard/sign-in"
    r = await web.post("/dashboard/applications", data={"name": "Late", "csrf": csrf})
    assert r.status_code == 401
    assert "Late" not in await _app_names(api)


async def test_failed_sign_ins_spend_the_addresss_authentication_budget(tmp_path: Path) -> None:
    """Sign-in goes through the API's gate: past the failed-authentication budget the form
    answers 429 with Retry-After, even to the right token, and so does the API."""
    store = SqliteStore(str(tmp_path / "limits.db"))
    await store.open()
    try:
        settings = load_settings(
            {"admin_token": ADMIN_TOKEN, "api_auth_failure_rate": "1", "api_burst_seconds": "3"},
            environ={},
        )
        await ensure_admin_token(store, settings)
        app = create_app(Services(ops=Operations(store), settings=settings))
        transport = httpx.ASGITransport(app=app, client=("198.51.100.7", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://hookline") as web:
            statuses = [(await _sign_in(web, f"hl_admin_guess-{n}")).status_code for n in range(3)]
            assert statuses == [401, 401, 401]
            refused = await _sign_in(web)
            assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
            assert "set-cookie" not in refused.headers
            api_call = await web.get(
                "/api/v1/app", headers={"authorization": f"Bearer {ADMIN_TOKEN}"}
            )
            assert api_call.status_code == 429
    finally:
        await store.close()


async def test_the_console_root_is_the_pages_but_paths_beside_it_stay_on_the_json_api(
    api: Api,
) -> None:
    """``/dashboard`` itself is the console's overview (a redirect to sign in here), while
    ``/dashboardx`` gets the API's JSON 404."""
    async with _browser(api) as web:
        assert (await web.get("/dashboard")).status_code == 303
        r = await web.get("/dashboardx")
        assert r.status_code == 404 and r.json()["code"] == "not_found"


async def test_signing_in_again_replaces_the_browsers_session(
    api: Api, console: tuple[httpx.AsyncClient, str]
) -> None:
    """A second sign-in in the same browser ends the session its cookie held: one console
    session is listed, and the old cookie no longer opens a page."""
    web, _ = console
    old = web.cookies[COOKIE]
    assert (await _sign_in(web)).status_code == 303
    tokens = (await api.client.get("/api/v1/token")).json()["data"]
    assert [t["name"] for t in tokens].count("console session") == 1
    async with _browser(api) as other:
        other.cookies.set(COOKIE, old, domain="hookline", path="/dashboard")
        assert (await other.get("/dashboard")).status_code == 303
    assert (await web.get("/dashboard")).status_code == 200


async def test_the_overviews_htmx_refresh_gets_the_page_or_a_401_once_signed_out(
    api: Api, console: tuple[httpx.AsyncClient, str]
) -> None:
    """The overview's periodic refresh (an htmx GET) gets the figures; after sign-out it
    gets 401 with ``HX-Redirect`` to the sign-in page instead of a page to swap in."""
    web, csrf = console
    r = await web.get("/dashboard", headers={"hx-request": "true"})
    assert r.status_code == 200 and 'id="overview"' in r.text and "every 30s" in r.text
    await web.post("/dashboard/sign-out", data={"csrf": csrf})
    r = await web.get("/dashboard", headers={"hx-request": "true"})
    assert r.status_code == 401 and r.headers["hx-redirect"] == "/dashboard/sign-in"


async def test_over_https_the_session_cookie_is_secure(api: Api) -> None:
    """A sign-in that came over https (directly or through a trusted proxy) sets a cookie
    the browser sends over https only."""
    async with httpx.AsyncClient(
        transport=api.client._transport, base_url="https://hookline"
    ) as web:
        r = await _sign_in(web)
        assert r.status_code == 303
        assert "Secure" in r.headers["set-cookie"]
