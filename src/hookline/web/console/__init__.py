"""The operator console at ``/dashboard``: signed in with an admin token, a session cookie
and a CSRF token on every change (``base``), then the overview (``overview``), the live tail
(``tail``), deliveries and failure groups (``deliveries``), and the management of
applications and endpoints (``applications``), event types (``catalog``), tokens and
operational webhooks (``access``).

Each screen is a full server-rendered page (forms post and redirect), so every one works by
keyboard and without JavaScript but the live tail and the chart, which need it.
"""

from __future__ import annotations

import asyncio

from jinja2 import Environment
from starlette.routing import Route

from hookline.operations.context import Operations
from hookline.web.console.access import Access
from hookline.web.console.applications import Applications
from hookline.web.console.auth import SignIn
from hookline.web.console.base import COOKIE, PREFIX
from hookline.web.console.catalog import Catalog
from hookline.web.console.deliveries import Deliveries
from hookline.web.console.overview import Overview
from hookline.web.console.tail import Tail
from hookline.web.pages import PageConfig
from hookline.web.session import Gate

__all__ = ["COOKIE", "PREFIX", "console_routes"]


def console_routes(
    ops: Operations,
    gate: Gate,
    templates: Environment,
    config: PageConfig,
    stopping: asyncio.Event | None = None,
) -> list[Route]:
    """Every console route; ``stopping`` ends the live tail's streams at shutdown."""
    screens = (SignIn, Overview, Deliveries, Applications, Catalog, Access)
    routes = [
        route for screen in screens for route in screen(ops, gate, templates, config).routes()
    ]
    return [*routes, *Tail(ops, gate, templates, config, stopping).routes()]
