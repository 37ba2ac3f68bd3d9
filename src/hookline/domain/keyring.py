"""The key ring that encrypts secrets at rest, and the text format of what it seals.

``HOOKLINE_ENCRYPTION_KEYS=ID:KEY[,ID:KEY…]``: each KEY is 32 random bytes in URL-safe
base64; the first key seals, every key opens, so the master key rotates without downtime
(add a new key first, restart, ``hookline rekey``, then drop the old one).

A sealed value is text, so it fits the TEXT columns that held the plaintext::

    enc:v1:<key id>:<URL-safe base64 of nonce (12 bytes) ‖ ciphertext ‖ tag (16 bytes)>

``v1`` is AES-256-GCM (``cryptography``'s AESGCM) with a random 96-bit nonce per value. The
associated data is ``context`` (the caller's table, column and row, see
``storage/codec.py``) and the key id, so a sealed value copied to another row, column or
key id does not open. Nothing here is I/O; the nonce comes from ``os.urandom``.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from hookline.domain.errors import Unavailable

KEY_BYTES = 32
NONCE_BYTES = 12
PREFIX = "enc:v1:"
"""What every sealed value starts with; a value without it is plaintext written before
keys were configured (JSON, which starts with ``[`` or ``{``)."""
_KEY_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


class SecretsUnreadable(Unavailable):
    """Stored secrets cannot be decrypted with the keys in HOOKLINE_ENCRYPTION_KEYS."""

    code = "secrets_unreadable"


def is_sealed(value: str) -> bool:
    return value.startswith(PREFIX)


def sealed_key_id(value: str) -> str:
    """The id of the key a sealed value was sealed with."""
    return value[len(PREFIX) :].partition(":")[0]


@dataclass(frozen=True)
class _Key:
    id: str
    aead: AESGCM = field(repr=False)


@dataclass(frozen=True)
class KeyRing:
    """The configured keys, the sealing one first. Its ``repr`` shows ids only."""

    _keys: tuple[_Key, ...]

    def __post_init__(self) -> None:
        if not self._keys:
            raise ValueError("a key ring needs at least one key")

    def __repr__(self) -> str:
        return f"KeyRing(ids={self.ids!r})"

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(k.id for k in self._keys)

    @property
    def current_id(self) -> str:
        """The key that seals (the first configured)."""
        return self._keys[0].id

    def seal(self, plaintext: str, context: str) -> str:
        key = self._keys[0]
        nonce = os.urandom(NONCE_BYTES)
        sealed = key.aead.encrypt(nonce, plaintext.encode(), _aad(context, key.id))
        return f"{PREFIX}{key.id}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def open(self, value: str, context: str) -> str:
        """The plaintext of ``value``, sealed for ``context``; ``SecretsUnreadable`` if no
        configured key opens it (a removed key, or a value altered or moved)."""
        key_id, _, data = value[len(PREFIX) :].partition(":")
        key = next((k for k in self._keys if k.id == key_id), None)
        if key is None:
            raise SecretsUnreadable(
                f"stored secrets are sealed with key id {key_id!r}, which "
                "HOOKLINE_ENCRYPTION_KEYS does not hold: add that key back"
            )
        try:
            raw = base64.urlsafe_b64decode(data.encode())
            plain = key.aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], _aad(context, key_id))
        except (InvalidTag, binascii.Error, ValueError):
            raise SecretsUnreadable(
                f"a stored secret sealed with key id {key_id!r} does not open for {context}: "
                "it was altered or copied from another row"
            ) from None
        return plain.decode()


def _aad(context: str, key_id: str) -> bytes:
    return f"hookline:{PREFIX}{key_id}|{context}".encode()


def parse_key_ring(text: str) -> KeyRing | None:
    """``ID:KEY[,ID:KEY…]`` (empty: no keys). Errors never repeat a key's value."""
    entries = [e.strip() for e in text.split(",") if e.strip()]
    if not entries:
        return None
    keys: list[_Key] = []
    for position, entry in enumerate(entries, start=1):
        key_id, colon, encoded = entry.partition(":")
        if not colon or not _KEY_ID.match(key_id):
            raise ValueError(
                f"entry {position} must be ID:KEY, the ID of 1 to 32 letters, digits, "
                "'-' or '_' (hookline keygen prints one)"
            )
        if key_id in (k.id for k in keys):
            raise ValueError(f"key id {key_id!r} appears twice")
        keys.append(_Key(key_id, AESGCM(_key_bytes(key_id, encoded))))
    return KeyRing(tuple(keys))


def _key_bytes(key_id: str, encoded: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(encoded.encode() + b"=" * (-len(encoded) % 4))
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != KEY_BYTES or not re.fullmatch(r"[A-Za-z0-9_-]+=*", encoded):
        raise ValueError(
            f"key {key_id!r} must be {KEY_BYTES} bytes in URL-safe base64 "
            "(hookline keygen prints one)"
        )
    return raw


def new_key_entry(key_id: str) -> str:
    """A fresh ``ID:KEY`` entry for ``HOOKLINE_ENCRYPTION_KEYS``."""
    if not _KEY_ID.match(key_id):
        raise ValueError("a key id is 1 to 32 letters, digits, '-' or '_'")
    return f"{key_id}:{base64.urlsafe_b64encode(os.urandom(KEY_BYTES)).decode()}"
