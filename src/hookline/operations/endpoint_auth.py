"""Endpoint authentication: set, read and remove an endpoint's HTTP Basic credentials, its
OAuth2 client credentials and its mutual-TLS settings (docs/security.md, "Endpoint
authentication").

Each change is an endpoint update (``endpoints.change``: versioned, retried on a race,
announced), so a worker's next claim carries it. What is read back never holds a secret in
full: the faces show what ``OAuthShown``, ``MtlsShown`` and ``BasicShown`` hold.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from hookline.domain import audit as a
from hookline.domain import validation as v
from hookline.domain.endpoint_auth import (
    NO_AUTH,
    AuthInputError,
    BasicAuth,
    CertificateSummary,
    EndpointAuth,
    MutualTls,
    OAuthClient,
    OAuthMethod,
    basic_auth,
    certificate_summary,
    mutual_tls,
    oauth_client,
)
from hookline.domain.errors import Conflict, InvalidRequest, NotFound
from hookline.domain.models import Endpoint
from hookline.domain.ssrf import destination_reason
from hookline.operations import applications, endpoints, inputs
from hookline.operations.context import Operations
from hookline.operations.principal import Principal
from hookline.transport import TlsOptions, tls_refusal


@dataclass(frozen=True, slots=True)
class OAuthInput:
    """Svix's ``EndpointOauthConfigIn``, as the faces hand it over."""

    token_url: str
    client_id: str
    client_secret: str | None
    auth_method: str = OAuthMethod.CLIENT_SECRET_BASIC.value
    grant_type: str = "clientCredentials"
    scopes: Sequence[str] | None = None
    extra_params: Mapping[str, str] | None = None


@dataclass(frozen=True, slots=True)
class MtlsShown:
    """An endpoint's mutual TLS as it may be shown: the CA bundle (public) and a summary of
    the client certificate; never its key."""

    server_ca: str | None
    certificate: CertificateSummary | None


def _invalid(exc: AuthInputError) -> InvalidRequest:
    return InvalidRequest(str(exc), loc=("body", exc.field))


def _auth(endpoint: Endpoint) -> EndpointAuth:
    return endpoint.auth or NO_AUTH


def _stored(auth: EndpointAuth) -> EndpointAuth | None:
    return None if auth.empty else auth


async def _change(
    ops: Operations,
    principal: Principal,
    app_key: str,
    key: str,
    apply: Callable[[EndpointAuth], EndpointAuth],
    setting: str,
    removed: bool = False,
) -> Endpoint:
    """Apply ``apply`` to the endpoint's credentials as read (again, on a lost race). The
    audit log names the setting (``oauth``, ``mtls``, ``basic-auth``) and whether it was set
    or removed, never a credential."""
    app = await applications.resolve(ops, principal, app_key)

    def changed(endpoint: Endpoint) -> Endpoint:
        auth = _stored(apply(_auth(endpoint)))
        return replace(endpoint, auth=auth, updated_at=ops.clock())

    summary = {"setting": setting, "change": "removed" if removed else "set"}
    return await endpoints.change(ops, principal, app, key, changed, a.AUTH_CHANGED, summary)


def _no_other_authorization(auth: EndpointAuth, setting: str) -> None:
    """HTTP Basic and OAuth both write ``Authorization``: the other must go first."""
    if setting == "basic-auth" and auth.oauth is not None:
        other, route = "OAuth", "oauth"
    elif setting == "oauth" and auth.basic is not None:
        other, route = "HTTP Basic", "basic-auth"
    else:
        return
    raise Conflict(
        f"This endpoint already authenticates with {other}, which also sets Authorization; "
        f"remove it first (DELETE /api/v1/app/{{app_id}}/endpoint/{{endpoint_id}}/{route})",
        code="endpoint_auth_conflict",
    )


# -- OAuth ----------------------------------------------------------------------------------


def check_oauth(ops: Operations, given: OAuthInput) -> OAuthClient:
    """The client credentials an input describes, or a 422 naming the field at fault."""
    if given.grant_type != "clientCredentials":
        raise InvalidRequest(
            "grantType must be clientCredentials; hookline supports no other grant",
            loc=("body", "grantType"),
        )
    try:
        method = OAuthMethod(given.auth_method)
    except ValueError:
        raise InvalidRequest(
            "authMethod must be clientSecretBasic or clientSecretPost "
            "(clientSecretJwt is not supported)",
            loc=("body", "authMethod"),
        ) from None
    loc = ("body", "tokenUrl")
    inputs.valid(loc, v.check_url, given.token_url)
    reason = destination_reason(
        given.token_url, https_only=ops.endpoint_https_only, ports=ops.ports
    )
    if reason is not None:
        raise InvalidRequest(f"tokenUrl {reason}", loc=loc)
    try:
        return oauth_client(
            token_url=given.token_url,
            client_id=given.client_id,
            client_secret=given.client_secret,
            method=method,
            scopes=given.scopes,
            extra_params=given.extra_params,
        )
    except AuthInputError as exc:
        raise _invalid(exc) from None


async def oauth(ops: Operations, principal: Principal, app_key: str, key: str) -> OAuthClient:
    """The endpoint's OAuth client credentials (the faces show them without the secret)."""
    found = _auth(await endpoints.get(ops, principal, app_key, key)).oauth
    if found is None:
        raise NotFound("This endpoint has no OAuth configuration")
    return found


async def set_oauth(
    ops: Operations, principal: Principal, app_key: str, key: str, given: OAuthInput
) -> Endpoint:
    """Authenticate the endpoint's deliveries with a bearer token from ``tokenUrl``."""
    client = check_oauth(ops, given)

    def apply(auth: EndpointAuth) -> EndpointAuth:
        _no_other_authorization(auth, "oauth")
        return replace(auth, oauth=client)

    return await _change(ops, principal, app_key, key, apply, "oauth")


async def delete_oauth(ops: Operations, principal: Principal, app_key: str, key: str) -> Endpoint:
    """Stop using OAuth (nothing to remove is no error: the end state is the same)."""
    return await _change(
        ops, principal, app_key, key, lambda auth: replace(auth, oauth=None), "oauth", removed=True
    )


# -- mutual TLS -----------------------------------------------------------------------------


def check_mtls(identity: str | None, server_ca: str | None, now: datetime) -> MutualTls:
    """The PEM rules (``domain.endpoint_auth``), then OpenSSL's own judgement: a context is
    built from the settings once, so what it would refuse at every handshake (a key below
    its security level, say) is a 422 now."""
    try:
        checked = mutual_tls(identity, server_ca, now)
    except AuthInputError as exc:
        raise _invalid(exc) from None
    tls = TlsOptions(checked.server_ca, checked.certificate, checked.key)
    reason = tls_refusal(tls)
    if reason is not None:
        field = "identity" if checked.certificate is not None else "serverCaCert"
        raise InvalidRequest(f"{field} cannot be used for TLS: {reason}", loc=("body", field))
    return checked


async def mtls(ops: Operations, principal: Principal, app_key: str, key: str) -> MtlsShown:
    found = _auth(await endpoints.get(ops, principal, app_key, key)).mtls
    if found is None:
        raise NotFound("This endpoint has no mTLS configuration")
    summary = None if found.certificate is None else certificate_summary(found.certificate)
    return MtlsShown(found.server_ca, summary)


async def set_mtls(
    ops: Operations,
    principal: Principal,
    app_key: str,
    key: str,
    identity: str | None,
    server_ca: str | None,
) -> Endpoint:
    """Present ``identity`` (a PEM key and certificate) to the receiver, and trust
    ``server_ca`` for it instead of the system's CAs; either may be left out, not both."""
    checked = check_mtls(identity, server_ca, ops.clock())
    return await _change(
        ops, principal, app_key, key, lambda auth: replace(auth, mtls=checked), "mtls"
    )


async def delete_mtls(ops: Operations, principal: Principal, app_key: str, key: str) -> Endpoint:
    return await _change(
        ops, principal, app_key, key, lambda auth: replace(auth, mtls=None), "mtls", removed=True
    )


# -- HTTP Basic -----------------------------------------------------------------------------


def check_basic(username: str, password: str) -> BasicAuth:
    try:
        return basic_auth(username, password)
    except AuthInputError as exc:
        raise _invalid(exc) from None


async def basic(ops: Operations, principal: Principal, app_key: str, key: str) -> BasicAuth:
    """The endpoint's HTTP Basic credentials (the faces show the username only)."""
    found = _auth(await endpoints.get(ops, principal, app_key, key)).basic
    if found is None:
        raise NotFound("This endpoint has no HTTP Basic configuration")
    return found


async def set_basic(
    ops: Operations, principal: Principal, app_key: str, key: str, username: str, password: str
) -> Endpoint:
    """Send ``Authorization: Basic`` with these credentials on every attempt."""
    credentials = check_basic(username, password)

    def apply(auth: EndpointAuth) -> EndpointAuth:
        _no_other_authorization(auth, "basic-auth")
        return replace(auth, basic=credentials)

    return await _change(ops, principal, app_key, key, apply, "basic-auth")


async def delete_basic(ops: Operations, principal: Principal, app_key: str, key: str) -> Endpoint:
    return await _change(
        ops,
        principal,
        app_key,
        key,
        lambda auth: replace(auth, basic=None),
        "basic-auth",
        removed=True,
    )
