"""The endpoint authentication routes (``…/oauth``, ``…/mtls``, ``…/basic-auth``) through the
real API: Svix's shapes, reads that never show a secret, 422s that say what is wrong and
change nothing, 409 for Basic beside OAuth, and the capabilities they need."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from hookline.domain.endpoint_auth import BasicAuth, OAuthClient, OAuthMethod
from tests.integration.certificates import CertificateAuthority, Issued
from tests.integration.conftest import Api

EP = "/api/v1/app/acme/endpoint/ep"
CLIENT_SECRET = "client-secret-that-must-never-be-shown"
PASSWORD = "basic-password-that-must-never-be-shown"
OAUTH: dict[str, Any] = {
    "authMethod": "clientSecretPost",
    "clientId": "hookline-client",
    "clientSecret": CLIENT_SECRET,
    "grantType": "clientCredentials",
    "tokenUrl": "https://auth.example.com/oauth/token",
    "scopes": ["webhooks.write"],
    "extraParams": {"audience": "https://rx.example.com"},
}


@pytest.fixture
async def endpoint(api: Api) -> str:
    """An application ``acme`` with an endpoint ``ep``; its id."""
    assert (await api.client.post("/api/v1/app", json={"name": "Acme", "uid": "acme"})).is_success
    r = await api.client.post(
        "/api/v1/app/acme/endpoint", json={"url": "https://rx.example.com/h", "uid": "ep"}
    )
    assert r.status_code == 201
    return str(r.json()["id"])


@pytest.fixture(scope="module")
def client_certificate() -> Issued:
    return CertificateAuthority("api-test-ca").issue("hookline-sender", client=True)


async def _stored(api: Api, endpoint_id: str) -> Any:
    app = await api.store.get_application("acme")
    assert app is not None
    found = await api.store.get_endpoint(app.id, endpoint_id)
    assert found is not None
    return found.auth


async def test_oauth_is_set_read_without_its_secret_and_removed(api: Api, endpoint: str) -> None:
    """PUT stores Svix's EndpointOauthConfigIn; GET answers EndpointOauthConfigOut, which
    has no clientSecret; DELETE removes it and a GET is then 404."""
    assert (await api.client.put(f"{EP}/oauth", json=OAUTH)).status_code == 204
    r = await api.client.get(f"{EP}/oauth")
    assert r.status_code == 200
    assert r.json() == {
        "authMethod": "clientSecretPost",
        "clientId": "hookline-client",
        "extraParams": {"audience": "https://rx.example.com"},
        "grantType": "clientCredentials",
        "scopes": ["webhooks.write"],
        "tokenUrl": "https://auth.example.com/oauth/token",
    }
    assert CLIENT_SECRET not in r.text
    stored = await _stored(api, endpoint)
    assert stored.oauth == OAuthClient(
        token_url=OAUTH["tokenUrl"],
        client_id="hookline-client",
        client_secret=CLIENT_SECRET,
        method=OAuthMethod.CLIENT_SECRET_POST,
        scopes=("webhooks.write",),
        extra_params=(("audience", "https://rx.example.com"),),
    )
    endpoint_read = await api.client.get(EP)
    assert CLIENT_SECRET not in endpoint_read.text
    assert (await api.client.delete(f"{EP}/oauth")).status_code == 204
    missing = await api.client.get(f"{EP}/oauth")
    assert (missing.status_code, missing.json()["code"]) == (404, "not_found")
    assert await _stored(api, endpoint) is None
    assert (await api.client.delete(f"{EP}/oauth")).status_code == 204


async def test_mtls_is_set_and_shows_the_certificate_not_the_key(
    api: Api, endpoint: str, client_certificate: Issued
) -> None:
    """Svix's EndpointMtlsConfigIn: the identity (key and certificate) and a CA bundle; the
    read shows the CA bundle and the certificate's subject, issuer and expiry."""
    ca = CertificateAuthority("receiver-ca")
    body = {
        "identity": client_certificate.key + client_certificate.certificate,
        "serverCaCert": ca.pem,
    }
    assert (await api.client.put(f"{EP}/mtls", json=body)).status_code == 204
    r = await api.client.get(f"{EP}/mtls")
    assert r.status_code == 200
    shown = r.json()
    assert shown["serverCaCert"] == ca.pem
    assert shown["clientCertificate"]["subject"] == "CN=hookline-sender"
    assert shown["clientCertificate"]["issuer"] == "CN=api-test-ca"
    assert "PRIVATE KEY" not in r.text
    stored = await _stored(api, endpoint)
    assert stored.mtls.certificate == client_certificate.certificate
    assert (await api.client.delete(f"{EP}/mtls")).status_code == 204
    assert (await api.client.get(f"{EP}/mtls")).status_code == 404


async def test_a_ca_bundle_alone_is_accepted(api: Api, endpoint: str) -> None:
    """hookline's extension: trust a private CA without presenting a certificate."""
    ca = CertificateAuthority("private")
    assert (await api.client.put(f"{EP}/mtls", json={"serverCaCert": ca.pem})).status_code == 204
    r = await api.client.get(f"{EP}/mtls")
    assert r.json() == {"serverCaCert": ca.pem, "clientCertificate": None}


async def test_basic_auth_is_set_and_shows_the_username_only(api: Api, endpoint: str) -> None:
    login = {"username": "hookline", "password": PASSWORD}
    assert (await api.client.put(f"{EP}/basic-auth", json=login)).status_code == 204
    r = await api.client.get(f"{EP}/basic-auth")
    assert (r.status_code, r.json()) == (200, {"username": "hookline"})
    assert (await _stored(api, endpoint)).basic == BasicAuth("hookline", PASSWORD)
    assert (await api.client.delete(f"{EP}/basic-auth")).status_code == 204
    assert (await api.client.get(f"{EP}/basic-auth")).status_code == 404


async def test_basic_and_oauth_exclude_each_other_with_a_409(api: Api, endpoint: str) -> None:
    """Both write Authorization: the second is refused with a 409 saying which to remove,
    and mTLS goes with either."""
    login = {"username": "u", "password": PASSWORD}
    assert (await api.client.put(f"{EP}/basic-auth", json=login)).status_code == 204
    r = await api.client.put(f"{EP}/oauth", json=OAUTH)
    assert (r.status_code, r.json()["code"]) == (409, "endpoint_auth_conflict")
    assert "basic-auth" in r.json()["detail"]
    assert (
        await api.client.put(f"{EP}/mtls", json={"serverCaCert": CertificateAuthority("c").pem})
    ).status_code == 204
    assert (await api.client.delete(f"{EP}/basic-auth")).status_code == 204
    assert (await api.client.put(f"{EP}/oauth", json=OAUTH)).status_code == 204
    r = await api.client.put(f"{EP}/basic-auth", json=login)
    assert (r.status_code, r.json()["code"]) == (409, "endpoint_auth_conflict")
    stored = await _stored(api, endpoint)
    assert stored.basic is None and stored.oauth is not None and stored.mtls is not None


def _bad_bodies(issued: Issued, other: Issued) -> list[tuple[str, dict[str, Any], str, str]]:
    """(route, body, field at fault, words the message must hold)."""
    return [
        ("oauth", {**OAUTH, "tokenUrl": "ftp://auth.example.com"}, "tokenUrl", "http"),
        ("oauth", {**OAUTH, "tokenUrl": "https://a.example:99999/t"}, "tokenUrl", "port"),
        ("oauth", {k: v for k, v in OAUTH.items() if k != "clientId"}, "clientId", "required"),
        (
            "oauth",
            {k: v for k, v in OAUTH.items() if k != "clientSecret"},
            "clientSecret",
            "required",
        ),
        ("oauth", {**OAUTH, "authMethod": "clientSecretJwt"}, "authMethod", "clientSecretBasic"),
        ("oauth", {**OAUTH, "grantType": "refreshToken"}, "grantType", "clientCredentials"),
        ("oauth", {**OAUTH, "refreshToken": "r"}, "body", "not supported"),
        ("oauth", {**OAUTH, "extraParams": {"client_secret": "x"}}, "extraParams", "client_secret"),
        ("oauth", {**OAUTH, "scopes": ["a b"]}, "scopes", "RFC 6749"),
        (
            "mtls",
            {"identity": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"},
            "identity",
            "CERTIFICATE",
        ),
        ("mtls", {"identity": "garbage"}, "identity", "private key"),
        ("mtls", {"identity": other.key + issued.certificate}, "identity", "does not belong"),
        ("mtls", {}, "identity", "required"),
        (
            "mtls",
            {"identity": issued.key + issued.certificate, "serverCaCert": "nope"},
            "serverCaCert",
            "CERTIFICATE",
        ),
        ("basic-auth", {"username": "a:b", "password": "p"}, "username", "':'"),
        ("basic-auth", {"username": "a"}, "password", "required"),
        ("basic-auth", {"username": "a", "password": "p\r\nX-Evil: 1"}, "password", "control"),
    ]


async def test_bad_input_is_a_422_naming_the_field_and_changes_nothing(
    api: Api, endpoint: str, client_certificate: Issued
) -> None:
    """Bad URLs, missing fields, unsupported methods, bad PEM and a key of another
    certificate: each a 422 with the field in ``loc`` and a message that says what to send
    and quotes no secret; the endpoint keeps no credentials."""
    other = CertificateAuthority("other").issue("other", client=True)
    for route, body, field, words in _bad_bodies(client_certificate, other):
        r = await api.client.put(f"{EP}/{route}", json=body)
        assert r.status_code == 422, (route, body, r.text)
        (error,) = r.json()["detail"]
        assert error["loc"][-1] == field or field == "body", (route, error)
        assert words.lower() in error["msg"].lower(), (route, error)
        for secret in (CLIENT_SECRET, client_certificate.key, other.key):
            assert secret not in r.text
    assert await _stored(api, endpoint) is None


async def test_an_unknown_endpoint_is_a_404(api: Api, endpoint: str) -> None:
    for route, body in (("oauth", OAUTH), ("basic-auth", {"username": "u", "password": "p"})):
        r = await api.client.put(f"/api/v1/app/acme/endpoint/nope/{route}", json=body)
        assert r.status_code == 404
        assert (await api.client.get(f"/api/v1/app/acme/endpoint/nope/{route}")).status_code == 404


async def test_a_read_only_token_can_neither_change_nor_read_credentials(
    api: Api, endpoint: str
) -> None:
    """readOnly holds ViewBase only: every credential route is 403 and nothing changes; a
    token that may view secrets reads the (redacted) settings but cannot change them."""
    assert (await api.client.put(f"{EP}/oauth", json=OAUTH)).status_code == 204
    r = await api.client.post("/api/v1/auth/app-portal-access/acme", json={"readOnly": True})
    async with api.as_token(str(r.json()["token"])) as read_only:
        for route in ("oauth", "mtls", "basic-auth"):
            assert (await read_only.get(f"{EP}/{route}")).status_code == 403
            assert (await read_only.delete(f"{EP}/{route}")).status_code == 403
        changed = await read_only.put(f"{EP}/oauth", json={**OAUTH, "clientId": "evil"})
        assert changed.status_code == 403
    viewing = {"readOnly": True, "capabilities": ["ViewEndpointSecret"]}
    r = await api.client.post("/api/v1/auth/app-portal-access/acme", json=viewing)
    async with api.as_token(str(r.json()["token"])) as viewer:
        shown = await viewer.get(f"{EP}/oauth")
        assert shown.status_code == 200 and CLIENT_SECRET not in shown.text
        assert (await viewer.put(f"{EP}/oauth", json=OAUTH)).status_code == 403
    assert (await _stored(api, endpoint)).oauth.client_id == "hookline-client"


def _p192_identity() -> str:
    """A self-signed certificate on a P-192 key: well-formed PEM that ``cryptography``
    parses, below the security level OpenSSL accepts at a handshake."""
    key = ec.generate_private_key(ec.SECP192R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "weak")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return private + certificate.public_bytes(serialization.Encoding.PEM).decode()


async def test_an_identity_openssl_would_refuse_at_every_handshake_is_a_422(
    api: Api, endpoint: str
) -> None:
    """The settings are tried as a TLS context on input: a key below OpenSSL's security
    level is refused now, with OpenSSL's reason, instead of failing every attempt."""
    r = await api.client.put(f"{EP}/mtls", json={"identity": _p192_identity()})
    assert r.status_code == 422, r.text
    (error,) = r.json()["detail"]
    assert error["loc"] == ["body", "identity"]
    assert "cannot be used for TLS" in error["msg"] and "too small" in error["msg"]
    assert "PRIVATE KEY" not in r.text
    assert await _stored(api, endpoint) is None
