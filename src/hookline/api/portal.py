"""``/api/v1/auth``: tokens scoped to one application, for embedding a customer portal."""

from __future__ import annotations

from datetime import timedelta

from hookline.api import applications, params, resolve
from hookline.api import schemas as s
from hookline.api.app import Services
from hookline.api.auth import new_token
from hookline.api.http import Request, Response, Route, model_response
from hookline.domain.errors import NotFound


async def app_portal_access(svc: Services, request: Request) -> Response:
    request.principal.require_admin()
    body = params.body(s.AppPortalAccessIn, request, optional=True)
    try:
        app = await resolve.application(svc, request)
    except NotFound:
        if body.application is None:
            raise
        app = applications.new_application(svc, body.application, uid=request.path_params["app_id"])
        await svc.store.create_application(app)
    now = svc.clock()
    token, record = new_token(app.id, now, now + timedelta(seconds=body.expiry))
    await svc.store.create_token(record)
    url = f"{svc.settings.base_url}/portal/{app.id}#key={token}"
    return model_response(200, s.AppPortalAccessOut(url=url, token=token))


ROUTES = [
    Route(
        "POST",
        "/api/v1/auth/app-portal-access/{app_id}",
        app_portal_access,
        "Get a token scoped to one application",
        "Authentication",
        body=s.AppPortalAccessIn,
        response=s.AppPortalAccessOut,
    ),
]
