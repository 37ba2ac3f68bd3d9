"""``/api/v1/auth``: tokens scoped to one application, for embedding a customer portal."""

from __future__ import annotations

from datetime import timedelta

from hookline.api import params
from hookline.api import schemas as s
from hookline.api.applications import new_application
from hookline.api.http import Access, Request, Response, Route, empty_response, model_response
from hookline.operations import portal_branding, tokens
from hookline.operations.context import Operations


async def app_portal_access(ops: Operations, request: Request) -> Response:
    body = params.body(s.AppPortalAccessIn, request, optional=True)
    access = await tokens.portal_access(
        ops,
        request.caller,
        request.app_key,
        None if body.application is None else new_application(body.application),
        timedelta(seconds=body.expiry),
        capabilities=None if body.capabilities is None else frozenset(body.capabilities),
        read_only=bool(body.read_only),
        session_id=body.session_id,
    )
    return model_response(200, s.AppPortalAccessOut(url=access.url, token=access.token))


def _as_parameters(given: s.PortalBrandingIn) -> dict[str, str]:
    """The body as the link's parameters (``true``/``false``/``auto`` for the flags)."""
    values: dict[str, str] = {}
    for name, value in given.model_dump(by_alias=True, exclude_none=True).items():
        values[name] = str(value).lower() if isinstance(value, bool) else str(value)
    return values


def _branding_out(settings: dict[str, str]) -> s.PortalBrandingOut:
    flags = {"true": True, "false": False}
    shown: dict[str, object] = dict(settings)
    for name in ("darkMode", "hideNavigation"):
        if name in settings:
            shown[name] = flags.get(settings[name].lower(), settings[name])
    return s.PortalBrandingOut.model_validate(shown)


async def get_portal_branding(ops: Operations, request: Request) -> Response:
    found = await portal_branding.get(ops, request.caller, request.app_key)
    return model_response(200, _branding_out(found))


async def put_portal_branding(ops: Operations, request: Request) -> Response:
    body = params.body(s.PortalBrandingIn, request)
    stored = await portal_branding.put(ops, request.caller, request.app_key, _as_parameters(body))
    return model_response(200, _branding_out(stored))


async def delete_portal_branding(ops: Operations, request: Request) -> Response:
    await portal_branding.clear(ops, request.caller, request.app_key)
    return empty_response()


BRANDING = "/api/v1/app/{app_id}/portal-branding"

ROUTES = [
    Route(
        "GET",
        BRANDING,
        get_portal_branding,
        "Get an application's portal branding defaults (hookline)",
        "Authentication",
        Access.ADMIN,
        response=s.PortalBrandingOut,
    ),
    Route(
        "PUT",
        BRANDING,
        put_portal_branding,
        "Set an application's portal branding defaults; a link's parameters win (hookline)",
        "Authentication",
        Access.ADMIN,
        body=s.PortalBrandingIn,
        response=s.PortalBrandingOut,
    ),
    Route(
        "DELETE",
        BRANDING,
        delete_portal_branding,
        "Remove an application's portal branding defaults (hookline)",
        "Authentication",
        Access.ADMIN,
        status=204,
    ),
    Route(
        "POST",
        "/api/v1/auth/app-portal-access/{app_id}",
        app_portal_access,
        "Get a token scoped to one application",
        "Authentication",
        Access.ADMIN,
        body=s.AppPortalAccessIn,
        response=s.AppPortalAccessOut,
        replays=False,
    ),
]
