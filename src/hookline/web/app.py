"""The pages' Starlette application and its routes."""

from __future__ import annotations

import asyncio
from importlib import resources

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

import hookline
from hookline.config import Settings
from hookline.operations.context import Operations
from hookline.web.console import PREFIX as CONSOLE_PREFIX
from hookline.web.console import console_routes
from hookline.web.pages import PageConfig
from hookline.web.portal import Portal
from hookline.web.session import Gate

PORTAL_PREFIX = "/portal"
"""Where ``app-portal-access`` links point: ``{base}/portal/{app_id}#key={token}``."""
STATIC_PREFIX = "/static"
PREFIXES = (PORTAL_PREFIX, STATIC_PREFIX, CONSOLE_PREFIX)
"""Paths under these belong to the pages; the JSON API never answers them."""
ROOTS = (CONSOLE_PREFIX,)
"""Paths the pages answer themselves, not only below them: the console's overview."""


def create_web_app(
    ops: Operations, settings: Settings, gate: Gate, stopping: asyncio.Event | None = None
) -> Starlette:
    """The pages over the operations; ``gate`` is the API's token check
    (``HooklineApp.authenticate_page``), so a page is refused exactly when the API would be;
    ``stopping`` is set when the process begins to stop (the live tail's streams end)."""
    templates = Environment(
        loader=PackageLoader("hookline.web", "templates"),
        autoescape=select_autoescape(default=True),
    )
    templates.globals["version"] = hookline.__version__
    config = PageConfig(frame_ancestors=settings.portal_frame_ancestors, dev=settings.dev)
    portal = Portal(ops, gate, templates, config)
    static = StaticFiles(directory=str(resources.files("hookline.web") / "static"))
    return Starlette(
        routes=[
            *portal.routes(PORTAL_PREFIX),
            *console_routes(ops, gate, templates, config, stopping),
            Mount(STATIC_PREFIX, app=static, name="static"),
        ]
    )
