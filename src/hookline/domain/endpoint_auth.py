"""Endpoint authentication: the credentials hookline presents to a receiver, beyond custom
headers (docs/security.md, "Endpoint authentication").

Three kinds, each optional and set apart from the others: HTTP Basic (``BasicAuth``), OAuth2
client credentials (``OAuthClient``: a bearer token fetched from the receiver's token URL),
and mutual TLS (``MutualTls``: a client certificate, and a CA bundle to trust instead of the
system's). Basic and OAuth both write ``Authorization``, so an endpoint has at most one of
them; mutual TLS goes with either.

Everything here is pure: the rules an input obeys (PEM text is parsed and checked with
``cryptography``, no file or socket touched), the token request's form, what a token
server's answer means and how long a token is used. Nothing secret is ever put in an error
message: a refused PEM or secret is described, never quoted.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any
from urllib.parse import quote, urlencode

import orjson
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, rsa

MAX_USERNAME_LENGTH = 256
MAX_PASSWORD_LENGTH = 1024
MAX_CLIENT_ID_LENGTH = 512
MAX_CLIENT_SECRET_LENGTH = 4096
MAX_SCOPES = 50
MAX_SCOPE_LENGTH = 256
MAX_EXTRA_PARAMS = 20
MAX_PARAM_NAME_LENGTH = 128
MAX_PARAM_VALUE_LENGTH = 4096
MAX_IDENTITY_LENGTH = 64 * 1024
"""A private key and its certificate chain, as PEM text."""
MAX_CA_BUNDLE_LENGTH = 512 * 1024
"""A CA bundle as PEM text (the whole Mozilla bundle is about 220 KB)."""
MIN_RSA_BITS = 2048
"""OpenSSL's default security level refuses smaller RSA keys at the handshake."""

RESERVED_PARAMS = frozenset({"grant_type", "client_id", "client_secret", "scope"})
"""Token request parameters hookline writes itself; ``extraParams`` may not set them."""

_SCOPE_TOKEN = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]+$")
"""RFC 6749, 3.3: a scope token is printable ASCII without space, '"' and '\\'."""
_PARAM_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")
_PEM_BLOCK = re.compile(
    r"-----BEGIN ([A-Z0-9 ]+)-----\r?\n(.*?)-----END \1-----", re.DOTALL | re.ASCII
)
_KEY_LABELS = frozenset({"PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY"})


class AuthInputError(ValueError):
    """A credential breaks a rule; ``field`` is its wire name (``clientSecret``), and the
    message says what to send without quoting what was sent."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


# -- the credentials ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BasicAuth:
    """RFC 7617: a user id and a password, sent in ``Authorization`` on every attempt."""

    username: str
    password: str = field(repr=False)

    def header(self) -> str:
        pair = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")


class OAuthMethod(StrEnum):
    """How the client authenticates to the token URL (Svix's ``Oauth2AuthMethodIn``;
    ``clientSecretJwt`` is not supported)."""

    CLIENT_SECRET_BASIC = "clientSecretBasic"
    """RFC 6749, 2.3.1: the id and secret in ``Authorization: Basic``."""
    CLIENT_SECRET_POST = "clientSecretPost"
    """RFC 6749, 2.3.1: the id and secret as ``client_id`` and ``client_secret`` fields."""


@dataclass(frozen=True, slots=True)
class OAuthClient:
    """RFC 6749, 4.4: the client credentials grant against ``token_url``."""

    token_url: str
    client_id: str
    client_secret: str = field(repr=False)
    method: OAuthMethod = OAuthMethod.CLIENT_SECRET_BASIC
    scopes: tuple[str, ...] = ()
    extra_params: tuple[tuple[str, str], ...] = ()
    """Further form fields (an ``audience``, a ``resource``), in the order given."""

    def token_request(self) -> tuple[bytes, dict[str, str]]:
        """The token request's form body and headers."""
        form: list[tuple[str, str]] = [("grant_type", "client_credentials")]
        if self.scopes:
            form.append(("scope", " ".join(self.scopes)))
        form.extend(self.extra_params)
        headers = {
            "content-type": "application/x-www-form-urlencoded",
            "accept": "application/json",
        }
        if self.method is OAuthMethod.CLIENT_SECRET_POST:
            form += [("client_id", self.client_id), ("client_secret", self.client_secret)]
        else:
            # 2.3.1: each part form-encoded before the pair is base64-encoded.
            pair = f"{quote(self.client_id, safe='')}:{quote(self.client_secret, safe='')}"
            headers["authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        return urlencode(form).encode("ascii"), headers


@dataclass(frozen=True, slots=True)
class MutualTls:
    """A client certificate (its chain may follow) with its private key, and a CA bundle
    trusted for the receiver instead of the system's. Either half may be absent, not both."""

    certificate: str | None = None
    key: str | None = field(default=None, repr=False)
    server_ca: str | None = None

    def __post_init__(self) -> None:
        if (self.certificate is None) != (self.key is None):
            raise ValueError("a client certificate and its private key go together")
        if self.certificate is None and self.server_ca is None:
            raise ValueError("mutual TLS needs a client certificate or a CA bundle")


@dataclass(frozen=True, slots=True)
class EndpointAuth:
    """An endpoint's credentials; stored whole, encrypted, as one column."""

    basic: BasicAuth | None = None
    oauth: OAuthClient | None = None
    mtls: MutualTls | None = None

    def __post_init__(self) -> None:
        if self.basic is not None and self.oauth is not None:
            raise ValueError("HTTP Basic and OAuth both set Authorization: one at a time")

    @property
    def empty(self) -> bool:
        return self.basic is None and self.oauth is None and self.mtls is None

    def to_json(self) -> dict[str, Any]:
        """The stored form (secrets included: the row codec seals the whole of it)."""
        stored: dict[str, Any] = {}
        if self.basic is not None:
            stored["basic"] = {"username": self.basic.username, "password": self.basic.password}
        if self.oauth is not None:
            oauth = self.oauth
            stored["oauth"] = {
                "tokenUrl": oauth.token_url,
                "clientId": oauth.client_id,
                "clientSecret": oauth.client_secret,
                "authMethod": oauth.method.value,
                "scopes": list(oauth.scopes),
                "extraParams": [list(pair) for pair in oauth.extra_params],
            }
        if self.mtls is not None:
            mtls = self.mtls
            stored["mtls"] = {
                "certificate": mtls.certificate,
                "key": mtls.key,
                "serverCa": mtls.server_ca,
            }
        return stored

    @classmethod
    def from_json(cls, stored: Mapping[str, Any]) -> EndpointAuth:
        basic = stored.get("basic")
        oauth = stored.get("oauth")
        mtls = stored.get("mtls")
        return cls(
            basic=None if basic is None else BasicAuth(basic["username"], basic["password"]),
            oauth=None
            if oauth is None
            else OAuthClient(
                token_url=oauth["tokenUrl"],
                client_id=oauth["clientId"],
                client_secret=oauth["clientSecret"],
                method=OAuthMethod(oauth["authMethod"]),
                scopes=tuple(oauth["scopes"]),
                extra_params=tuple((name, value) for name, value in oauth["extraParams"]),
            ),
            mtls=None
            if mtls is None
            else MutualTls(mtls["certificate"], mtls["key"], mtls["serverCa"]),
        )

    def dumps(self) -> str | None:
        """The column's text; None (SQL NULL) for no credentials."""
        return None if self.empty else orjson.dumps(self.to_json()).decode()

    @classmethod
    def loads(cls, text: str | None) -> EndpointAuth | None:
        return None if text is None else cls.from_json(orjson.loads(text))


NO_AUTH = EndpointAuth()


def with_authorization(headers: Mapping[str, str], authorization: str | None) -> Mapping[str, str]:
    """The request headers with ``authorization`` replacing any custom header of that name
    (in any case): configured credentials win over a hand-written header."""
    if authorization is None:
        return headers
    merged = {name: value for name, value in headers.items() if name.lower() != "authorization"}
    merged["authorization"] = authorization
    return merged


# -- input rules ----------------------------------------------------------------------------


def _plain_text(value: str, wire: str, most: int, *, least: int = 1) -> str:
    if not least <= len(value) <= most:
        raise AuthInputError(wire, f"{wire} must be {least} to {most} characters")
    if any(not c.isprintable() for c in value):
        raise AuthInputError(wire, f"{wire} must not contain control characters or line breaks")
    return value


def basic_auth(username: str, password: str) -> BasicAuth:
    """RFC 7617: the user id may not hold ':'; neither may hold a control character."""
    _plain_text(username, "username", MAX_USERNAME_LENGTH)
    if ":" in username:
        raise AuthInputError("username", "username must not contain ':' (RFC 7617)")
    _plain_text(password, "password", MAX_PASSWORD_LENGTH, least=0)
    return BasicAuth(username, password)


def oauth_client(
    *,
    token_url: str,
    client_id: str,
    client_secret: str | None,
    method: OAuthMethod,
    scopes: Sequence[str] | None,
    extra_params: Mapping[str, str] | None,
) -> OAuthClient:
    """The client credentials an input describes; ``token_url`` must already have passed
    the URL rules (``validation.check_url`` and the operator's destination rules)."""
    _plain_text(client_id, "clientId", MAX_CLIENT_ID_LENGTH)
    if client_secret is None or client_secret == "":
        raise AuthInputError(
            "clientSecret", f"clientSecret is required with authMethod {method.value}"
        )
    _plain_text(client_secret, "clientSecret", MAX_CLIENT_SECRET_LENGTH)
    given_scopes = tuple(scopes or ())
    if len(given_scopes) > MAX_SCOPES:
        raise AuthInputError("scopes", f"scopes may name at most {MAX_SCOPES} scopes")
    for scope in given_scopes:
        if len(scope) > MAX_SCOPE_LENGTH or not _SCOPE_TOKEN.match(scope):
            raise AuthInputError(
                "scopes",
                f"each scope must be 1 to {MAX_SCOPE_LENGTH} printable ASCII characters "
                "without spaces, '\"' or '\\' (RFC 6749, 3.3)",
            )
    params = dict(extra_params or {})
    if len(params) > MAX_EXTRA_PARAMS:
        raise AuthInputError("extraParams", f"extraParams may hold at most {MAX_EXTRA_PARAMS}")
    for name, value in params.items():
        if not 1 <= len(name) <= MAX_PARAM_NAME_LENGTH or not _PARAM_NAME.match(name):
            raise AuthInputError(
                "extraParams",
                f"each extraParams name must be 1 to {MAX_PARAM_NAME_LENGTH} characters of "
                "a-z, A-Z, 0-9, '_', '.', '-'",
            )
        if name in RESERVED_PARAMS:
            raise AuthInputError(
                "extraParams",
                f"extraParams may not set {name!r}: hookline writes it (use "
                + ("scopes" if name == "scope" else "the matching field")
                + ")",
            )
        _plain_text(value, "extraParams", MAX_PARAM_VALUE_LENGTH, least=0)
    return OAuthClient(
        token_url=token_url,
        client_id=client_id,
        client_secret=client_secret,
        method=method,
        scopes=given_scopes,
        extra_params=tuple(params.items()),
    )


@dataclass(frozen=True, slots=True)
class CertificateSummary:
    """What may be shown of a client certificate: nothing of its key."""

    subject: str
    issuer: str
    not_before: datetime
    not_after: datetime
    fingerprint_sha256: str
    """Hex of the SHA-256 of the certificate's DER, as ``openssl x509 -fingerprint``."""


def _blocks(text: str) -> list[tuple[str, str]]:
    """Each PEM block's label and whole text; text between blocks is ignored, as OpenSSL
    does (``openssl pkcs12`` writes "Bag Attributes" there)."""
    return [(found.group(1), found.group(0)) for found in _PEM_BLOCK.finditer(text)]


def _certificate(block: str, wire: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(block.encode("ascii"))
    except ValueError:
        raise AuthInputError(wire, f"{wire} holds a CERTIFICATE block that is not valid") from None


def _spki(public: Any) -> bytes:
    encoded: bytes = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return encoded


def mutual_tls(identity: str | None, server_ca: str | None, now: datetime) -> MutualTls:
    """Svix's ``EndpointMtlsConfigIn``: ``identity`` is a PEM private key (unencrypted) and
    the certificate it belongs to, which may be followed by its chain; ``serverCaCert`` the
    PEM certificates trusted for the receiver. What is stored is normalised: the key as
    PKCS #8, the certificates as given, in order."""
    if identity is None and server_ca is None:
        raise AuthInputError("identity", "identity (a client certificate and key) is required")
    certificate = key = None
    if identity is not None:
        certificate, key = _identity(identity, now)
    ca = None if server_ca is None else _ca_bundle(server_ca)
    return MutualTls(certificate, key, ca)


def _identity(text: str, now: datetime) -> tuple[str, str]:
    wire = "identity"
    if len(text) > MAX_IDENTITY_LENGTH:
        raise AuthInputError(wire, f"identity must be at most {MAX_IDENTITY_LENGTH} characters")
    blocks = _blocks(text)
    if any(
        label == "ENCRYPTED PRIVATE KEY" or (label in _KEY_LABELS and "ENCRYPTED" in block)
        for label, block in blocks
    ):
        raise AuthInputError(
            wire, "identity's private key is encrypted; give it unencrypted (it is stored sealed)"
        )
    keys = [b for label, b in blocks if label in _KEY_LABELS]
    certificates = [_certificate(b, wire) for label, b in blocks if label == "CERTIFICATE"]
    other = sorted({label for label, _ in blocks if label not in _KEY_LABELS | {"CERTIFICATE"}})
    if other:
        raise AuthInputError(
            wire,
            f"identity holds an unexpected PEM block ({', '.join(other)}); it takes a "
            "PRIVATE KEY block and CERTIFICATE blocks",
        )
    if len(keys) != 1:
        raise AuthInputError(
            wire,
            "identity must hold exactly one PEM private key, and the certificate it belongs to"
            + (f" (found {len(keys)} keys)" if keys else ""),
        )
    if not certificates:
        raise AuthInputError(wire, "identity holds no PEM CERTIFICATE for its private key")
    try:
        private = serialization.load_pem_private_key(keys[0].encode("ascii"), password=None)
    except TypeError:
        raise AuthInputError(
            wire, "identity's private key is encrypted; give it unencrypted (it is stored sealed)"
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        raise AuthInputError(
            wire, "identity's private key is not a valid PEM private key"
        ) from None
    if isinstance(private, dsa.DSAPrivateKey):
        raise AuthInputError(wire, "identity's private key is DSA; use RSA, EC or Ed25519")
    if isinstance(private, rsa.RSAPrivateKey) and private.key_size < MIN_RSA_BITS:
        raise AuthInputError(
            wire, f"identity's RSA key has {private.key_size} bits; at least {MIN_RSA_BITS}"
        )
    leaf = certificates[0]
    if _spki(leaf.public_key()) != _spki(private.public_key()):
        raise AuthInputError(
            wire,
            "identity's private key does not belong to its first certificate (the client "
            "certificate comes first, then its chain)",
        )
    if leaf.not_valid_after_utc <= now:
        raise AuthInputError(
            wire, f"identity's certificate expired on {leaf.not_valid_after_utc.isoformat()}"
        )
    key_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")
    chain = "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in certificates)
    return chain, key_pem


def _ca_bundle(text: str) -> str:
    wire = "serverCaCert"
    if len(text) > MAX_CA_BUNDLE_LENGTH:
        raise AuthInputError(
            wire, f"serverCaCert must be at most {MAX_CA_BUNDLE_LENGTH} characters"
        )
    blocks = _blocks(text)
    if any(label != "CERTIFICATE" for label, _ in blocks):
        raise AuthInputError(wire, "serverCaCert must hold only PEM CERTIFICATE blocks")
    if not blocks:
        raise AuthInputError(wire, "serverCaCert holds no PEM CERTIFICATE")
    certificates = [_certificate(b, wire) for _, b in blocks]
    return "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in certificates)


def certificate_summary(chain: str) -> CertificateSummary:
    """The first certificate of a stored chain, as it may be shown."""
    leaf = x509.load_pem_x509_certificate(_blocks(chain)[0][1].encode("ascii"))
    return CertificateSummary(
        subject=leaf.subject.rfc4514_string(),
        issuer=leaf.issuer.rfc4514_string(),
        not_before=leaf.not_valid_before_utc,
        not_after=leaf.not_valid_after_utc,
        fingerprint_sha256=leaf.fingerprint(hashes.SHA256()).hex(),
    )


# -- tokens ---------------------------------------------------------------------------------

DEFAULT_TOKEN_SECONDS = 600.0
"""How long a token without ``expires_in`` is used (RFC 6749 only recommends the field); a
401 from the receiver ends it sooner."""
MAX_TOKEN_SECONDS = 24 * 3600.0
"""The longest a token is used, whatever its ``expires_in`` says."""
REFRESH_MARGIN_SECONDS = 60.0
"""A token is let go this long before it expires (or a tenth of its life, if shorter), so
one fetched just in time does not expire on its way to the receiver."""
MAX_ACCESS_TOKEN_LENGTH = 16 * 1024


@dataclass(frozen=True, slots=True)
class AccessToken:
    """A bearer token and how long it may be used, counted from when it was asked for."""

    value: str = field(repr=False)
    usable_seconds: float

    def header(self) -> str:
        return f"Bearer {self.value}"


def usable_seconds(expires_in: float | None) -> float:
    """How long a token that ``expires_in`` seconds is used before a new one is fetched."""
    if expires_in is None:
        return DEFAULT_TOKEN_SECONDS
    lifetime = min(expires_in, MAX_TOKEN_SECONDS)
    return max(0.0, lifetime - min(REFRESH_MARGIN_SECONDS, lifetime / 10))


_ERROR_CODE = re.compile(r"^[\x20-\x21\x23-\x5b\x5d-\x7e]{1,64}$")
"""RFC 6749, 5.2: an ``error`` code is printable ASCII without '"' and '\\'."""


def token_from_response(status: int, body: bytes) -> AccessToken | str:
    """The token a token server's answer gives, or why there is none. The reason names
    the status and the server's ``error`` code, never the body (which may echo the
    request)."""
    try:
        document = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        document = None
    answer = document if isinstance(document, dict) else {}
    if not 200 <= status < 300:
        code = answer.get("error")
        detail = f" ({code})" if isinstance(code, str) and _ERROR_CODE.match(code) else ""
        return f"the token URL answered HTTP {status}{detail}"
    if not isinstance(document, dict):
        return "the token URL's answer is not a JSON object"
    value = answer.get("access_token")
    if not isinstance(value, str) or not value:
        return "the token URL's answer has no access_token"
    if len(value) > MAX_ACCESS_TOKEN_LENGTH or not value.isprintable() or not value.isascii():
        return "the token URL's access_token is not a usable header value"
    kind = answer.get("token_type", "Bearer")
    if not isinstance(kind, str) or kind.lower() != "bearer":
        return "the token URL's token_type is not Bearer"
    expires_in = answer.get("expires_in")
    seconds: float | None = None
    if isinstance(expires_in, str) and expires_in.isdigit():
        seconds = float(expires_in)  # some servers send the number as a string
    elif isinstance(expires_in, int | float) and not isinstance(expires_in, bool):
        seconds = float(expires_in) if expires_in >= 0 else None
    return AccessToken(value, usable_seconds(seconds))
