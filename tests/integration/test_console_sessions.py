"""Console sessions over each backend's store: an admin token opens one, the session is a
short-lived token of its own, and it ends when signed out, when it expires, or when the
token that opened it is revoked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hookline.domain.errors import Forbidden, Unauthorized
from hookline.operations import console_sessions as console
from hookline.operations import tokens
from hookline.operations.principal import SYSTEM
from hookline.operations.tokens import Authenticator, TokenRequest
from tests.conftest import make_app
from tests.integration.conftest import Ops


def now() -> datetime:
    return datetime.now(UTC)


async def admin_token(ops: Ops) -> str:
    return (await tokens.create_token(ops.ops, SYSTEM, TokenRequest(name="operator"))).token


async def test_an_admin_token_opens_a_session_that_acts_as_its_own_admin_token(ops: Ops) -> None:
    """Sign-in issues a new admin token (listed, named, expiring in 12 hours); the session
    resumes as an admin principal whose actor is the session, not the operator's token."""
    auth = Authenticator(ops.ops)
    issued = await console.sign_in(ops.ops, auth, await admin_token(ops), now(), "127.0.0.1")
    assert issued.record.app_id is None
    assert issued.record.name == console.SESSION_NAME
    assert issued.record.expires_at is not None
    assert issued.record.expires_at - issued.record.created_at == console.SESSION_LENGTH
    session = await console.resume(ops.ops, auth, issued.token, now(), "127.0.0.1")
    assert session.principal.is_admin
    assert session.principal.token_id == issued.record.id
    listed = {t.id for t in await tokens.list_tokens(ops.ops, SYSTEM)}
    assert issued.record.id in listed


async def test_an_application_token_cannot_open_the_console_and_nothing_is_issued(
    ops: Ops,
) -> None:
    """The console is the operator's: a portal token is refused with 403 and no token is
    created; an unknown token is refused with 401."""
    app = make_app()
    await ops.store.create_application(app)
    scoped = await tokens.create_token(ops.ops, SYSTEM, TokenRequest(app_key=app.id))
    before = len(await tokens.list_tokens(ops.ops, SYSTEM))
    auth = Authenticator(ops.ops)
    with pytest.raises(Forbidden, match="admin token"):
        await console.sign_in(ops.ops, auth, scoped.token, now(), None)
    with pytest.raises(Unauthorized):
        await console.sign_in(ops.ops, auth, "hl_admin_not-a-token", now(), None)
    assert len(await tokens.list_tokens(ops.ops, SYSTEM)) == before


async def test_signing_out_ends_the_session_and_keeps_the_operators_token(ops: Ops) -> None:
    """After sign-out the session's cookie is refused; the token that opened it still
    opens a new one."""
    auth = Authenticator(ops.ops)
    operator = await admin_token(ops)
    issued = await console.sign_in(ops.ops, auth, operator, now(), None)
    session = await console.resume(ops.ops, auth, issued.token, now(), None)
    await console.sign_out(ops.ops, session)
    with pytest.raises(Unauthorized):
        await console.resume(ops.ops, auth, issued.token, now(), None)
    again = await console.sign_in(ops.ops, auth, operator, now(), None)
    assert (await console.resume(ops.ops, auth, again.token, now(), None)).principal.is_admin


async def test_revoking_the_operators_token_ends_the_sessions_it_opened(ops: Ops) -> None:
    """A session lives only while the token that opened it does."""
    auth = Authenticator(ops.ops)
    operator = await tokens.create_token(ops.ops, SYSTEM, TokenRequest(name="operator"))
    issued = await console.sign_in(ops.ops, auth, operator.token, now(), None)
    await tokens.revoke_token(ops.ops, SYSTEM, operator.record.id)
    with pytest.raises(Unauthorized, match="no longer valid"):
        await console.resume(ops.ops, auth, issued.token, now(), None)


async def test_a_session_expires_after_its_length(ops: Ops) -> None:
    """Twelve hours after sign-in the session is refused."""
    auth = Authenticator(ops.ops)
    issued = await console.sign_in(ops.ops, auth, await admin_token(ops), now(), None)
    later = now() + console.SESSION_LENGTH + timedelta(seconds=1)
    with pytest.raises(Unauthorized):
        await console.resume(ops.ops, auth, issued.token, later, None)


async def test_an_admin_token_is_not_a_session(ops: Ops) -> None:
    """A cookie holding the operator's own token (not a session issued at sign-in) is
    refused: the console's cookie never carries a long-lived token."""
    auth = Authenticator(ops.ops)
    with pytest.raises(Unauthorized):
        await console.resume(ops.ops, auth, await admin_token(ops), now(), None)
    with pytest.raises(Unauthorized):
        await console.resume(ops.ops, auth, None, now(), None)


async def test_the_csrf_token_belongs_to_one_session(ops: Ops) -> None:
    """Each session has its own CSRF token; a missing or another session's one is refused."""
    auth = Authenticator(ops.ops)
    operator = await admin_token(ops)
    first, second = [
        await console.resume(
            ops.ops,
            auth,
            (await console.sign_in(ops.ops, auth, operator, now(), None)).token,
            now(),
            None,
        )
        for _ in range(2)
    ]
    assert console.csrf_matches(first, first.csrf)
    assert not console.csrf_matches(first, second.csrf)
    assert not console.csrf_matches(first, None)
