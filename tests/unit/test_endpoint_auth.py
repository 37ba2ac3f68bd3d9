"""The pure rules of endpoint authentication (``domain/endpoint_auth.py``): what an input
may be, the token request's form, what a token server's answer means, how long a token is
used, and that no error quotes a secret."""

from __future__ import annotations

import base64
import datetime
import re
from urllib.parse import parse_qsl

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from hookline.domain.endpoint_auth import (
    AccessToken,
    AuthInputError,
    BasicAuth,
    EndpointAuth,
    MutualTls,
    OAuthClient,
    OAuthMethod,
    basic_auth,
    certificate_summary,
    mutual_tls,
    oauth_client,
    token_from_response,
    usable_seconds,
    with_authorization,
)
from tests.integration.certificates import CertificateAuthority, Issued

NOW = datetime.datetime.now(datetime.UTC)
SECRET = "cl13nt-s3cret/with+odd chars"


def _client(
    method: OAuthMethod = OAuthMethod.CLIENT_SECRET_BASIC, **changes: object
) -> OAuthClient:
    given: dict[str, object] = {
        "token_url": "https://auth.example.com/token",
        "client_id": "hook line",
        "client_secret": SECRET,
        "method": method,
        "scopes": ["webhooks:write", "read"],
        "extra_params": {"audience": "https://api.example.com"},
        **changes,
    }
    return oauth_client(**given)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def issued() -> Issued:
    return CertificateAuthority("unit-ca").issue("hookline-client", client=True)


def test_basic_auth_is_the_rfc_7617_header() -> None:
    """``user:password`` in base64 after ``Basic``; the password is kept out of repr."""
    credentials = basic_auth("alice", "pä:ss")
    assert credentials.header() == "Basic " + base64.b64encode("alice:pä:ss".encode()).decode()
    assert "pä:ss" not in repr(credentials)


@pytest.mark.parametrize(
    ("username", "password", "field"),
    [
        ("al:ice", "x", "username"),
        ("", "x", "username"),
        ("alice\r\n", "x", "username"),
        ("alice", "new\nline", "password"),
        ("a" * 257, "x", "username"),
    ],
)
def test_basic_auth_refuses_what_rfc_7617_or_a_header_cannot_carry(
    username: str, password: str, field: str
) -> None:
    """A colon in the user id, control characters or an oversized value are refused, and
    the error names the field without quoting it."""
    with pytest.raises(AuthInputError) as caught:
        basic_auth(username, password)
    assert caught.value.field == field
    assert password not in str(caught.value) or password == "x"


def test_client_secret_basic_puts_the_form_encoded_pair_in_authorization() -> None:
    """RFC 6749 2.3.1: id and secret form-encoded, joined by ':', base64; the body holds the
    grant, the scopes space-separated and the extra parameters, never the secret."""
    body, headers = _client().token_request()
    form = dict(parse_qsl(body.decode()))
    assert form == {
        "grant_type": "client_credentials",
        "scope": "webhooks:write read",
        "audience": "https://api.example.com",
    }
    scheme, encoded = headers["authorization"].split(" ")
    assert scheme == "Basic"
    assert base64.b64decode(encoded).decode() == "hook%20line:cl13nt-s3cret%2Fwith%2Bodd%20chars"
    assert headers["content-type"] == "application/x-www-form-urlencoded"


def test_client_secret_post_sends_the_pair_as_form_fields() -> None:
    body, headers = _client(OAuthMethod.CLIENT_SECRET_POST, scopes=None).token_request()
    form = dict(parse_qsl(body.decode()))
    assert form["client_id"] == "hook line" and form["client_secret"] == SECRET
    assert "scope" not in form and "authorization" not in headers


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"client_secret": None}, "clientSecret"),
        ({"client_secret": ""}, "clientSecret"),
        ({"client_id": ""}, "clientId"),
        ({"scopes": ["has space"]}, "scopes"),
        ({"scopes": ['quote"']}, "scopes"),
        ({"scopes": ["s"] * 51}, "scopes"),
        ({"extra_params": {"grant_type": "password"}}, "extraParams"),
        ({"extra_params": {"client_secret": "x"}}, "extraParams"),
        ({"extra_params": {"bad name": "x"}}, "extraParams"),
        ({"extra_params": {"audience": "line\nbreak"}}, "extraParams"),
    ],
)
def test_oauth_input_rules(changes: dict[str, object], field: str) -> None:
    """A missing secret, malformed scopes, or an extra parameter that would override what
    hookline writes are refused, naming the field."""
    with pytest.raises(AuthInputError) as caught:
        _client(OAuthMethod.CLIENT_SECRET_BASIC, **changes)
    assert caught.value.field == field
    assert SECRET not in str(caught.value)


def test_a_token_answer_gives_the_token_and_how_long_to_use_it() -> None:
    found = token_from_response(
        200, b'{"access_token":"abc.def","token_type":"bearer","expires_in":3600}'
    )
    assert isinstance(found, AccessToken)
    assert found.header() == "Bearer abc.def" and found.usable_seconds == 3540
    assert "abc.def" not in repr(found)
    as_string = token_from_response(200, b'{"access_token":"t","expires_in":"120"}')
    assert isinstance(as_string, AccessToken) and as_string.usable_seconds == 108


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        (
            401,
            b'{"error":"invalid_client","error_description":"secret cl13nt was wrong"}',
            "the token URL answered HTTP 401 (invalid_client)",
        ),
        (500, b"<html>cl13nt-s3cret</html>", "the token URL answered HTTP 500"),
        (200, b"not json", "the token URL's answer is not a JSON object"),
        (200, b'{"token_type":"bearer"}', "the token URL's answer has no access_token"),
        (
            200,
            b'{"access_token":"a\\nb"}',
            "the token URL's access_token is not a usable header value",
        ),
        (
            200,
            b'{"access_token":"a","token_type":"mac"}',
            "the token URL's token_type is not Bearer",
        ),
    ],
)
def test_a_failed_token_answer_says_why_without_quoting_the_body(
    status: int, body: bytes, reason: str
) -> None:
    """The reason names the status and the RFC 6749 error code only: a body may echo the
    request, so none of it is repeated."""
    assert token_from_response(status, body) == reason


def test_tokens_are_let_go_shortly_before_they_expire() -> None:
    """A minute early, or a tenth of the life if shorter; a day at most; ten minutes when
    the server says nothing."""
    assert usable_seconds(3600) == 3540
    assert usable_seconds(100) == 90
    assert usable_seconds(0) == 0
    assert usable_seconds(10**9) == 24 * 3600 - 60
    assert usable_seconds(None) == 600


def test_configured_credentials_replace_a_custom_authorization_header() -> None:
    merged = with_authorization({"Authorization": "old", "x-a": "1"}, "Bearer new")
    assert merged == {"x-a": "1", "authorization": "Bearer new"}
    same = {"x-a": "1"}
    assert with_authorization(same, None) is same


def test_an_endpoint_auth_round_trips_through_its_stored_form(issued: Issued) -> None:
    auth = EndpointAuth(
        oauth=_client(),
        mtls=mutual_tls(issued.key + issued.certificate, None, NOW),
    )
    assert EndpointAuth.loads(auth.dumps()) == auth
    assert EndpointAuth.loads(EndpointAuth().dumps()) is None
    basic = EndpointAuth(basic=BasicAuth("u", "p"))
    assert EndpointAuth.loads(basic.dumps()) == basic
    with pytest.raises(ValueError, match="one at a time"):
        EndpointAuth(basic=BasicAuth("u", "p"), oauth=_client())


def test_an_identity_is_a_key_and_its_certificate_in_either_order(issued: Issued) -> None:
    """Key first or certificate first, the stored form is the certificate chain and the
    key as PKCS #8, and the summary shows the certificate, never the key."""
    for identity in (issued.key + issued.certificate, issued.certificate + "\n" + issued.key):
        checked = mutual_tls(identity, None, NOW)
        assert checked.certificate is not None and checked.key is not None
        assert checked.key.startswith("-----BEGIN PRIVATE KEY-----")
    summary = certificate_summary(checked.certificate or "")
    assert summary.subject == "CN=hookline-client" and summary.issuer == "CN=unit-ca"
    assert summary.not_after > NOW and len(summary.fingerprint_sha256) == 64
    assert checked.key is not None and checked.key not in repr(checked)


def _self_signed(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey, days: int) -> str:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "old")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(NOW - datetime.timedelta(days=10))
        .not_valid_after(NOW + datetime.timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def _pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey, password: bytes | None = None) -> str:
    encryption: serialization.KeySerializationEncryption = (
        serialization.NoEncryption()
        if password is None
        else serialization.BestAvailableEncryption(password)
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    ).decode()


def test_bad_identities_are_refused_with_a_reason_and_no_key_material(issued: Issued) -> None:
    """Garbage, a missing half, a key of another certificate, an encrypted or weak key, an
    expired certificate, a stray block: each a clear refusal that quotes no PEM."""
    other = ec.generate_private_key(ec.SECP256R1())
    weak = rsa.generate_private_key(65537, 1024)
    cases = {
        "not a pem": "exactly one PEM private key",
        issued.certificate: "exactly one PEM private key",
        issued.key: "no PEM CERTIFICATE",
        _pem(other) + issued.certificate: "does not belong to its first certificate",
        _pem(other, b"pw") + issued.certificate: "encrypted",
        _pem(weak) + _self_signed(weak, 30): "at least 2048",
        _pem(other) + _self_signed(other, -1): "expired on",
        issued.key
        + issued.certificate
        + "-----BEGIN X509 CRL-----\nAA==\n-----END X509 CRL-----\n": (
            "unexpected PEM block (X509 CRL)"
        ),
        issued.key + "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n": (
            "not valid"
        ),
    }
    for identity, reason in cases.items():
        with pytest.raises(AuthInputError, match=re.escape(reason)) as caught:
            mutual_tls(identity, None, NOW)
        assert caught.value.field == "identity"
        assert "-----BEGIN" not in str(caught.value)


def test_a_ca_bundle_holds_certificates_only() -> None:
    ca = CertificateAuthority("bundle")
    assert mutual_tls(None, ca.pem + ca.pem, NOW) == MutualTls(None, None, ca.pem + ca.pem)
    key = _pem(ec.generate_private_key(ec.SECP256R1()))
    for bundle, reason in ((ca.pem + key, "only PEM CERTIFICATE"), ("nothing", "no PEM")):
        with pytest.raises(AuthInputError, match=reason) as caught:
            mutual_tls(None, bundle, NOW)
        assert caught.value.field == "serverCaCert"
    with pytest.raises(AuthInputError, match="identity"):
        mutual_tls(None, None, NOW)
