"""``/api/v1/auth``: tokens scoped to one application, for embedding a customer portal."""

from __future__ import annotations

from datetime import timedelta

from hookline.api import params
from hookline.api import schemas as s
from hookline.api.applications import new_application
from hookline.api.http import Access, Request, Response, Route, model_response
from hookline.operations import tokens
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


ROUTES = [
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
