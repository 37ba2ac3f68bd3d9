"""Lookups every handler needs, with tenant isolation applied in one place."""

from __future__ import annotations

from hookline.api.app import Services
from hookline.api.http import Request
from hookline.domain.errors import NotFound
from hookline.domain.models import Application, Endpoint, Message


async def application(svc: Services, request: Request) -> Application:
    """The application in the path; another tenant's application is reported absent."""
    key = request.path_params["app_id"]
    app = svc.applications.get(key)
    if app is None:
        app = await svc.store.get_application(key)
        if app is not None:
            svc.applications.put(key, app)
    principal = request.principal
    if app is None or (principal is not None and principal.app_id not in (None, app.id)):
        raise NotFound("Application not found")
    return app


async def endpoint(svc: Services, request: Request, app: Application) -> Endpoint:
    ep = await svc.store.get_endpoint(app.id, request.path_params["endpoint_id"])
    if ep is None:
        raise NotFound("Endpoint not found")
    return ep


async def message(svc: Services, request: Request, app: Application) -> Message:
    msg = await svc.store.get_message(app.id, request.path_params["msg_id"])
    if msg is None:
        raise NotFound("Message not found")
    return msg
