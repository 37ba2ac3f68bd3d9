"""``/api/v1/app/{app_id}/endpoint/{endpoint_id}/oauth``, ``…/mtls`` (Svix's routes and
shapes) and ``…/basic-auth`` (hookline's): the credentials an endpoint's deliveries carry.

Reading needs what reading custom headers needs (``ViewEndpointSecret``), changing what
changing them needs (``ManageEndpoint``); no answer holds a secret.
"""

from __future__ import annotations

from hookline.api import params
from hookline.api import schemas as s
from hookline.api.http import Access, Request, Response, Route, empty_response, model_response
from hookline.domain.capabilities import Capability
from hookline.operations import endpoint_auth
from hookline.operations.context import Operations
from hookline.operations.endpoint_auth import OAuthInput

EP = "/api/v1/app/{app_id}/endpoint/{endpoint_id}"


def _key(request: Request) -> str:
    return request.path_params["endpoint_id"]


async def get_oauth(ops: Operations, request: Request) -> Response:
    found = await endpoint_auth.oauth(ops, request.caller, request.app_key, _key(request))
    shown = s.EndpointOauthConfigOut(
        auth_method=found.method.value,
        client_id=found.client_id,
        extra_params=dict(found.extra_params) or None,
        grant_type="clientCredentials",
        scopes=list(found.scopes) or None,
        token_url=found.token_url,
    )
    return model_response(200, shown)


async def set_oauth(ops: Operations, request: Request) -> Response:
    body = params.body(s.EndpointOauthConfigIn, request)
    given = OAuthInput(
        token_url=body.token_url,
        client_id=body.client_id,
        client_secret=body.client_secret,
        auth_method=body.auth_method,
        grant_type=body.grant_type,
        scopes=body.scopes,
        extra_params=body.extra_params,
    )
    await endpoint_auth.set_oauth(ops, request.caller, request.app_key, _key(request), given)
    return empty_response(204)


async def delete_oauth(ops: Operations, request: Request) -> Response:
    await endpoint_auth.delete_oauth(ops, request.caller, request.app_key, _key(request))
    return empty_response(204)


async def get_mtls(ops: Operations, request: Request) -> Response:
    found = await endpoint_auth.mtls(ops, request.caller, request.app_key, _key(request))
    summary = found.certificate
    shown = s.EndpointMtlsConfigOut(
        server_ca_cert=found.server_ca,
        client_certificate=None
        if summary is None
        else s.ClientCertificateOut(
            subject=summary.subject,
            issuer=summary.issuer,
            not_before=summary.not_before,
            not_after=summary.not_after,
            fingerprint_sha256=summary.fingerprint_sha256,
        ),
    )
    return model_response(200, shown)


async def set_mtls(ops: Operations, request: Request) -> Response:
    body = params.body(s.EndpointMtlsConfigIn, request)
    await endpoint_auth.set_mtls(
        ops, request.caller, request.app_key, _key(request), body.identity, body.server_ca_cert
    )
    return empty_response(204)


async def delete_mtls(ops: Operations, request: Request) -> Response:
    await endpoint_auth.delete_mtls(ops, request.caller, request.app_key, _key(request))
    return empty_response(204)


async def get_basic(ops: Operations, request: Request) -> Response:
    found = await endpoint_auth.basic(ops, request.caller, request.app_key, _key(request))
    return model_response(200, s.EndpointBasicAuthOut(username=found.username))


async def set_basic(ops: Operations, request: Request) -> Response:
    body = params.body(s.EndpointBasicAuthIn, request)
    await endpoint_auth.set_basic(
        ops, request.caller, request.app_key, _key(request), body.username, body.password
    )
    return empty_response(204)


async def delete_basic(ops: Operations, request: Request) -> Response:
    await endpoint_auth.delete_basic(ops, request.caller, request.app_key, _key(request))
    return empty_response(204)


def _routes() -> list[Route]:
    table = [
        ("oauth", "OAuth", get_oauth, set_oauth, delete_oauth),
        ("mtls", "mTLS", get_mtls, set_mtls, delete_mtls),
        ("basic-auth", "HTTP Basic", get_basic, set_basic, delete_basic),
    ]
    bodies: dict[str, tuple[type[s.Wire], type[s.Wire]]] = {
        "oauth": (s.EndpointOauthConfigIn, s.EndpointOauthConfigOut),
        "mtls": (s.EndpointMtlsConfigIn, s.EndpointMtlsConfigOut),
        "basic-auth": (s.EndpointBasicAuthIn, s.EndpointBasicAuthOut),
    }
    routes = []
    for path, what, read, write, remove in table:
        given, shown = bodies[path]
        routes += [
            Route(
                "GET",
                f"{EP}/{path}",
                read,
                f"Get the endpoint's {what} configuration",
                "Endpoint",
                Access.APP,
                capability=Capability.VIEW_ENDPOINT_SECRET,
                response=shown,
            ),
            Route(
                "PUT",
                f"{EP}/{path}",
                write,
                f"Set the endpoint's {what} configuration",
                "Endpoint",
                Access.APP,
                capability=Capability.MANAGE_ENDPOINT,
                body=given,
                status=204,
            ),
            Route(
                "DELETE",
                f"{EP}/{path}",
                remove,
                f"Remove the endpoint's {what} configuration",
                "Endpoint",
                Access.APP,
                capability=Capability.MANAGE_ENDPOINT,
                status=204,
            ),
        ]
    return routes


ROUTES = _routes()
