"""The pages' Starlette application, on its own (the mount under the API is tested with it)."""

from __future__ import annotations

import httpx

from hookline.web import create_web_app


def client() -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_web_app()), base_url="http://h"
    )


async def test_a_portal_link_opens_an_html_page_naming_its_application() -> None:
    """``/portal/{app}`` answers HTML that names the application, escaped."""
    async with client() as web:
        r = await web.get("/portal/app_<b>")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert "app_&lt;b&gt;" in r.text and "app_<b>" not in r.text


async def test_static_files_ship_inside_the_package() -> None:
    """The stylesheet a page links to is served from the installed package."""
    async with client() as web:
        r = await web.get("/static/hookline.css")
    assert r.status_code == 200 and "color-scheme" in r.text
