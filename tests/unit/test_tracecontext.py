"""The W3C Trace Context and request-id rules (``domain/tracecontext.py``)."""

from __future__ import annotations

import pytest

from hookline.domain.tracecontext import (
    MAX_REQUEST_ID_LENGTH,
    MAX_TRACESTATE_LENGTH,
    TraceParent,
    accepted_request_id,
    accepted_tracestate,
    from_stored,
    incoming,
    parse_traceparent,
)

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"


def test_a_valid_traceparent_is_parsed_into_trace_span_and_sampled_flag() -> None:
    """The spec's own example parses, and its header form is the same string."""
    parsed = parse_traceparent(f"00-{TRACE}-{SPAN}-01")
    assert parsed == TraceParent(TRACE, SPAN, 1)
    assert parsed.sampled and parsed.header() == f"00-{TRACE}-{SPAN}-01"


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "garbage",
        f"00-{TRACE}-{SPAN}",
        f"00-{TRACE.upper()}-{SPAN}-01",
        f"00-{'0' * 32}-{SPAN}-01",
        f"00-{TRACE}-{'0' * 16}-01",
        f"ff-{TRACE}-{SPAN}-01",
        f"00-{TRACE}-{SPAN}-01-extra",
        f"0-{TRACE}-{SPAN}-01",
        f"00-{TRACE}-{SPAN}-1",
        f"00_{TRACE}_{SPAN}_01",
        f"00-{TRACE}-{SPAN}-01\n",
        "00-" + "a" * 600,
    ],
)
def test_a_traceparent_the_spec_says_to_ignore_is_none_never_an_error(value: str | None) -> None:
    """Malformed values, uppercase hex, all-zero ids, version ff and version 00 with trailing
    fields are ignored (W3C Trace Context §3.2, §4.2): hookline starts its own trace."""
    assert parse_traceparent(value) is None


def test_a_future_version_with_more_fields_is_read_as_version_00() -> None:
    """§3.2.4: a later version is parsed for the fields version 00 knows, and re-sent as 00."""
    parsed = parse_traceparent(f"cc-{TRACE}-{SPAN}-00-what-comes-next")
    assert parsed == TraceParent(TRACE, SPAN, 0)
    assert not parsed.sampled and parsed.header() == f"00-{TRACE}-{SPAN}-00"


def test_a_child_context_keeps_the_trace_and_flags_and_takes_the_new_span_id() -> None:
    """A span hookline records inside the producer's trace stays in it."""
    child = TraceParent(TRACE, SPAN, 1).child("1111111111111111")
    assert child == TraceParent(TRACE, "1111111111111111", 1)


def test_a_tracestate_is_kept_whole_or_dropped_whole() -> None:
    """Printable ASCII up to the spec's 512 characters passes; longer or with control
    characters is dropped, never cut (a cut list would be a different state)."""
    assert accepted_tracestate("congo=t61rcWkgMzE,rojo=00f067aa0ba902b7") is not None
    assert accepted_tracestate("a=" + "b" * (MAX_TRACESTATE_LENGTH - 2)) is not None
    assert accepted_tracestate("a=" + "b" * MAX_TRACESTATE_LENGTH) is None
    assert accepted_tracestate("a=b\nc=d") is None
    assert accepted_tracestate("") is None and accepted_tracestate(None) is None


@pytest.mark.parametrize(
    "value",
    ["f81d4fae-7dec-11d0-a765-00a0c91e6bf6", "Root=1-5759e988-bd862e3fe1be46a994272793", "a"],
)
def test_a_sane_request_id_is_accepted_as_sent(value: str) -> None:
    """UUIDs, tracer-style ids and short ids are echoed and logged unchanged."""
    assert accepted_request_id(value) == value


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "has space",
        'quo"te',
        "line\nbreak",
        "tab\t",
        "é",
        "x" * (MAX_REQUEST_ID_LENGTH + 1),
    ],
)
def test_an_unsafe_or_overlong_request_id_is_refused(value: str | None) -> None:
    """Anything that could forge a log line or a header, or bloat every line, is replaced."""
    assert accepted_request_id(value) is None


def test_a_producers_context_is_stored_and_read_back_whole() -> None:
    """traceparent and tracestate survive the column; without a tracestate only the header."""
    context = incoming(f"00-{TRACE}-{SPAN}-01", "rojo=00f067aa0ba902b7, congo=t61rcWkgMzE")
    assert context is not None and from_stored(context.stored()) == context
    bare = incoming(f"00-{TRACE}-{SPAN}-00", None)
    assert bare is not None and bare.stored() == f"00-{TRACE}-{SPAN}-00"
    assert from_stored(bare.stored()) == bare


def test_a_tracestate_without_a_valid_traceparent_is_ignored_with_it() -> None:
    """W3C §3.3: tracestate is meaningless without its traceparent."""
    assert incoming(None, "rojo=1") is None
    assert incoming("bogus", "rojo=1") is None
    assert from_stored(None) is None and from_stored("") is None and from_stored("junk") is None
