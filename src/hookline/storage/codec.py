"""The row codec: how a column that holds secrets is encoded before it is stored, and
decoded after it is read.

This is the seam for secrets at rest. The columns that hold secrets (``SECRET_COLUMNS``:
an endpoint's signing keys, current and rotated-out, its custom headers, whose values are
often credentials, and its authentication: HTTP Basic, OAuth2 client credentials, a client
certificate's private key, NULL when it has none; operational-webhook endpoints are
endpoints of a reserved application, so they are covered too) go through the store's codec
in ``rows.py`` on every write and every read, whichever backend, query or path reads them
(an API read, a claim, a publish's routing, the SQLite fast path's route cache). A codec
sees a column's stored text whole (JSON) and the row's id, and gives back text, since both
schemas keep these columns as TEXT.

A new secret column (endpoint credentials, say) needs three things and nothing else: its
``(table, column)`` in ``SECRET_COLUMNS``, its encode and decode in ``rows.py`` with the
row's id, and the column in the two rekey queries (``rekey_page``, ``rekey_write`` in
``storage/queries.sql``; ``tests/unit/test_codec.py`` fails until it is there). The codecs
below are generic over the column: ``SealingCodec`` binds each value to its table, column
and row, and ``hookline rekey`` walks every column of the list.

Decrypted values live only in the domain objects a read returns (an ``Endpoint`` carries its
secrets to sign with); the codec keeps no cache of plaintext.
"""

from __future__ import annotations

from typing import Protocol

from hookline.domain.keyring import PREFIX, KeyRing, SecretsUnreadable, is_sealed, sealed_key_id

SECRET_COLUMNS = (
    ("endpoints", "keys"),
    ("endpoints", "headers"),
    ("endpoints", "auth"),
    ("idempotency_keys", "body"),
)
"""The (table, column) pairs whose values ``rows.py`` passes through the codec. A response
kept for an idempotency key can carry a secret (``secret/rotate`` answers with the new
one); those rows expire with the idempotency window, so rekey leaves them (the endpoint
columns are what it walks, ``rows.ENDPOINT_SECRETS``)."""


class RowCodec(Protocol):
    def encode(self, table: str, column: str, row: str, value: str) -> str:
        """What to store for ``value`` in ``table.column`` of the row whose id is ``row``."""
        ...

    def decode(self, table: str, column: str, row: str, value: str) -> str:
        """The value that ``encode`` turned into the stored ``value``."""
        ...

    def current(self, value: str) -> bool:
        """Whether a stored value is as ``encode`` writes it now (``hookline rekey`` leaves
        it); a value under an older key, or plaintext from before keys, is not."""
        ...


def _context(table: str, column: str, row: str) -> str:
    return f"{table}.{column}:{row}"


class PlainCodec:
    """Stores values as they are: used only while no key is configured, which production
    refuses unless ``HOOKLINE_ALLOW_PLAINTEXT_SECRETS`` says so (``server.open_store``)."""

    def encode(self, table: str, column: str, row: str, value: str) -> str:
        return value

    def decode(self, table: str, column: str, row: str, value: str) -> str:
        if is_sealed(value):
            raise SecretsUnreadable(
                f"stored secrets are encrypted with key id {sealed_key_id(value)!r}, but "
                "HOOKLINE_ENCRYPTION_KEYS is not set"
            )
        return value

    def current(self, value: str) -> bool:
        return not is_sealed(value)


PLAIN = PlainCodec()


class SealingCodec:
    """Seals with the key ring's first key, bound to the value's table, column and row (a
    sealed value copied into another endpoint does not open there); opens under any key of
    the ring; reads plaintext written before keys were configured as it is, until
    ``hookline rekey`` seals it."""

    def __init__(self, ring: KeyRing) -> None:
        self.ring = ring
        self._current_prefix = f"{PREFIX}{ring.current_id}:"

    def __repr__(self) -> str:
        return f"SealingCodec({self.ring!r})"

    def encode(self, table: str, column: str, row: str, value: str) -> str:
        return self.ring.seal(value, _context(table, column, row))

    def decode(self, table: str, column: str, row: str, value: str) -> str:
        if not is_sealed(value):
            return value
        return self.ring.open(value, _context(table, column, row))

    def current(self, value: str) -> bool:
        return value.startswith(self._current_prefix)


def codec_for(ring: KeyRing | None) -> RowCodec:
    return PLAIN if ring is None else SealingCodec(ring)
