"""Tokens: Svix's ``auth/logout`` and ``auth/app/{app_id}/expire-all``, and hookline's own
``/api/v1/token`` routes to create, list, read and revoke tokens (Svix has none: its
tokens live in its dashboard). See docs/security.md, "Tokens and capabilities"."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, ClassVar

from pydantic import Field

from hookline.api import params
from hookline.api import schemas as s
from hookline.api.http import (
    Access,
    Request,
    Response,
    Route,
    empty_response,
    json_response,
    model_response,
)
from hookline.domain.capabilities import READING, Capability
from hookline.domain.models import AccessToken
from hookline.domain.networks import MAX_NETWORK_CHARS, MAX_TOKEN_NETWORKS
from hookline.operations import tokens
from hookline.operations.context import Operations

MAX_TOKEN_LIFETIME = 10 * 365 * 24 * 3600
"""The longest ``expiry`` a created token may ask for (omit it for a token that never
expires)."""
MAX_EXPIRE_ALL_DELAY = 7 * 24 * 3600
"""``expire-all`` can leave tokens at most this long (the longest a portal token lives)."""

NetworkIn = Annotated[str, Field(min_length=1, max_length=MAX_NETWORK_CHARS)]
AllowedNetworks = Annotated[
    list[NetworkIn] | None,
    Field(
        min_length=1,
        max_length=MAX_TOKEN_NETWORKS,
        description="hookline extension: the client networks (CIDRs, IPv4 or IPv6; a bare "
        "address is one host) the token may be used from; from any other address it gets "
        "403 token_address_not_allowed. null: any address.",
    ),
]
"""Checked per entry by the operation (``domain/networks.py``): host bits set, zones and
anything but an address or a CIDR are refused."""


class TokenIn(s.Wire):
    empty_body_allowed: ClassVar[bool] = True
    name: s.Name | None = None
    app_id: s.Uid | None = None
    """Scope the token to this application (id or uid); omitted: an admin token."""
    capabilities: list[Capability] | None = None
    read_only: bool = False
    expiry: int | None = Field(default=None, ge=60, le=MAX_TOKEN_LIFETIME)
    """Seconds until the token expires; omitted: it never expires."""
    allowed_networks: AllowedNetworks = None


class TokenPatchIn(s.Wire):
    """What may change in a token: only where it may be used from. A token's scope,
    capabilities and expiry stay as issued (issue another token to change them)."""

    allowed_networks: AllowedNetworks = None


class ApplicationTokenExpireIn(s.Wire):
    empty_body_allowed: ClassVar[bool] = True
    expiry: int = Field(default=0, ge=0, le=MAX_EXPIRE_ALL_DELAY)
    """Seconds until the application's tokens expire (0: at once)."""
    session_ids: list[str] | None = None
    """Only the tokens issued for these portal sessions."""


class TokenOut(s.Wire):
    id: str
    name: str | None
    app_id: str | None
    capabilities: list[str] | None
    """What an application-scoped token may do; None for an admin token (everything)."""
    read_only: bool
    session_id: str | None
    configured: bool
    """The token of the ``HOOKLINE_ADMIN_TOKEN`` setting."""
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    allowed_networks: list[str] | None
    """The client networks it may be used from, canonical CIDRs; None: any address."""


class TokenCreatedOut(TokenOut):
    token: str
    """The token itself: shown this once, never again."""


def _token_out(record: AccessToken) -> dict[str, object]:
    scoped = record.app_id is not None
    return {
        "id": record.id,
        "name": record.name,
        "app_id": record.app_id,
        "capabilities": sorted(c.value for c in record.capabilities) if scoped else None,
        "read_only": scoped and record.capabilities <= READING,
        "session_id": record.session_id,
        "configured": record.configured,
        "created_at": record.created_at,
        "expires_at": record.expires_at,
        "last_used_at": record.last_used_at,
        "allowed_networks": (
            None if record.allowed_networks is None else [str(n) for n in record.allowed_networks]
        ),
    }


async def create_token(ops: Operations, request: Request) -> Response:
    body = params.body(TokenIn, request, optional=True)
    issued = await tokens.create_token(
        ops,
        request.caller,
        tokens.TokenRequest(
            app_key=body.app_id,
            name=body.name,
            expires_in=None if body.expiry is None else timedelta(seconds=body.expiry),
            capabilities=None if body.capabilities is None else frozenset(body.capabilities),
            read_only=body.read_only,
            allowed_networks=body.allowed_networks,
        ),
    )
    out = TokenCreatedOut(**_token_out(issued.record), token=issued.token)
    return model_response(201, out)


async def list_tokens(ops: Operations, request: Request) -> Response:
    found = await tokens.list_tokens(ops, request.caller, request.query_one("app_id") or None)
    data = [TokenOut(**_token_out(t)).model_dump(mode="json", by_alias=True) for t in found]
    return json_response(200, {"data": data, "iterator": None, "prevIterator": None, "done": True})


async def get_token(ops: Operations, request: Request) -> Response:
    found = await tokens.get_token(ops, request.caller, request.path_params["token_id"])
    return model_response(200, TokenOut(**_token_out(found)))


async def patch_token(ops: Operations, request: Request) -> Response:
    body = params.body(TokenPatchIn, request)
    token_id = request.path_params["token_id"]
    if "allowed_networks" in body.model_fields_set:
        found = await tokens.set_allowed_networks(
            ops, request.caller, token_id, body.allowed_networks
        )
    else:
        found = await tokens.get_token(ops, request.caller, token_id)
    return model_response(200, TokenOut(**_token_out(found)))


async def revoke_token(ops: Operations, request: Request) -> Response:
    await tokens.revoke_token(ops, request.caller, request.path_params["token_id"])
    return empty_response()


async def logout(ops: Operations, request: Request) -> Response:
    await tokens.logout(ops, request.caller)
    return empty_response()


async def expire_all(ops: Operations, request: Request) -> Response:
    body = params.body(ApplicationTokenExpireIn, request, optional=True)
    sessions = None if body.session_ids is None else frozenset(body.session_ids)
    await tokens.expire_all(
        ops, request.caller, request.app_key, timedelta(seconds=body.expiry), sessions
    )
    return empty_response()


TOKEN = "/api/v1/token/{token_id}"

ROUTES = [
    Route(
        "POST",
        "/api/v1/auth/logout",
        logout,
        "Revoke the calling application-scoped token",
        "Authentication",
        Access.APP,
        capability=Capability.VIEW_BASE,
        status=204,
    ),
    Route(
        "POST",
        "/api/v1/auth/app/{app_id}/expire-all",
        expire_all,
        "Expire an application's tokens",
        "Authentication",
        Access.ADMIN,
        body=ApplicationTokenExpireIn,
        status=204,
    ),
    Route(
        "GET",
        "/api/v1/token",
        list_tokens,
        "List tokens, never their secret values (hookline)",
        "Token",
        Access.ADMIN,
        response=s.ListResponse[TokenOut],
        query=("app_id",),
    ),
    Route(
        "POST",
        "/api/v1/token",
        create_token,
        "Create a token, shown once (hookline)",
        "Token",
        Access.ADMIN,
        body=TokenIn,
        response=TokenCreatedOut,
        status=201,
        replays=False,
    ),
    Route(
        "GET", TOKEN, get_token, "Get a token (hookline)", "Token", Access.ADMIN, response=TokenOut
    ),
    Route(
        "PATCH",
        TOKEN,
        patch_token,
        "Change where a token may be used from (hookline)",
        "Token",
        Access.ADMIN,
        body=TokenPatchIn,
        response=TokenOut,
    ),
    Route(
        "DELETE",
        TOKEN,
        revoke_token,
        "Revoke a token (hookline)",
        "Token",
        Access.ADMIN,
        status=204,
    ),
]
