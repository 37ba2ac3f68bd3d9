"""An application's portal branding defaults: what its portal looks like when the link
carries no branding of its own.

The operator sets them per application (``PUT /api/v1/app/{app_id}/portal-branding``), so a
customer's portal is branded without every link repeating the parameters; a link's own
parameters still win, one by one. They are held to the link's grammar
(``domain/branding.py``) when set, so the portal never meets a stored value it would refuse.
"""

from __future__ import annotations

from collections.abc import Mapping

from hookline.domain import audit as a
from hookline.domain import branding
from hookline.domain.errors import InvalidRequest
from hookline.operations import applications
from hookline.operations.audit import record
from hookline.operations.context import Operations
from hookline.operations.principal import Principal


async def get(ops: Operations, principal: Principal, app_key: str) -> dict[str, str]:
    """The defaults as set (parameter names to values); empty when none are."""
    principal.require_admin()
    app = await applications.resolve(ops, principal, app_key)
    return await ops.store.portal_branding(app.id) or {}


async def put(
    ops: Operations, principal: Principal, app_key: str, values: Mapping[str, str]
) -> dict[str, str]:
    """Replace the defaults; a value outside the grammar (or a name that is not a branding
    parameter) is refused naming it, and nothing changes. A stored logo must be https: the
    loopback exception of ``--dev`` is for links made on one's own machine."""
    principal.require_admin()
    app = await applications.resolve(ops, principal, app_key)
    unknown = sorted(set(values) - set(branding.PARAMETERS))
    if unknown:
        raise InvalidRequest(f"{unknown[0]} is not a branding parameter", loc=("body", unknown[0]))
    branding.parse(values, where="body")
    settings = dict(values)
    await ops.store.set_portal_branding(app.id, settings, ops.clock())
    summary = a.summary(parameters=sorted(settings))
    await record(ops, principal, a.PORTAL_BRANDING_SET, app_id=app.id, summary=summary)
    return settings


async def clear(ops: Operations, principal: Principal, app_key: str) -> None:
    """Remove the defaults: the application's portal looks like hookline's own again."""
    principal.require_admin()
    app = await applications.resolve(ops, principal, app_key)
    if await ops.store.delete_portal_branding(app.id):
        await record(ops, principal, a.PORTAL_BRANDING_CLEARED, app_id=app.id)


async def defaults(ops: Operations, app_id: str) -> dict[str, str]:
    """What the portal's shell starts from, for the application of its path. The shell is
    served before any token is checked (the token is in the fragment), so this is the one
    read without a principal: it tells nothing but colours, a font and a logo URL, of an
    application whose unguessable id the visitor already has."""
    return await ops.store.portal_branding(app_id) or {}
