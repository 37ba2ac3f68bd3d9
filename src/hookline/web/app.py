"""The pages' Starlette application and its routes."""

from __future__ import annotations

from importlib import resources

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

import hookline

PORTAL_PREFIX = "/portal"
"""Where ``app-portal-access`` links point: ``{base}/portal/{app_id}#key={token}``."""
STATIC_PREFIX = "/static"
PREFIXES = (PORTAL_PREFIX, STATIC_PREFIX)
"""Paths under these belong to the pages; the JSON API never answers them."""


def create_web_app() -> Starlette:
    templates = Environment(
        loader=PackageLoader("hookline.web", "templates"),
        autoescape=select_autoescape(default=True),
    )

    async def portal(request: Request) -> HTMLResponse:
        """The page an ``app-portal-access`` link opens. The token travels in the URL
        fragment, which browsers never send, so the server sees only the application id."""
        page = templates.get_template("portal.html").render(
            app_id=request.path_params["app_id"], version=hookline.__version__
        )
        return HTMLResponse(page)

    static = StaticFiles(directory=str(resources.files("hookline.web") / "static"))
    return Starlette(
        routes=[
            Route(PORTAL_PREFIX + "/{app_id}", portal),
            Mount(STATIC_PREFIX, app=static, name="static"),
        ]
    )
