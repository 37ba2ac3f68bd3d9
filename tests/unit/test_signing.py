"""Standard Webhooks signing against the public test vectors and the public verifier."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from hookline.domain.signing import (
    HeaderStyle,
    InvalidSecret,
    generate_ed25519_secret,
    generate_secret,
    normalize_secret,
    public_key,
    sign,
    signature_header_names,
)

VECTORS_PATH = Path(__file__).resolve().parents[1] / "vectors" / "standard-webhooks.json"
VECTORS: dict[str, Any] = json.loads(VECTORS_PATH.read_text())
V1 = VECTORS["sign"][0]
MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"

Headers = dict[str, str]


def _signed_now(secret: str, body: bytes, msg_id: str = MSG_ID) -> Headers:
    ts = int(time.time())
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": sign(msg_id, ts, body, [secret]),
    }


def _v1a_verifies(header: str, pk: str, content: bytes) -> bool:
    """Verify a v1a header the way the spec describes, with the receiver's whpk_ key."""
    key = Ed25519PublicKey.from_public_bytes(base64.b64decode(pk.removeprefix("whpk_")))
    for part in header.split(" "):
        version, _, signature = part.partition(",")
        if version == "v1a":
            key.verify(base64.b64decode(signature), content)
            return True
    return False


@pytest.mark.parametrize("vector", VECTORS["sign"], ids=lambda v: v["name"])
def test_sign_matches_spec_vector(vector: dict[str, Any]) -> None:
    """Each spec vector's signature is reproduced exactly, for v1 (HMAC) and v1a (ed25519)."""
    header = sign(
        vector["msg_id"], vector["timestamp"], vector["payload"].encode(), [vector["secret"]]
    )
    assert header == vector["signature"]


def test_v1a_vector_public_key_and_signature_verify() -> None:
    """The whpk_ key derived from the vector's whsk_ seed verifies the vector's signature."""
    (vector,) = [v for v in VECTORS["sign"] if v["scheme"] == "v1a"]
    assert public_key(vector["secret"]) == vector["public_key"]
    content = f"{vector['msg_id']}.{vector['timestamp']}.{vector['payload']}".encode()
    assert _v1a_verifies(vector["signature"], vector["public_key"], content)


@pytest.mark.parametrize("vector", VECTORS["sign"], ids=lambda v: v["name"])
def test_vector_secrets_normalize_to_themselves(vector: dict[str, Any]) -> None:
    """The spec's own secrets are accepted unchanged as user-supplied secrets."""
    assert normalize_secret(vector["secret"]) == vector["secret"]


def test_v1_signature_verifies_with_the_reference_library() -> None:
    """The standardwebhooks package accepts a v1 signature we make with a current timestamp."""
    body = V1["payload"].encode()
    assert Webhook(V1["secret"]).verify(body, _signed_now(V1["secret"], body)) == {
        "test": 2432232314
    }


def test_rotation_header_verifies_with_either_secret() -> None:
    """A header signed with two secrets verifies for a receiver holding either one."""
    old, new = generate_secret(), generate_secret()
    body = b'{"a":1}'
    ts = int(time.time())
    header = sign("msg_1", ts, body, [new, old])
    assert header.split(" ") == [sign("msg_1", ts, body, [s]) for s in (new, old)]
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(ts), "webhook-signature": header}
    Webhook(old).verify(body, headers)
    Webhook(new).verify(body, headers)


def test_mixed_rotation_header_carries_both_schemes_in_order() -> None:
    """During a switch from HMAC to ed25519 each key signs with its own scheme, in order."""
    hmac_secret, ed_secret = generate_secret(), generate_ed25519_secret()
    body = b'{"a":1}'
    ts = int(time.time())
    header = sign("msg_1", ts, body, [ed_secret, hmac_secret])
    assert [part.split(",")[0] for part in header.split(" ")] == ["v1a", "v1"]
    assert _v1a_verifies(header, public_key(ed_secret), f"msg_1.{ts}.".encode() + body)
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(ts), "webhook-signature": header}
    Webhook(hmac_secret).verify(body, headers)


def test_no_secrets_sign_nothing() -> None:
    """Without a valid key the header is empty rather than a made-up signature."""
    assert sign("msg_1", 0, b"{}", []) == ""


B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def _resigned(headers: Headers, ts: int) -> Headers:
    signature = sign(MSG_ID, ts, V1["payload"].encode(), [V1["secret"]])
    return {**headers, "webhook-timestamp": str(ts), "webhook-signature": signature}


def _last_char_differs(headers: Headers, vector: dict[str, Any]) -> list[Headers]:
    """The vector's signature is ours at the vector's time with its last data character changed."""
    ours_then = sign(MSG_ID, V1["timestamp"], vector["payload"].encode(), [vector["secret"]])
    assert ours_then[:-2] == vector["signature"][:-2] and ours_then != vector["signature"]
    signature = headers["webhook-signature"]
    # The last character before "=" holds 4 data bits and 2 padding bits: change a data bit.
    changed = B64[(B64.index(signature[-2]) + 4) % 64]
    return [{**headers, "webhook-signature": signature[:-2] + changed + "="}]


def _partial(headers: Headers, vector: dict[str, Any]) -> list[Headers]:
    full = headers["webhook-signature"]
    return [{**headers, "webhook-signature": sig} for sig in (vector["signature"], full[:11])]


# How each verify_invalid vector breaks a request that we signed correctly.
BREAKERS: dict[str, Callable[[Headers, dict[str, Any]], list[Headers]]] = {
    "last-char-differs": _last_char_differs,
    "partial-signature": _partial,
    "timestamp-out-of-tolerance": lambda h, v: [
        _resigned(h, int(h["webhook-timestamp"]) + delta) for delta in (-301, 301)
    ],
    "missing-header": lambda h, v: [{k: h[k] for k in h if k != gone} for gone in h],
    "non-numeric-timestamp": lambda h, v: [{**h, "webhook-timestamp": "hello"}],
}


def test_every_invalid_vector_has_a_breaker() -> None:
    """Each verify_invalid case in the vectors file is exercised below (none silently skipped)."""
    assert {v["name"] for v in VECTORS["verify_invalid"]} == set(BREAKERS)


@pytest.mark.parametrize("vector", VECTORS["verify_invalid"], ids=lambda v: v["name"])
def test_reference_verifier_rejects_each_broken_variant_of_our_request(
    vector: dict[str, Any],
) -> None:
    """Our request verifies, and each spec-listed corruption of it does not."""
    body = V1["payload"].encode()
    headers = _signed_now(V1["secret"], body)
    Webhook(V1["secret"]).verify(body, headers)
    for broken in BREAKERS[vector["name"]](headers, vector):
        with pytest.raises(WebhookVerificationError):
            Webhook(V1["secret"]).verify(body, broken)


def test_our_signature_verifies_among_decoys() -> None:
    """Our v1 signature still verifies when the header also carries decoys and unknown versions."""
    (decoys,) = [v for v in VECTORS["verify_valid"] if v["name"] == "decoys-around-valid"]
    body = V1["payload"].encode()
    headers = _signed_now(V1["secret"], body)
    decoy = decoys["decoy"]
    headers["webhook-signature"] = (
        f"{decoy} v2,{decoy.removeprefix('v1,')} {headers['webhook-signature']} {decoy}"
    )
    Webhook(V1["secret"]).verify(body, headers)


@pytest.mark.parametrize(
    "raw", ["MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwBr"]
)
def test_unpadded_secrets_sign_as_their_padded_form(raw: str) -> None:
    """The verify_valid unpadded secrets sign exactly as their padded, prefixed spelling."""
    (vector,) = [v for v in VECTORS["verify_valid"] if v["name"] == "unpadded-secret"]
    assert raw in vector["note"]
    padded = "whsec_" + raw + "=" * (-len(raw) % 4)
    body = V1["payload"].encode()
    assert sign(MSG_ID, 1, body, [raw]) == sign(MSG_ID, 1, body, [padded])
    assert sign(MSG_ID, 1, body, ["whsec_" + raw]) == sign(MSG_ID, 1, body, [padded])
    Webhook(raw).verify(body, _signed_now(padded, body))


def test_generated_secrets_are_valid_and_distinct() -> None:
    """Generated HMAC secrets have the prefix and 24 bytes, pass validation and never repeat."""
    secrets = {generate_secret() for _ in range(100)}
    assert len(secrets) == 100
    for secret in secrets:
        assert secret.startswith("whsec_")
        assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 24
        assert normalize_secret(secret) == secret


def test_generated_ed25519_secrets_are_seeds_with_a_public_key() -> None:
    """Generated whsk_ keys are 32-byte seeds like the vector's, distinct, with a whpk_ key."""
    keys = {generate_ed25519_secret() for _ in range(20)}
    assert len(keys) == 20
    for key in keys:
        assert len(base64.b64decode(key.removeprefix("whsk_"))) == 32
        assert normalize_secret(key) == key
        assert len(base64.b64decode(public_key(key).removeprefix("whpk_"))) == 32


def test_normalize_prefixes_and_pads_bare_base64() -> None:
    """A secret without the whsec_ prefix or its padding is accepted, prefixed and padded."""
    raw = base64.b64encode(bytes(range(32))).decode()
    assert normalize_secret(raw) == "whsec_" + raw
    padded = base64.b64encode(bytes(range(25))).decode()
    assert normalize_secret(padded.rstrip("=")) == "whsec_" + padded
    assert normalize_secret(f"  whsec_{padded}\n") == "whsec_" + padded


@pytest.mark.parametrize("size", [24, 64])
def test_normalize_accepts_the_size_bounds(size: int) -> None:
    """24 and 64 decoded bytes are both acceptable HMAC secrets."""
    secret = "whsec_" + base64.b64encode(bytes(size)).decode()
    assert normalize_secret(secret) == secret


def test_normalize_accepts_svix_keypair_form_of_whsk() -> None:
    """Svix's 64-byte whsk_ (seed then public key) is accepted and signs like its seed."""
    (vector,) = [v for v in VECTORS["sign"] if v["scheme"] == "v1a"]
    seed = base64.b64decode(vector["secret"].removeprefix("whsk_"))
    public = base64.b64decode(vector["public_key"].removeprefix("whpk_"))
    keypair = "whsk_" + base64.b64encode(seed + public).decode()
    assert normalize_secret(keypair) == keypair
    assert public_key(keypair) == vector["public_key"]
    args = (vector["msg_id"], vector["timestamp"], vector["payload"].encode())
    assert sign(*args, [keypair]) == vector["signature"]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("whsec_not base64!", "base64"),
        ("whsec_a-b_" + "A" * 30, "base64"),
        ("whsec_" + base64.b64encode(bytes(23)).decode(), "got 23 bytes"),
        ("whsec_" + base64.b64encode(bytes(65)).decode(), "got 65 bytes"),
        ("", "got 0 bytes"),
        ("whsk_AAAA", "got 3 bytes"),
        ("whsk_" + base64.b64encode(bytes(64)).decode(), "not the public key"),
        ("whpk_" + base64.b64encode(bytes(32)).decode(), "public key"),
    ],
)
def test_normalize_refuses_unusable_secrets_with_a_reason(bad: str, message: str) -> None:
    """Non-base64, wrong sizes, a mismatched keypair or a public key are refused, saying why."""
    with pytest.raises(InvalidSecret, match=message):
        normalize_secret(bad)


def test_public_key_only_for_ed25519_secrets() -> None:
    """Asking an HMAC secret for a public key is an error, not a leak of the secret."""
    with pytest.raises(InvalidSecret, match="whsk_"):
        public_key(generate_secret())


@pytest.mark.parametrize(
    ("style", "expected"),
    [
        (HeaderStyle.WEBHOOK, [("webhook-id", "webhook-timestamp", "webhook-signature")]),
        (HeaderStyle.SVIX, [("svix-id", "svix-timestamp", "svix-signature")]),
        (
            HeaderStyle.BOTH,
            [
                ("webhook-id", "webhook-timestamp", "webhook-signature"),
                ("svix-id", "svix-timestamp", "svix-signature"),
            ],
        ),
    ],
)
def test_each_header_style_names_the_headers_a_receiver_reads(
    style: HeaderStyle, expected: list[tuple[str, str, str]]
) -> None:
    """Standard Webhooks names, Svix's names, or both sets for a migration."""
    assert list(signature_header_names(style)) == expected
