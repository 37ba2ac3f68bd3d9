"""The row codec: how a column that holds secrets is encoded before it is stored, and
decoded after it is read.

This is the seam for secrets at rest. The columns that hold secrets (``SECRET_COLUMNS``:
an endpoint's signing keys, and its custom headers, whose values are often credentials)
go through the store's codec in ``rows.py`` on every write and every read, whichever
backend, query or path reads them (an API read, a claim, a publish's routing). Encrypting
them (``HOOKLINE_ENCRYPTION_KEYS``) is therefore one more ``RowCodec``, with no change to
a query or a caller. A codec sees a column's stored text whole (JSON), and must give back
text, since both schemas keep these columns as TEXT.
"""

from __future__ import annotations

from typing import Protocol

SECRET_COLUMNS = (("endpoints", "keys"), ("endpoints", "headers"))
"""The (table, column) pairs whose values ``rows.py`` passes through the codec."""


class RowCodec(Protocol):
    def encode(self, table: str, column: str, value: str) -> str:
        """What to store for ``value`` in ``table.column``."""
        ...

    def decode(self, table: str, column: str, value: str) -> str:
        """The value that ``encode`` turned into the stored ``value``."""
        ...


class PlainCodec:
    """Stores values as they are: the default, until keys are configured."""

    def encode(self, table: str, column: str, value: str) -> str:
        return value

    def decode(self, table: str, column: str, value: str) -> str:
        return value


PLAIN = PlainCodec()
