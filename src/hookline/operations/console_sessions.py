"""Console sessions: an operator signs in to ``/dashboard`` with an admin token, and the
browser keeps a session of its own instead of that token.

A session is a short-lived admin token issued at sign-in (``console:`` and the signing-in
token's id as its ``session_id``), so everything tokens already do holds for it: only its
hash is stored, it expires, ``GET /api/v1/token`` lists it and a revocation ends it, and the
audit log names it as the actor of what the operator does in the console. It also lives
only as long as the token that opened it: revoking or expiring the operator's token ends
the sessions it opened at their next request. The cookie holding it is the face's concern
(``web/``); so is the CSRF token, derived from the session by ``csrf_token``.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from hookline.domain import audit as a
from hookline.domain.errors import Forbidden, Unauthorized
from hookline.operations.audit import record
from hookline.operations.context import Operations
from hookline.operations.principal import Principal
from hookline.operations.tokens import (
    IssuedToken,
    TokenRequest,
    issue,
    record_created,
)

SESSION_LENGTH = timedelta(hours=12)
"""A working day: long enough not to interrupt an incident, short enough that a cookie left
on a shared machine stops working by the next one."""
SESSION_PREFIX = "console:"
"""``session_id`` of a console session's token: the prefix, then the signing-in token's id."""
SESSION_NAME = "console session"


class TokenCheck(Protocol):
    """What reads a bearer token: ``tokens.Authenticator``, or a face's wrapper of it that
    applies its abuse limits too (the console's sign-in goes through the API's gate)."""

    async def authenticate(
        self, authorization: str | None, now: datetime, address: str | None = None
    ) -> Principal: ...


@dataclass(frozen=True, slots=True)
class ConsoleSession:
    """The operator behind a console request, and the CSRF token its forms must carry."""

    principal: Principal
    csrf: str


async def sign_in(
    ops: Operations, authenticator: TokenCheck, token: str, now: datetime, address: str | None
) -> IssuedToken:
    """A new session for the holder of admin ``token``; ``Unauthorized`` for an unknown or
    expired token, ``Forbidden`` for an application's token (the console is the operator's)."""
    principal = await authenticator.authenticate(f"Bearer {token}", now, address)
    if not principal.is_admin or principal.token_id is None:
        raise Forbidden("The console needs an admin token; an application's token opens its portal")
    request = TokenRequest(
        name=SESSION_NAME,
        expires_in=SESSION_LENGTH,
        session_id=SESSION_PREFIX + principal.token_id,
    )
    issued = await issue(ops, None, request, principal.networks)
    await record_created(ops, principal, issued.record, console=True)
    return issued


async def resume(
    ops: Operations,
    authenticator: TokenCheck,
    session: str | None,
    now: datetime,
    address: str | None,
) -> ConsoleSession:
    """The console session a request's cookie holds, or ``Unauthorized`` (sign in again):
    no cookie, an unknown or expired session, a token that is not a console session, or a
    session whose opening token was revoked or has expired."""
    if not session:
        raise Unauthorized("Sign in to the console")
    principal = await authenticator.authenticate(f"Bearer {session}", now, address)
    opened = None if principal.token_id is None else await ops.store.get_token(principal.token_id)
    if (
        opened is None
        or opened.session_id is None
        or not opened.session_id.startswith(SESSION_PREFIX)
    ):
        raise Unauthorized("Sign in to the console")
    parent = await ops.store.get_token(opened.session_id.removeprefix(SESSION_PREFIX))
    if parent is None or (parent.expires_at is not None and parent.expires_at <= now):
        raise Unauthorized("The token this session was opened with is no longer valid")
    return ConsoleSession(principal, csrf_token(session))


async def sign_out(ops: Operations, session: ConsoleSession) -> None:
    """End the session (its token is deleted); the operator's own token stays valid."""
    token_id = session.principal.token_id
    if token_id is None:
        return
    await ops.store.delete_token(token_id)
    ops.token_cache.clear()
    await record(ops, session.principal, a.TOKEN_LOGGED_OUT, target_id=token_id)


def csrf_token(session: str) -> str:
    """The token a console form or htmx request must echo: derived from the session, so
    nothing is stored, and a page of another origin, which cannot read the session cookie,
    cannot compute it."""
    return hmac.new(session.encode(), b"hookline console csrf", hashlib.sha256).hexdigest()


def csrf_matches(session: ConsoleSession, offered: str | None) -> bool:
    return offered is not None and hmac.compare_digest(session.csrf, offered)
