"""Signing in and out of the console.

The admin token is posted in a form body, never in a URL, and never logged; in exchange the
browser gets a session of its own (``operations.console_sessions``) in an HttpOnly cookie.
Failed sign-ins count against the address's failed-authentication budget of the API
(``HOOKLINE_API_AUTH_FAILURE_RATE``), through the same gate.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from hookline.domain.errors import Forbidden, HooklineError, InvalidRequest, Unauthorized
from hookline.operations import console_sessions
from hookline.operations.console_sessions import SESSION_LENGTH
from hookline.web.console.base import (
    COOKIE,
    PREFIX,
    SIGN_IN,
    ConsolePages,
    Visit,
    client_of,
    same_origin,
)
from hookline.web.forms import posted_form
from hookline.web.session import Refused


class SignIn(ConsolePages):
    def routes(self) -> list[Route]:
        return [
            Route(SIGN_IN, self.show, methods=["GET"]),
            Route(SIGN_IN, self.sign_in, methods=["POST"]),
            Route(PREFIX + "/sign-out", self.guarded(self.sign_out), methods=["POST"]),
        ]

    async def show(self, request: Request) -> Response:
        signed_out = request.query_params.get("signed-out") is not None
        page = self._render("console/sign_in.html", error=None, signed_out=signed_out)
        return self._html(page, 200)

    async def sign_in(self, request: Request) -> Response:
        """Exchange an admin token for a session; every refusal re-shows the form with the
        reason and sets no cookie."""
        if not same_origin(request):
            return self.sign_in_page(request, "Sign in from the console's own page.", 403)
        try:
            form = await posted_form(request)
        except InvalidRequest as exc:
            return self.sign_in_page(request, exc.detail, 422)
        token = form.get("token")
        token = token.strip() if isinstance(token, str) else ""
        if not token:
            return self.sign_in_page(request, "Paste an admin token to sign in.", 422)
        try:
            issued = await console_sessions.sign_in(
                self._ops, self._check, token, self._ops.clock(), client_of(request)
            )
        except Refused as exc:
            response = self.sign_in_page(request, exc.detail, exc.status)
            if exc.retry_after is not None:
                response.headers["retry-after"] = exc.retry_after
            return response
        except Unauthorized:
            return self.sign_in_page(request, "That token is unknown or has expired.", 401)
        except Forbidden as exc:
            return self.sign_in_page(request, exc.detail, 403)
        await self._end_previous(request)
        response = RedirectResponse(PREFIX, 303)
        response.set_cookie(
            COOKIE,
            issued.token,
            max_age=int(SESSION_LENGTH.total_seconds()),
            path=PREFIX,
            secure=request.url.scheme == "https",
            httponly=True,
            samesite="strict",
        )
        return response

    async def _end_previous(self, request: Request) -> None:
        """Signing in again in the same browser replaces its session: the one its cookie
        held is ended, so sessions do not pile up in the token list."""
        if not request.cookies.get(COOKIE):
            return
        try:
            previous = await self.resume(request)
        except HooklineError:
            return
        await console_sessions.sign_out(self._ops, previous)

    async def sign_out(self, request: Request, visit: Visit) -> Response:
        """End the session (its token is deleted, so the cookie is worthless even if kept)."""
        await console_sessions.sign_out(self._ops, visit.session)
        response = RedirectResponse(SIGN_IN + "?signed-out", 303)
        response.delete_cookie(COOKIE, path=PREFIX)
        return response
