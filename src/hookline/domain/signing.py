"""Standard Webhooks signatures (spec v1.0.0, "Signature scheme").

Signed content is ``{msg_id}.{timestamp}.{body}``. ``v1`` is HMAC-SHA256 keyed with the
base64-decoded ``whsec_`` secret; ``v1a`` is ed25519 with a ``whsk_`` private key (the
receiver holds the ``whpk_`` public key). During a rotation the header carries one
signature per valid key, space-separated, and receivers accept any that verifies.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Sequence
from enum import StrEnum
from functools import lru_cache
from secrets import token_bytes

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

HMAC_PREFIX = "whsec_"
ED25519_PREFIX = "whsk_"
PUBLIC_PREFIX = "whpk_"
GENERATED_SECRET_BYTES = 24
MIN_SECRET_BYTES = 24
MAX_SECRET_BYTES = 64
ED25519_SEED_BYTES = 32
# Svix stores whsk_ keys as seed || public key (ed25519_compact's 64-byte KeyPair); the
# spec vectors use the bare 32-byte seed. Both are accepted.
ED25519_KEYPAIR_BYTES = 64


class InvalidSecret(ValueError):
    """The secret is not a usable Standard Webhooks key."""


def _b64decode(text: str) -> bytes:
    """Decode base64, accepting missing padding as the spec's reference libraries do."""
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidSecret(
            "the secret is not valid standard base64 (A-Z, a-z, 0-9, + and /)"
        ) from None


def _b64encode(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


@lru_cache(maxsize=4096)
def _hmac_key(secret: str) -> bytes:
    return _b64decode(secret.removeprefix(HMAC_PREFIX))


@lru_cache(maxsize=4096)
def _ed25519_key(secret: str) -> Ed25519PrivateKey:
    raw = _b64decode(secret.removeprefix(ED25519_PREFIX))
    if len(raw) not in (ED25519_SEED_BYTES, ED25519_KEYPAIR_BYTES):
        raise InvalidSecret(
            f"a {ED25519_PREFIX} key must be base64 of a {ED25519_SEED_BYTES}-byte ed25519 "
            f"seed or a {ED25519_KEYPAIR_BYTES}-byte seed and public key (got {len(raw)} bytes)"
        )
    key = Ed25519PrivateKey.from_private_bytes(raw[:ED25519_SEED_BYTES])
    if len(raw) == ED25519_KEYPAIR_BYTES and raw[ED25519_SEED_BYTES:] != _public_bytes(key):
        raise InvalidSecret(
            f"the {ED25519_PREFIX} key's last {ED25519_SEED_BYTES} bytes are not the public "
            "key of its first 32; it was truncated or altered"
        )
    return key


def _public_bytes(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def _sign_one(secret: str, content: bytes) -> str:
    if secret.startswith(ED25519_PREFIX):
        return "v1a," + _b64encode(_ed25519_key(secret).sign(content))
    return "v1," + _b64encode(hmac.new(_hmac_key(secret), content, hashlib.sha256).digest())


def sign(msg_id: str, timestamp: int, body: bytes, secrets: Sequence[str]) -> str:
    """The ``webhook-signature`` header value: one signature per secret, in order.

    The scheme follows each secret's prefix, so a rotation may mix ``v1`` and ``v1a``.
    """
    content = f"{msg_id}.{timestamp}.".encode() + body
    return " ".join(_sign_one(secret, content) for secret in secrets)


def generate_secret() -> str:
    """A new HMAC secret of 24 random bytes, the size Svix generates."""
    return HMAC_PREFIX + _b64encode(token_bytes(GENERATED_SECRET_BYTES))


def generate_ed25519_secret() -> str:
    """A new ed25519 private key as the spec's vectors write it: the bare 32-byte seed."""
    return ED25519_PREFIX + _b64encode(token_bytes(ED25519_SEED_BYTES))


def normalize_secret(value: str) -> str:
    """Validate a user-supplied secret; return it prefixed and canonically padded.

    Padding matters because some verifiers decode strictly; the key bytes never change.
    """
    text = value.strip()
    if text.startswith(PUBLIC_PREFIX):
        raise InvalidSecret(
            f"{PUBLIC_PREFIX} is a public key; supply the {ED25519_PREFIX} private key instead"
        )
    if text.startswith(ED25519_PREFIX):
        _ed25519_key(text)
        return ED25519_PREFIX + _b64encode(_b64decode(text.removeprefix(ED25519_PREFIX)))
    key = _b64decode(text.removeprefix(HMAC_PREFIX))
    if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
        raise InvalidSecret(
            f"the secret must be base64 of {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} random "
            f"bytes, optionally prefixed with {HMAC_PREFIX} (got {len(key)} bytes); "
            "omit it to have one generated"
        )
    return HMAC_PREFIX + _b64encode(key)


def public_key(secret: str) -> str:
    """The ``whpk_`` key a receiver uses to verify ``v1a`` signatures of this secret."""
    if not secret.startswith(ED25519_PREFIX):
        raise InvalidSecret(f"only {ED25519_PREFIX} (ed25519) secrets have a public key")
    return PUBLIC_PREFIX + _b64encode(_public_bytes(_ed25519_key(secret)))


class HeaderStyle(StrEnum):
    """Which names carry the id, timestamp and signature of a delivery.

    Standard Webhooks names them ``webhook-*``; receivers hand-coded against Svix read
    ``svix-*`` (Svix's own libraries accept either). ``both`` sends each value under both
    names, for a migration from Svix while receivers are updated.
    """

    WEBHOOK = "webhook"
    SVIX = "svix"
    BOTH = "both"


SignatureHeaderNames = tuple[tuple[str, str, str], ...]

_NAMES: dict[HeaderStyle, SignatureHeaderNames] = {
    HeaderStyle.WEBHOOK: (("webhook-id", "webhook-timestamp", "webhook-signature"),),
    HeaderStyle.SVIX: (("svix-id", "svix-timestamp", "svix-signature"),),
    HeaderStyle.BOTH: (
        ("webhook-id", "webhook-timestamp", "webhook-signature"),
        ("svix-id", "svix-timestamp", "svix-signature"),
    ),
}


def signature_header_names(style: HeaderStyle) -> SignatureHeaderNames:
    """The (id, timestamp, signature) header names to send, once per naming in use."""
    return _NAMES[style]
