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
import secrets
from collections.abc import Sequence
from functools import lru_cache

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

HMAC_PREFIX = "whsec_"
ED25519_PREFIX = "whsk_"
PUBLIC_PREFIX = "whpk_"
GENERATED_SECRET_BYTES = 24
MIN_SECRET_BYTES = 24
MAX_SECRET_BYTES = 64
ED25519_SEED_BYTES = 32


class InvalidSecret(ValueError):
    """The secret is not a usable Standard Webhooks key."""


def _b64decode(text: str) -> bytes:
    """Decode base64, accepting missing padding as the spec's reference libraries do."""
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidSecret("the secret is not valid base64") from None


@lru_cache(maxsize=4096)
def _hmac_key(secret: str) -> bytes:
    return _b64decode(secret.removeprefix(HMAC_PREFIX))


@lru_cache(maxsize=4096)
def _ed25519_key(secret: str) -> Ed25519PrivateKey:
    seed = _b64decode(secret.removeprefix(ED25519_PREFIX))
    if len(seed) != ED25519_SEED_BYTES:
        raise InvalidSecret(f"a whsk_ key must decode to {ED25519_SEED_BYTES} bytes")
    return Ed25519PrivateKey.from_private_bytes(seed)


def _sign_one(secret: str, content: bytes) -> str:
    if secret.startswith(ED25519_PREFIX):
        signature = _ed25519_key(secret).sign(content)
        return "v1a," + base64.b64encode(signature).decode()
    digest = hmac.new(_hmac_key(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def sign(msg_id: str, timestamp: int, body: bytes, secrets_: Sequence[str]) -> str:
    """The ``webhook-signature`` header value: one signature per secret, in order."""
    content = f"{msg_id}.{timestamp}.".encode() + body
    return " ".join(_sign_one(secret, content) for secret in secrets_)


def generate_secret() -> str:
    """A new HMAC secret of 24 random bytes, Svix's size."""
    return HMAC_PREFIX + base64.b64encode(secrets.token_bytes(GENERATED_SECRET_BYTES)).decode()


def generate_ed25519_secret() -> str:
    return ED25519_PREFIX + base64.b64encode(secrets.token_bytes(ED25519_SEED_BYTES)).decode()


def normalize_secret(value: str) -> str:
    """Validate a user-supplied secret and return it with its prefix.

    ``whsec_`` (or bare base64) must decode to 24 to 64 bytes; ``whsk_`` must be an ed25519 seed.
    """
    text = value.strip()
    if text.startswith(ED25519_PREFIX):
        _ed25519_key(text)
        return text
    raw = text.removeprefix(HMAC_PREFIX)
    key = _b64decode(raw)
    if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
        raise InvalidSecret(
            f"the secret must be base64 of {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} random "
            f"bytes, optionally prefixed with {HMAC_PREFIX} (got {len(key)} bytes)"
        )
    return HMAC_PREFIX + raw


def public_key(secret: str) -> str:
    """The ``whpk_`` key a receiver uses to verify ``v1a`` signatures of this secret."""
    if not secret.startswith(ED25519_PREFIX):
        raise InvalidSecret("only whsk_ (ed25519) secrets have a public key")
    raw = _ed25519_key(secret).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return PUBLIC_PREFIX + base64.b64encode(raw).decode()
