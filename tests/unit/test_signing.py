"""Standard Webhooks signing against the public test vectors and the public verifier."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from standardwebhooks import Webhook

from hookline.domain.signing import (
    InvalidSecret,
    generate_ed25519_secret,
    generate_secret,
    normalize_secret,
    public_key,
    sign,
)

VECTORS_PATH = Path(__file__).resolve().parents[3] / "shared" / "vectors" / "standard-webhooks.json"
VECTORS: dict[str, Any] = json.loads(VECTORS_PATH.read_text())


@pytest.mark.parametrize("vector", VECTORS["sign"], ids=lambda v: v["name"])
def test_sign_matches_spec_vector(vector: dict[str, Any]) -> None:
    """Each spec vector's signature is reproduced exactly, for v1 (HMAC) and v1a (ed25519)."""
    header = sign(
        vector["msg_id"], vector["timestamp"], vector["payload"].encode(), [vector["secret"]]
    )
    assert header == vector["signature"]


def test_v1a_vector_public_key_and_signature_verify() -> None:
    """The whpk_ key derived from the vector's whsk_ secret verifies its signature."""
    (vector,) = [v for v in VECTORS["sign"] if v["scheme"] == "v1a"]
    assert public_key(vector["secret"]) == vector["public_key"]
    raw = base64.b64decode(vector["public_key"].removeprefix("whpk_"))
    content = f"{vector['msg_id']}.{vector['timestamp']}.{vector['payload']}".encode()
    signature = base64.b64decode(vector["signature"].removeprefix("v1a,"))
    Ed25519PublicKey.from_public_bytes(raw).verify(signature, content)


def test_last_char_differs_vector_is_not_what_we_produce() -> None:
    """The spec's tampered signature differs from ours for the same input."""
    bad = VECTORS["verify_invalid"][0]
    ours = sign(
        "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, bad["payload"].encode(), [bad["secret"]]
    )
    assert ours != bad["signature"]


def test_rotation_header_verifies_with_either_secret() -> None:
    """A header signed with two secrets verifies for a receiver holding either one."""
    old, new = generate_secret(), generate_secret()
    body = b'{"a":1}'
    ts = int(time.time())
    header = sign("msg_1", ts, body, [new, old])
    assert len(header.split(" ")) == 2
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(ts), "webhook-signature": header}
    Webhook(old).verify(body, headers)
    Webhook(new).verify(body, headers)


def test_generated_secrets_are_valid_and_distinct() -> None:
    """Generated secrets have the right prefix and size, pass validation and never repeat."""
    secrets = {generate_secret() for _ in range(100)}
    assert len(secrets) == 100
    for secret in secrets:
        assert secret.startswith("whsec_")
        assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 24
        assert normalize_secret(secret) == secret
    ed = generate_ed25519_secret()
    assert normalize_secret(ed) == ed and public_key(ed).startswith("whpk_")


def test_normalize_accepts_bare_and_unpadded_base64() -> None:
    """A secret without the whsec_ prefix or without padding is accepted and prefixed."""
    raw = base64.b64encode(bytes(range(32))).decode()
    assert normalize_secret(raw) == "whsec_" + raw
    unpadded = base64.b64encode(bytes(range(25))).decode().rstrip("=")
    assert normalize_secret(unpadded) == "whsec_" + unpadded


@pytest.mark.parametrize(
    "bad",
    ["whsec_not base64!", "whsec_" + base64.b64encode(b"short").decode(), "whsk_AAAA", ""],
)
def test_normalize_refuses_unusable_secrets(bad: str) -> None:
    """Secrets that are not base64, too short, or not an ed25519 seed are refused."""
    with pytest.raises(InvalidSecret):
        normalize_secret(bad)
