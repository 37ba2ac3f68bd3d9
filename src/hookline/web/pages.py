"""How a page answers: its security headers, its refusals, and the token check before
each fragment, apart from what any one screen shows.

A fragment's handler runs only after ``session.authenticate`` accepted the request's token
for the capability the route declares; every ``HooklineError`` it raises becomes a small
HTML refusal with the status the API gives the same error, shown in the screen's main
region (``HX-Retarget``); anything else is logged and becomes a 500 that says nothing more.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from jinja2 import Environment
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from hookline.domain.capabilities import Capability
from hookline.domain.errors import HooklineError, status_of
from hookline.web.session import Caller, Gate, Refused, authenticate

log = logging.getLogger("hookline.web")

MAIN = "#portal-main"
"""Where a refusal is shown, whatever element asked: the screen's main region."""
Handler = Callable[[Request, Caller], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class PageConfig:
    """What the pages take from the settings."""

    frame_ancestors: str = "'self'"
    dev: bool = False


class Pages:
    """The plumbing every screen shares: templates, headers, the gate, refusals."""

    def __init__(self, gate: Gate, templates: Environment, config: PageConfig) -> None:
        self._gate = gate
        self._templates = templates
        self._config = config

    def _render(self, template: str, **context: Any) -> str:
        return self._templates.get_template(template).render(**context)

    def _html(self, page: str, status: int, nonce: str | None = None) -> Response:
        response = HTMLResponse(page, status)
        for name, value in security_headers(self._config, nonce).items():
            response.headers[name] = value
        return response

    def _fragment(self, handler: Handler, capability: Capability) -> Callable[[Request], Any]:
        """The route's handler behind the token check and the capability it declares; a
        refusal or an error becomes a fragment the screen shows in its main region."""

        async def endpoint(request: Request) -> Response:
            try:
                caller = await authenticate(self._gate, request, capability)
                return await handler(request, caller)
            except HooklineError as exc:
                return self._refusal(exc)
            except Exception:
                log.exception("unhandled error on %s %s", request.method, request.url.path)
                error = HooklineError("An unexpected error occurred; nothing more is known here")
                return self._refusal(error, 500)

        return endpoint

    def _refusal(self, exc: HooklineError, status: int | None = None) -> Response:
        if status is None:
            status = refusal_status(exc)
        page = self._render("portal/refusal.html", status=status, message=exc.detail)
        response = self._html(page, status)
        response.headers["hx-retarget"] = MAIN
        response.headers["hx-reswap"] = "innerHTML"
        if isinstance(exc, Refused) and exc.retry_after is not None:
            response.headers["retry-after"] = exc.retry_after
        return response


def refusal_status(exc: HooklineError) -> int:
    """The status the API answers the same error with (``api/errors.py``)."""
    if isinstance(exc, Refused):
        return exc.status
    return status_of(exc) or 400


def security_headers(config: PageConfig, nonce: str | None = None) -> dict[str, str]:
    """Every page response's: where it may be framed, what it may load, no caching (a
    fragment may hold a secret), no sniffing, no referrer."""
    style = "'self'" + ("" if nonce is None else f" 'nonce-{nonce}'")
    images = "'self' https:" + (" http://127.0.0.1:* http://localhost:*" if config.dev else "")
    policy = (
        "default-src 'none'; script-src 'self'; connect-src 'self'; "
        f"style-src {style}; img-src {images}; form-action 'self'; base-uri 'none'; "
        f"frame-ancestors {config.frame_ancestors}"
    )
    return {
        "content-security-policy": policy,
        "cache-control": "no-store",
        "x-content-type-options": "nosniff",
        "referrer-policy": "no-referrer",
    }
