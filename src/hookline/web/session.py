"""Who is asking for a portal page: the bearer token of every fragment request.

The portal keeps no server-side session and sets no cookie. The link's token lives in the
browser tab (``static/portal.js``: read from the URL fragment, kept in ``sessionStorage``)
and comes back as ``Authorization: Bearer …`` on every htmx request. Each request is then
checked by the JSON API's own gate (``HooklineApp.authenticate``: the address limits, the
token lookup with its expiry and revocations, the token's networks and rate), handed in as
a ``Gate`` so that this layer cannot drift from it; the capability a page needs is checked
here with the same ``Principal.require`` the API's routes use. Two consequences follow:
a revoked or expired token stops working on the next click, as in the API, and the portal
works inside a third-party iframe where the browser blocks cookies. With no cookie there is
nothing for a cross-site request to ride on, so the forms need no CSRF token.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.requests import Request

from hookline.domain.capabilities import Capability
from hookline.domain.errors import HooklineError
from hookline.operations.principal import Principal


class Refused(HooklineError):
    """The API's limits refused the request before or after its token was read."""

    code = "refused"

    def __init__(self, status: int, detail: str, retry_after: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.retry_after = retry_after


Gate = Callable[[str | None, str | None], Awaitable[Principal]]
"""``(authorization header, client address) -> Principal``; raises ``Unauthorized`` for a
missing, unknown or expired token and ``Refused`` for what the API's limits refuse."""


@dataclass(frozen=True, slots=True)
class Caller:
    """The principal of one page request and the application it is about."""

    principal: Principal
    app_key: str

    def may(self, capability: Capability) -> bool:
        """What the page shows: a control the token could not use is not rendered."""
        return self.principal.allows(capability)


async def authenticate(gate: Gate, request: Request, capability: Capability) -> Caller:
    """The caller of a portal fragment that needs ``capability``: ``Unauthorized`` (401),
    ``Forbidden`` (403) or ``Refused`` otherwise, exactly as the API would answer."""
    client = request.client.host if request.client is not None else None
    principal = await gate(request.headers.get("authorization"), client)
    principal.require(capability)
    return Caller(principal, request.path_params["app_id"])
