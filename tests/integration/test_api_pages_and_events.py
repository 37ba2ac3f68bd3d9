"""The pages mounted under the API, and what the API and its operations tell the
instrumentation seam."""

from __future__ import annotations

from urllib.parse import urlsplit

from hookline.instrumentation import EndpointEnabled, MessageAccepted, RequestServed
from tests.integration.conftest import Api


async def test_a_portal_link_opens_a_page_served_by_the_mounted_pages(api: Api) -> None:
    """The URL ``app-portal-access`` hands out answers HTML, not the JSON API's 404."""
    r = await api.client.post(
        "/api/v1/auth/app-portal-access/acme", json={"application": {"name": "Acme"}}
    )
    assert r.status_code == 200, r.text
    link = urlsplit(r.json()["url"])
    assert link.path.startswith("/portal/app_") and link.fragment.startswith("key=")
    page = await api.client.get(link.path)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    css = await api.client.get("/static/hookline.css")
    assert css.status_code == 200


async def test_paths_beside_the_page_prefixes_stay_on_the_json_api(api: Api) -> None:
    """``/portalx`` and ``/portal`` are not the pages': they get the API's JSON 404."""
    for path in ("/portalx/a", "/portal"):
        r = await api.client.get(path)
        assert r.status_code == 404 and r.json()["code"] == "not_found"


async def test_each_request_is_heard_under_its_route_template_never_its_path(api: Api) -> None:
    """RequestServed carries the route's template (a bounded label) and the status."""
    await api.client.post("/api/v1/app", json={"name": "Acme", "uid": "acme"})
    await api.client.get("/api/v1/app/acme")
    await api.client.get("/nope")
    served = [(e.method, e.route, e.status) for e in api.heard.seen if isinstance(e, RequestServed)]
    assert served == [
        ("POST", "/api/v1/app", 201),
        ("GET", "/api/v1/app/{app_id}", 200),
        ("GET", "(no route)", 404),
    ]


async def test_an_accepted_message_is_heard_with_its_fan_out(api: Api) -> None:
    """MessageAccepted follows the commit and counts the deliveries it created."""
    await api.client.post("/api/v1/app", json={"name": "Acme", "uid": "acme"})
    for n in range(2):
        await api.client.post("/api/v1/app/acme/endpoint", json={"url": f"https://example.com/{n}"})
    r = await api.client.post(
        "/api/v1/app/acme/msg", json={"eventType": "a.b", "payload": {"x": 1}}
    )
    assert r.status_code == 202, r.text
    (accepted,) = [e for e in api.heard.seen if isinstance(e, MessageAccepted)]
    assert (accepted.msg_id, accepted.deliveries, accepted.payload_bytes) == (r.json()["id"], 2, 7)


async def test_enabling_a_disabled_endpoint_is_heard_once(api: Api) -> None:
    """PATCH disabled=false on a disabled endpoint emits EndpointEnabled; other changes don't."""
    await api.client.post("/api/v1/app", json={"name": "Acme", "uid": "acme"})
    await api.client.post(
        "/api/v1/app/acme/endpoint",
        json={"url": "https://example.com/h", "uid": "ep", "disabled": True},
    )
    await api.client.patch("/api/v1/app/acme/endpoint/ep", json={"description": "still off"})
    await api.client.patch("/api/v1/app/acme/endpoint/ep", json={"disabled": False})
    await api.client.patch("/api/v1/app/acme/endpoint/ep", json={"description": "on"})
    enabled = [e for e in api.heard.seen if isinstance(e, EndpointEnabled)]
    assert len(enabled) == 1 and enabled[0].endpoint_id.startswith("ep_")
