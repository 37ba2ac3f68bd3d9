"""Token operations on every backend: portal access, CLI tokens, authentication."""

from __future__ import annotations

from datetime import timedelta

import pytest

from hookline.domain.errors import Forbidden, NotFound, Unauthorized
from hookline.domain.models import Application
from hookline.operations import applications, tokens
from hookline.operations.applications import NewApplication
from hookline.operations.principal import SYSTEM, Principal
from hookline.operations.tokens import Authenticator
from tests.conftest import utcnow
from tests.integration.conftest import Ops


@pytest.fixture
async def app(ops: Ops) -> Application:
    created, _ = await applications.create(ops.ops, SYSTEM, NewApplication("Acme", uid="acme"))
    return created


async def test_portal_access_issues_a_scoped_token_that_expires(ops: Ops, app: Application) -> None:
    """The token authenticates as the application until its expiry; the link carries it."""
    access = await tokens.portal_access(ops.ops, SYSTEM, "acme", expiry=timedelta(hours=1))
    assert access.token.startswith("hl_app_")
    assert access.url == f"https://hooks.example/portal/{app.id}#key={access.token}"
    auth = Authenticator(ops.store)
    principal = await auth.authenticate(f"Bearer {access.token}", utcnow())
    assert principal.app_id == app.id and not principal.is_admin
    with pytest.raises(Unauthorized):
        await Authenticator(ops.store).authenticate(
            f"Bearer {access.token}", utcnow() + timedelta(hours=2)
        )


async def test_portal_access_creates_the_inline_application(ops: Ops) -> None:
    """A missing application named in the request is created under the path's uid."""
    access = await tokens.portal_access(ops.ops, SYSTEM, "new-co", NewApplication("New Co"))
    created = await ops.store.get_application("new-co")
    assert created is not None and access.url.endswith(f"/portal/{created.id}#key={access.token}")


async def test_only_admins_issue_tokens(ops: Ops, app: Application) -> None:
    """A scoped principal can issue neither portal tokens nor other tokens."""
    scoped = Principal(token_id="tok_p", app_id=app.id)
    with pytest.raises(Forbidden):
        await tokens.portal_access(ops.ops, scoped, "acme")
    with pytest.raises(Forbidden):
        await tokens.create_token(ops.ops, scoped)


async def test_create_token_is_admin_or_scoped_to_an_existing_application(
    ops: Ops, app: Application
) -> None:
    """``hookline token`` makes an admin token, or one scoped to an application by uid;
    an unknown application is NotFound and stores nothing."""
    auth = Authenticator(ops.store)
    admin = await tokens.create_token(ops.ops, SYSTEM)
    assert admin.startswith("hl_admin_")
    assert (await auth.authenticate(f"Bearer {admin}", utcnow())).is_admin
    scoped = await tokens.create_token(ops.ops, SYSTEM, "acme")
    assert (await auth.authenticate(f"bearer {scoped}", utcnow())).app_id == app.id
    with pytest.raises(NotFound):
        await tokens.create_token(ops.ops, SYSTEM, "nope")
    assert await ops.store.count_admin_tokens() == 1


@pytest.mark.parametrize("header", [None, "", "Basic abc", "Bearer ", "Bearer hl_admin_wrong"])
async def test_authentication_refuses_missing_malformed_and_unknown_tokens(
    ops: Ops, header: str | None
) -> None:
    """Anything but a stored, unexpired bearer token is Unauthorized (401)."""
    with pytest.raises(Unauthorized):
        await Authenticator(ops.store).authenticate(header, utcnow())
