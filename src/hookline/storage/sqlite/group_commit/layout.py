"""The layout of a group-commit document: every row the statement reads, field by field.

The statement (``statement.sql``) reads its rows out of one JSON document. Messages,
idempotency completions and disabled endpoints are JSON arrays read by position; deliveries,
attempt records and the deliveries those attempts finish are strings whose fields have
fixed widths, cut apart with ``substr`` (``fixed_width.py`` says why). This module declares
each of those rows once, and both sides are made from the declarations: the encoders take
their widths, ``%`` templates and field orders from here, and the statement's positions are
rendered from here when the package is imported (``render``), so a field cannot be read at
another position than the one it was written at. Nothing here runs per row.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from operator import itemgetter

from hookline.domain import rollups

ID = 31
"""An application, message or delivery id: ``app_``, ``msg_`` or ``dlv_`` and 27."""
ENDPOINT_ID = 30
ATTEMPT_ID = 33
TIME = 13
"""Times are 13 digits of milliseconds (2001 to 2286)."""
COUNT = 10
"""Counts, durations and BLOB offsets are 10 digits."""


class Kind(Enum):
    """How a fixed-width field is written, and so how the statement reads it back."""

    TEXT = "text"
    """A string of exactly its width (an id): the encoder refuses any other length."""
    DIGITS = "digits"
    """A non-negative integer, zero-padded to its width."""
    OPTIONAL = "optional"
    """Digits, or all zeros for none (NULL in the statement)."""
    TEXT_REF = "text_ref"
    """The offset and length of a text in the ``texts`` BLOB, ``COUNT`` digits each."""
    REST = "rest"
    """The rest of the row, of any width: the last field only."""


_TEMPLATES = {Kind.TEXT: "%s", Kind.TEXT_REF: "%s", Kind.REST: "%s"}


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    kind: Kind
    width: int = 0
    start: int = 0
    """Where the field starts in the row; ``substr`` counts from 1."""

    def template(self) -> str:
        """The field's part of the row's ``%`` template."""
        return _TEMPLATES.get(self.kind) or f"%0{self.width}d"

    def sql(self, row: str) -> str:
        """The field's value read from the row ``row`` (an SQL expression) as text."""
        cut = f"substr({row}, {self.start}, {self.width})"
        if self.kind is Kind.REST:
            return f"substr({row}, {self.start})"
        if self.kind is Kind.OPTIONAL:
            return f"nullif({cut}, '{'0' * self.width}')"
        if self.kind is Kind.TEXT_REF:
            at = f"substr({row}, {self.start}, {COUNT})"
            size = f"substr({row}, {self.start + COUNT}, {COUNT})"
            return f"substr(NEW.texts, {at}, {size})"
        return cut


def text(name: str, width: int) -> Field:
    return Field(name, Kind.TEXT, width)


def digits(name: str, width: int) -> Field:
    return Field(name, Kind.DIGITS, width)


def optional(name: str, width: int) -> Field:
    return Field(name, Kind.OPTIONAL, width)


def text_ref(name: str) -> Field:
    return Field(name, Kind.TEXT_REF, 2 * COUNT)


def rest(name: str) -> Field:
    return Field(name, Kind.REST)


class FixedWidth:
    """A row as one string whose fields sit at fixed positions, in the order declared."""

    def __init__(self, name: str, *fields: Field) -> None:
        if any(f.kind is Kind.REST for f in fields[:-1]):
            raise ValueError(f"{name}: only the last field may take the rest of the row")
        self.name = name
        placed: list[Field] = []
        start = 1
        for f in fields:
            placed.append(Field(f.name, f.kind, f.width, start))
            start += f.width
        self.fields = tuple(placed)
        self.width = start - 1
        """The width of every field but a last one that takes the rest."""
        self.template = "".join(f.template() for f in self.fields)
        """The ``%`` template an encoder fills with the fields' values in order."""

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"the {self.name} row has no field {name!r}")

    def sql(self, field: str, row: str) -> str:
        return self.field(field).sql(row)


class JsonRow:
    """A row as a JSON array, its fields in the order declared."""

    def __init__(self, name: str, *fields: str) -> None:
        self.name = name
        self.fields = fields
        self.values = itemgetter(*fields)
        """The row's values, in order, from a mapping of field names (one C call)."""

    def sql(self, field: str, row: str) -> str:
        if field not in self.fields:
            raise KeyError(f"the {self.name} row has no field {field!r}")
        return f"{row} ->> {self.fields.index(field)}"


MESSAGE = JsonRow(
    "message",
    "id",
    "app_id",
    "event_type",
    "event_id",
    "payload_at",
    "payload_size",
    "channels",
    "tags",
    "created_at",
    "expires_at",
    "deliver_at",
    "ordering_key",
    "trace_context",
)
"""``payload_at`` and ``payload_size`` point into the ``payloads`` BLOB."""
COMPLETION = JsonRow("completion", "scope", "key", "status", "body_at", "body_size")
"""An idempotent response; ``body_at`` and ``body_size`` point into ``payloads``."""
DISABLED = JsonRow("disabled", "endpoint_id", "now")
"""An endpoint an attempt disables."""
FALLBACK = JsonRow("fallback", "id", "app_id", "msg_id", "endpoint_id", "fallback_for", "now")
"""An exhausted delivery's stand-in at its endpoint's fallback destination."""
STOOD_IN = JsonRow("stood_in", "id", "fallback_for")
"""An attempt at a fallback destination, and the endpoint it stood in for."""
ROLLUP = JsonRow("rollup", *rollups.COLUMNS)
"""An attempt rollup to add to (``domain/rollups.py``): a few per commit, so a JSON array."""
DELIVERY = FixedWidth(
    "delivery", text("id", ID), text("app_id", ID), text("msg_id", ID), rest("endpoint_id")
)
SCHEDULED = FixedWidth(
    "scheduled",
    digits("due", TIME),
    text("id", ID),
    text("app_id", ID),
    text("msg_id", ID),
    rest("endpoint_id"),
)
"""A pending delivery of a message whose ``deliverAt`` is ahead: due then, not now."""
ORDERED = FixedWidth(
    "ordered",
    digits("due", TIME),
    text("id", ID),
    text("app_id", ID),
    text("msg_id", ID),
    text("endpoint_id", ENDPOINT_ID),
    rest("ordering_key"),
)
"""A pending delivery in an ordered endpoint's sequence: due now, or at its message's
``deliverAt``; its ordering key ('' for none)."""
ATTEMPT = FixedWidth(
    "attempt",
    text("id", ATTEMPT_ID),
    text("app_id", ID),
    text("msg_id", ID),
    text("endpoint_id", ENDPOINT_ID),
    digits("status", 1),
    digits("response_status_code", 3),
    digits("trigger_type", 1),
    digits("created_at", TIME),
    digits("duration_ms", COUNT),
    text_ref("url"),
    text_ref("response"),
)
FINISHED = FixedWidth(
    "finished",
    text("id", ID),
    digits("status", 1),
    digits("attempt_count", COUNT),
    digits("now", TIME),
    optional("next_attempt_at", TIME),
    rest("lease_token"),
)
"""The delivery an attempt moves."""

ROWS: dict[str, FixedWidth | JsonRow] = {
    row.name: row
    for row in (
        MESSAGE,
        COMPLETION,
        DISABLED,
        FALLBACK,
        STOOD_IN,
        ROLLUP,
        DELIVERY,
        SCHEDULED,
        ORDERED,
        ATTEMPT,
        FINISHED,
    )
}

_PLACEHOLDER = re.compile(r"\{(?:(\w+)\.)?(\w+)\.(\w+)\}")


def render(sql: str) -> str:
    """``{row.field}`` in ``sql`` becomes that field of the JSON element ``value``, and
    ``{alias.row.field}`` that field of ``alias.value``, as the declarations place it."""

    def field(match: re.Match[str]) -> str:
        alias, row, name = match.groups()
        return ROWS[row].sql(name, "value" if alias is None else f"{alias}.value")

    return _PLACEHOLDER.sub(field, sql)
