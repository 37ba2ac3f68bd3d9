"""An application's portal branding defaults: kept by the store on every backend, set by an
operator through the API (held to the link's grammar), and applied by the portal's shell
under the link's own parameters."""

from __future__ import annotations

import httpx

from hookline.storage.base import Store
from tests.conftest import make_app, utcnow
from tests.integration.conftest import Api


async def test_the_store_keeps_replaces_and_forgets_an_applications_branding(
    store: Store,
) -> None:
    """Set, replaced whole, removed (True once, then False); deleting the application
    removes its branding with it."""
    app, other = make_app(), make_app()
    for made in (app, other):
        await store.create_application(made)
    assert await store.portal_branding(app.id) is None
    await store.set_portal_branding(
        app.id, {"primaryColor": "#ff5500", "darkMode": "auto"}, utcnow()
    )
    await store.set_portal_branding(app.id, {"fontFamily": "Inter"}, utcnow())
    assert await store.portal_branding(app.id) == {"fontFamily": "Inter"}
    assert await store.delete_portal_branding(app.id)
    assert not await store.delete_portal_branding(app.id)
    await store.set_portal_branding(other.id, {"icon": "https://cdn.example/l.png"}, utcnow())
    await store.delete_application(other.id)
    assert await store.portal_branding(other.id) is None


async def test_an_operator_sets_reads_and_removes_the_defaults_through_the_api(api: Api) -> None:
    """PUT stores the parameters (flags as booleans on the wire), GET shows them, DELETE
    removes them (204), and the audit log names the parameters set, not their values."""
    await api.client.post("/api/v1/app", json={"name": "Acme", "uid": "acme"})
    body = {
        "primaryColor": "#1F6FEB",
        "fontFamily": "Inter",
        "darkMode": "auto",
        "hideNavigation": True,
    }
    r = await api.client.put("/api/v1/app/acme/portal-branding", json=body)
    assert r.status_code == 200, r.text
    shown = (await api.client.get("/api/v1/app/acme/portal-branding")).json()
    assert shown == {**body, "primaryColorDark": None, "icon": None, "darkMode": "auto"}
    entries = (
        await api.client.get("/api/v1/audit", params={"action": "portal_branding.set"})
    ).json()["data"]
    assert entries[0]["summary"] == {
        "parameters": ["darkMode", "fontFamily", "hideNavigation", "primaryColor"]
    }
    assert (await api.client.delete("/api/v1/app/acme/portal-branding")).status_code == 204
    cleared = (await api.client.get("/api/v1/app/acme/portal-branding")).json()
    assert all(value is None for value in cleared.values())


async def test_a_default_outside_the_grammar_is_a_422_naming_it_and_nothing_changes(
    api: Api,
) -> None:
    """A colour that is not one, a font with CSS in it, or an http logo is refused with the
    field's name; the defaults set before stay."""
    await api.client.post("/api/v1/app", json={"name": "Acme", "uid": "acme"})
    await api.client.put("/api/v1/app/acme/portal-branding", json={"primaryColor": "#123456"})
    for field, value in (
        ("primaryColor", "red; background: url(x)"),
        ("fontFamily", "Inter; color: red"),
        ("icon", "http://cdn.example/logo.png"),
    ):
        r = await api.client.put("/api/v1/app/acme/portal-branding", json={field: value})
        assert r.status_code == 422, r.text
        assert field in r.text
    kept = (await api.client.get("/api/v1/app/acme/portal-branding")).json()
    assert kept["primaryColor"] == "#123456"


async def test_an_applications_token_can_neither_read_nor_set_the_defaults(api: Api) -> None:
    """Branding is the operator's choice: the application's own token gets 403, and an
    unknown application is a 404."""
    await api.client.post("/api/v1/app", json={"name": "Acme", "uid": "acme"})
    access = await api.client.post("/api/v1/auth/app-portal-access/acme", json={})
    scoped = {"authorization": f"Bearer {access.json()['token']}"}
    refused = await api.client.put(
        "/api/v1/app/acme/portal-branding", json={"primaryColor": "#000"}, headers=scoped
    )
    assert refused.status_code == 403
    assert (
        await api.client.get("/api/v1/app/acme/portal-branding", headers=scoped)
    ).status_code == 403
    assert (await api.client.get("/api/v1/app/nobody/portal-branding")).status_code == 404


async def test_the_portal_starts_from_the_defaults_and_the_links_parameters_win(api: Api) -> None:
    """The shell of an application with defaults shows them; a parameter of the link
    replaces that one default only."""
    app = await api.client.post("/api/v1/app", json={"name": "Acme", "uid": "acme"})
    app_id = app.json()["id"]
    await api.client.put(
        "/api/v1/app/acme/portal-branding",
        json={"primaryColor": "#ff5500", "fontFamily": "Inter", "darkMode": True},
    )
    async with httpx.AsyncClient(transport=api.client._transport, base_url="http://h") as web:
        plain = await web.get(f"/portal/{app_id}")
        linked = await web.get(f"/portal/{app_id}", params={"primaryColor": "#00aa00"})
    assert "--brand-primary: #ff5500;" in plain.text and 'data-theme="dark"' in plain.text
    assert "--brand-primary: #00aa00;" in linked.text
    assert "--brand-font: Inter, system-ui, sans-serif;" in linked.text
