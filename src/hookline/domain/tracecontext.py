"""W3C Trace Context (https://www.w3.org/TR/trace-context/) and request ids: which values a
caller may hand hookline, as pure rules.

A malformed ``traceparent`` is not an error: the spec (§4.2 "Processing model") says a
receiver that cannot parse it ignores it and starts a new trace, so these rules answer
``None`` and never raise. hookline keeps the producer's header in its normalized form with
the message, whether or not it records spans itself, so attempts made later, by another
process, can still join or forward the producer's trace (docs/observability.md, "Traces").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?")
"""version-trace_id-parent_id-flags; a future version may append fields after a dash (§3.2.4)."""
_INVALID_TRACE_ID = "0" * 32
_INVALID_SPAN_ID = "0" * 16
MAX_TRACESTATE_LENGTH = 512
"""The spec's minimum a platform must propagate (§3.3.1.5); a longer one is dropped whole."""
_TRACESTATE = re.compile(r"[\x20-\x7e]*")

MAX_REQUEST_ID_LENGTH = 128
_REQUEST_ID = re.compile(rf"[A-Za-z0-9._:/+=@-]{{1,{MAX_REQUEST_ID_LENGTH}}}")
"""What a caller's ``x-request-id`` may be: ids of the common tracers and proxies (UUIDs,
hex, base64, ``Root=1-…`` style) fit; spaces, quotes and control characters, which could
forge a log line or break a header, do not."""


@dataclass(frozen=True, slots=True)
class TraceParent:
    """A parsed ``traceparent``: which trace, which span is the parent, whether sampled."""

    trace_id: str
    """32 lowercase hex digits, never all zeros."""
    span_id: str
    """16 lowercase hex digits, never all zeros."""
    flags: int
    """Bit 0 is ``sampled``."""

    @property
    def sampled(self) -> bool:
        return bool(self.flags & 1)

    def header(self) -> str:
        """The version-00 header for this context: what hookline stores and forwards."""
        return f"00-{self.trace_id}-{self.span_id}-{self.flags:02x}"

    def child(self, span_id: str) -> TraceParent:
        """The context of a span of this trace whose id is ``span_id`` (chosen by the caller,
        because randomness is I/O)."""
        return TraceParent(self.trace_id, span_id, self.flags)


def parse_traceparent(value: str | None) -> TraceParent | None:
    """The context a ``traceparent`` header names, or None for one the spec says to ignore:
    malformed, version ``ff``, an all-zero trace or parent id, or version 00 with trailing
    fields (§3.2.2.1, §3.2.2.3, §3.2.2.4)."""
    if value is None or len(value) > 512:
        return None
    found = _TRACEPARENT.fullmatch(value.strip(" \t"))
    if found is None:
        return None
    version, trace_id, span_id, flags, rest = found.groups()
    if version == "ff" or (version == "00" and rest is not None):
        return None
    if trace_id == _INVALID_TRACE_ID or span_id == _INVALID_SPAN_ID:
        return None
    return TraceParent(trace_id, span_id, int(flags, 16))


def accepted_tracestate(value: str | None) -> str | None:
    """A ``tracestate`` hookline passes on with its ``traceparent``: printable ASCII of at
    most ``MAX_TRACESTATE_LENGTH`` characters, else none (the spec lets a vendor drop a
    tracestate it cannot propagate whole, §3.3.1.5)."""
    if not value or len(value) > MAX_TRACESTATE_LENGTH or not _TRACESTATE.fullmatch(value):
        return None
    return value


@dataclass(frozen=True, slots=True)
class TraceContext:
    """A ``traceparent`` and the ``tracestate`` that goes with it: what a message keeps."""

    parent: TraceParent
    state: str | None = None

    def stored(self) -> str:
        """The ``messages.trace_context`` value: the 55-character version-00 header, then
        a space and the tracestate if there is one (``from_stored`` reads it back)."""
        header = self.parent.header()
        return header if self.state is None else f"{header} {self.state}"


_HEADER_LENGTH = 55
"""A version-00 traceparent: 2 + 1 + 32 + 1 + 16 + 1 + 2 characters."""


def incoming(traceparent: str | None, tracestate: str | None) -> TraceContext | None:
    """The context a producer's headers carry, or None: a tracestate without a valid
    traceparent is ignored with it (§3.3: the two travel together)."""
    if traceparent is None:
        return None
    parent = parse_traceparent(traceparent)
    if parent is None:
        return None
    return TraceContext(parent, accepted_tracestate(tracestate))


def from_stored(value: str | None) -> TraceContext | None:
    """A stored ``trace_context`` read back (None for none, or for a value hookline did not
    write, which is ignored like a malformed header)."""
    if not value:
        return None
    parent = parse_traceparent(value[:_HEADER_LENGTH])
    if parent is None:
        return None
    state = value[_HEADER_LENGTH + 1 :] if len(value) > _HEADER_LENGTH else None
    return TraceContext(parent, accepted_tracestate(state))


def accepted_request_id(value: str | None) -> str | None:
    """The caller's ``x-request-id`` if it is sane enough to echo and log, else None (and
    hookline makes one up)."""
    if value is None or _REQUEST_ID.fullmatch(value) is None:
        return None
    return value
