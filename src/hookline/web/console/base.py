"""What every console screen shares: the session cookie, the CSRF check, the layout and
the refusals.

A console request carries the session token in an HttpOnly cookie (``COOKIE``, path
``/dashboard``, SameSite=Strict, Secure over https), resumed on every request by
``operations.console_sessions.resume`` through the API's own gate, so the API's abuse limits
hold and a revoked or expired session stops working on the next click. A request that
changes something (every POST) must also carry the session's CSRF token, in the form's
``csrf`` field or htmx's ``X-CSRF-Token`` header (``hx-headers`` on the body), and must not
come from another origin; otherwise it is refused with 403 before anything is read or
written. Without a session a full page redirects to the sign-in page and an htmx or
event-stream request gets 401.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

from jinja2 import Environment
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from hookline.domain.errors import Forbidden, HooklineError, Unauthorized
from hookline.operations import console_sessions
from hookline.operations.console_sessions import ConsoleSession
from hookline.operations.context import Operations
from hookline.operations.principal import Principal
from hookline.web.forms import FieldErrors, posted_form
from hookline.web.pages import PageConfig, Pages, refusal_status
from hookline.web.session import Gate, Refused

log = logging.getLogger("hookline.web")

PREFIX = "/dashboard"
COOKIE = "hookline_console"
SIGN_IN = PREFIX + "/sign-in"
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"
NAV: tuple[tuple[str, str], ...] = (
    ("Overview", PREFIX),
    ("Live tail", PREFIX + "/tail"),
    ("Deliveries", PREFIX + "/deliveries"),
    ("Failures", PREFIX + "/failures"),
    ("Applications", PREFIX + "/applications"),
    ("Event types", PREFIX + "/event-types"),
    ("Operational webhooks", PREFIX + "/operational-webhooks"),
    ("Tokens", PREFIX + "/tokens"),
)
"""The console's navigation, in order; a screen marks its own entry as current."""


class GateCheck:
    """``console_sessions.TokenCheck`` over the API's gate: the address allowlist, the
    failed-authentication budget (so guessing tokens at the sign-in form is as slow as at
    the API), the token's networks and its rate."""

    def __init__(self, gate: Gate) -> None:
        self._gate = gate

    async def authenticate(
        self, authorization: str | None, now: datetime, address: str | None = None
    ) -> Principal:
        return await self._gate(authorization, address)


@dataclass(frozen=True, slots=True)
class Visit:
    """One console request: its session, and the form it posted (empty for a GET)."""

    session: ConsoleSession
    form: FormData = field(default_factory=FormData)

    @property
    def principal(self) -> Principal:
        return self.session.principal

    def text(self, name: str) -> str:
        value = self.form.get(name)
        return value.strip() if isinstance(value, str) else ""


Handler = Callable[[Request, Visit], Awaitable[Response]]


def client_of(request: Request) -> str | None:
    return request.client.host if request.client is not None else None


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def same_origin(request: Request) -> bool:
    """A browser names the page that sent a POST in ``Origin``; one of another host is a
    cross-site request, whatever else it carries. No header (an old client) is let through
    to the CSRF check, which it cannot pass without the session's token anyway."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    return urlsplit(origin).netloc == request.headers.get("host", "")


class ConsolePages(Pages):
    """The console's plumbing over ``web.pages.Pages``: sessions, CSRF, layout."""

    def __init__(
        self, ops: Operations, gate: Gate, templates: Environment, config: PageConfig
    ) -> None:
        super().__init__(gate, templates, config)
        self._ops = ops
        self._check = GateCheck(gate)

    def _html(self, page: str, status: int, nonce: str | None = None) -> Response:
        """The pages' headers, but the referrer policy: ``same-origin`` instead of
        ``no-referrer``, under which a browser sends ``Origin: null`` with a form and the
        origin check below could not tell the console's own forms from another site's."""
        response = super()._html(page, status, nonce)
        response.headers["referrer-policy"] = "same-origin"
        return response

    async def resume(self, request: Request) -> ConsoleSession:
        return await console_sessions.resume(
            self._ops,
            self._check,
            request.cookies.get(COOKIE),
            self._ops.clock(),
            client_of(request),
        )

    def guarded(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        """The handler behind the session check and, for a POST, the origin and CSRF
        checks; its ``HooklineError`` becomes a refusal in the layout."""

        async def endpoint(request: Request) -> Response:
            try:
                session = await self.resume(request)
            except Refused as exc:
                return self.refusal_page(request, None, exc)
            except Unauthorized:
                return self.signed_out(request)
            visit = Visit(session)
            try:
                if request.method == "POST":
                    if not same_origin(request):
                        raise Forbidden("A console change must come from the console's own pages")
                    form = await posted_form(request)
                    offered = request.headers.get(CSRF_HEADER) or _text(form.get(CSRF_FIELD))
                    if not console_sessions.csrf_matches(session, offered):
                        raise Forbidden(
                            "This form is stale or was not sent by the console (CSRF token "
                            "missing or wrong); reload the page and try again"
                        )
                    visit = Visit(session, form)
                return await handler(request, visit)
            except HooklineError as exc:
                return self.refusal_page(request, session, exc)
            except Exception:
                log.exception("unhandled error on %s %s", request.method, request.url.path)
                error = HooklineError("An unexpected error occurred; nothing more is known here")
                return self.refusal_page(request, session, error, 500)

        return endpoint

    def signed_out(self, request: Request) -> Response:
        """No valid session: 401 for htmx and event streams, else the sign-in page (a
        redirect for a GET, so the address bar shows where the operator is)."""
        if is_htmx(request) or "text/event-stream" in request.headers.get("accept", ""):
            response = self._html("Sign in to the console", 401)
            response.headers["hx-redirect"] = SIGN_IN
        elif request.method == "GET":
            response = RedirectResponse(SIGN_IN, 303)
        else:
            response = self.sign_in_page(request, "Your session has ended; sign in again.", 401)
        response.delete_cookie(COOKIE, path=PREFIX)
        return response

    def sign_in_page(self, request: Request, error: str | None, status: int = 200) -> Response:
        page = self._render("console/sign_in.html", error=error, signed_out=False)
        return self._html(page, status)

    def refusal_page(
        self,
        request: Request,
        session: ConsoleSession | None,
        exc: HooklineError,
        status: int | None = None,
    ) -> Response:
        status = refusal_status(exc) if status is None else status
        if session is None:
            response = self._html(self._render("console/sign_in.html", error=exc.detail), status)
        else:
            response = self.page(
                request,
                session,
                "console/refusal.html",
                status=status,
                code=status,
                message=exc.detail,
            )
        if isinstance(exc, Refused) and exc.retry_after is not None:
            response.headers["retry-after"] = exc.retry_after
        return response

    def page(
        self,
        request: Request,
        session: ConsoleSession,
        template: str,
        *,
        status: int = 200,
        **context: Any,
    ) -> Response:
        """A console screen in the layout, with the navigation and the session's CSRF token."""
        page = self._render(
            template,
            nav=NAV,
            current=request.url.path,
            csrf=session.csrf,
            prefix=PREFIX,
            **context,
        )
        return self._html(page, status)

    def see_other(self, path: str, **query: str) -> Response:
        """After a change, the screen that shows it (Post/Redirect/Get), so a reload does
        not post again; ``notice`` travels in the query and is shown as text."""
        url = path if not query else f"{path}?{_query(query)}"
        return RedirectResponse(url, 303)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _query(values: Mapping[str, str]) -> str:
    return urlencode(values)


def field_errors(exc: HooklineError, fields: tuple[str, ...]) -> FieldErrors:
    """Where a refusal belongs on a form: beside the field its ``loc`` names (``body``,
    then the API's field name), else above the form (a conflict, a rule on several)."""
    errors = FieldErrors()
    loc: tuple[str | int, ...] = getattr(exc, "loc", ())
    name = loc[1] if len(loc) > 1 else None
    if isinstance(name, str) and name in fields:
        errors.by_field[name] = exc.detail
    else:
        errors.general.append(exc.detail)
    return errors
