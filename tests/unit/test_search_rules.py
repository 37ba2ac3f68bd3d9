"""The deliveries search's rules (``domain/search.py``): what a search string asks for, and
what it refuses with a ``SearchError`` naming the parameter."""

from __future__ import annotations

import pytest

from hookline.domain.errors import InvalidRequest
from hookline.domain.search import (
    MAX_TERMS,
    Cursor,
    PathMatch,
    SearchError,
    Terms,
    check_status_code,
    parse_cursor,
    parse_terms,
)

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


def test_an_empty_search_asks_nothing() -> None:
    """No q, or only spaces, is no term at all."""
    assert parse_terms(None) == Terms()
    assert parse_terms("   ") == Terms()


def test_words_and_quoted_phrases_are_lower_cased_payload_words() -> None:
    """Bare words and quoted phrases are payload text, folded to lower case."""
    assert parse_terms('Cus_123 "Blue Widget"') == Terms(words=("cus_123", "blue widget"))


def test_a_path_term_splits_its_path_and_keeps_its_value_as_written() -> None:
    """path=value names keys (and digits for array items); the value keeps its case and may
    be quoted to hold spaces."""
    terms = parse_terms('data.items.0.sku=SKU-9 note="Blue Widget"')
    assert terms.paths == (
        PathMatch(("data", "items", "0", "sku"), "SKU-9"),
        PathMatch(("note",), "Blue Widget"),
    )
    assert terms.words == ()


def test_the_word_index_is_asked_for_words_and_path_values() -> None:
    """phrases holds the words and the path values with a letter or digit in them; a value
    without one (a lone '-') is left to the JSON comparison alone."""
    terms = parse_terms("blue data.id=cus_1 data.sign=-")
    assert terms.phrases == ("blue", "cus_1")


@pytest.mark.parametrize("name", ["webhook-id", "svix-id", "WEBHOOK-ID"])
def test_a_webhook_id_header_term_is_the_message_id(name: str) -> None:
    """The webhook-id hookline sends is the message id, in either header style."""
    assert parse_terms(f"header.{name}=msg_2abc").message_id == "msg_2abc"


@pytest.mark.parametrize(
    "value", [TRACE_ID, TRACE_ID.upper(), f"00-{TRACE_ID}-00f067aa0ba902b7-01"]
)
def test_a_traceparent_header_term_is_its_trace_id(value: str) -> None:
    """A traceparent term takes a trace id or a whole version-00 traceparent."""
    assert parse_terms(f"header.traceparent={value}").trace_id == TRACE_ID


@pytest.mark.parametrize(
    ("q", "says"),
    [
        ('"open', "quote"),
        ("---", "no letter or digit"),
        ("___", "no letter or digit"),
        ("a..b=1", "not a payload path"),
        ("a b=", "needs a value"),
        ("x" * 201, "at most 200"),
        ("q" * 513, "at most 512"),
        (" ".join(["w"] * (MAX_TERMS + 1)), f"at most {MAX_TERMS} terms"),
        ("header.webhook-id=ep_1", "message id"),
        ("header.traceparent=abc", "trace id"),
        ("header.authorization=Bearer", "secrets"),
        ("header.x-api-key=1", "secrets"),
        ("header.webhook-signature=v1", "not stored"),
        ("header.webhook-timestamp=1", "before and after"),
    ],
)
def test_a_search_that_cannot_run_is_refused_naming_q(q: str, says: str) -> None:
    """Each refusal is an InvalidRequest (a 422) at ("query", "q") saying why."""
    with pytest.raises(SearchError, match=says) as refused:
        parse_terms(q)
    assert isinstance(refused.value, InvalidRequest)
    assert refused.value.loc == ("query", "q")


def test_a_cursor_round_trips_and_a_foreign_one_is_refused() -> None:
    """The iterator a page gives back reads as the same cursor; anything else is refused
    rather than taken for the first page."""
    cursor = Cursor("msg_2abc", "ep_2def")
    assert parse_cursor(cursor.text()) == cursor
    assert parse_cursor(None) is None
    for bad in ("msg_2abc", "msg_2abc.", ".ep_1", "msg-1.ep_1", "-msg_1.ep_1"):
        with pytest.raises(SearchError) as refused:
            parse_cursor(bad)
        assert refused.value.loc == ("query", "iterator")


def test_a_status_code_is_an_http_status_or_zero() -> None:
    """0 (no answer) to 599 are status codes; others are refused."""
    assert check_status_code(0) == 0
    assert check_status_code(503) == 503
    assert check_status_code(None) is None
    with pytest.raises(SearchError):
        check_status_code(600)
