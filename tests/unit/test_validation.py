"""The input rules of ``domain/validation.py``, and their agreement with the transport."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hookline.domain import validation as v
from hookline.transport import SsrfPolicy
from hookline.transport._target import Target, parse_target

DIAL_ANYTHING = SsrfPolicy(allow_private=True)


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com:99999/",
        "https://example.com:0/",
        "https://ex ample.com/",
        "https://example.com/\r\nX: y",
        "https://example.com/\x7f",
        "ftp://example.com/",
        "https:///path",
        "example.com/hook",
        "https://[::1/",
        "https://[not-v6]/",
        "https://127.1/",
        "https://0x7f.1/",
        "https://a..b/",
        "https://-a.com/",
        "https://" + "a" * 64 + ".com/",
        "https://example.com/" + "a" * v.MAX_URL_LENGTH,
    ],
)
def test_urls_no_delivery_could_use_are_refused(url: str) -> None:
    """Each of these was accepted once and failed every delivery, or could not be sent."""
    with pytest.raises(v.InvalidValue, match="url"):
        v.check_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/hook?a=1#frag",
        "http://user:pass@example.com:8080/x",
        "https://[2001:db8::1]:8443/",
        "https://10.1.2.3/",
        "https://bücher.example/",
        "http://my_service:3000/hook",
        "https://example.com./",
    ],
)
def test_urls_a_delivery_can_use_are_accepted_and_the_transport_agrees(url: str) -> None:
    """What the rule accepts, the transport parses into something it can dial."""
    assert v.check_url(url) == url
    assert isinstance(parse_target(url, DIAL_ANYTHING), Target)


_LABEL = st.from_regex(r"\A[a-z0-9_](?:[a-z0-9_-]{0,10}[a-z0-9_])?\Z")
_URLS = st.builds(
    lambda scheme, labels, tld, port, path: f"{scheme}://{'.'.join([*labels, tld])}{port}/{path}",
    st.sampled_from(["http", "https"]),
    st.lists(_LABEL, min_size=1, max_size=3),
    st.from_regex(r"\A[a-z]{2,6}\Z"),
    st.one_of(st.just(""), st.integers(0, 70000).map(lambda p: f":{p}")),
    st.text(st.characters(codec="ascii"), max_size=20),
)


@settings(max_examples=300, deadline=None)
@given(_URLS)
def test_every_url_the_rule_accepts_the_transport_can_dial(url: str) -> None:
    """A fuzz over host names, ports and paths: accepted means parseable by the transport."""
    try:
        v.check_url(url)
    except v.InvalidValue:
        return
    assert isinstance(parse_target(url, DIAL_ANYTHING), Target), url


@pytest.mark.parametrize("value", ["a\r\nb", "a\nb", "a\0", "a\x1b[31m", "a\x7f", "tab\there"])
def test_names_refuse_every_control_character(value: str) -> None:
    """A name is one line of text: no CR/LF, NUL, escape, DEL, nor tab."""
    with pytest.raises(v.InvalidValue, match="control"):
        v.check_name(value)


def test_names_and_descriptions_have_length_caps() -> None:
    """256 characters for a name, 8192 for a description; text with line breaks is fine in
    a description."""
    assert v.check_name("n" * v.MAX_NAME_LENGTH)
    with pytest.raises(v.InvalidValue):
        v.check_name("n" * (v.MAX_NAME_LENGTH + 1))
    assert v.check_description("line one\r\nline two\ttabbed")
    with pytest.raises(v.InvalidValue):
        v.check_description("d" * (v.MAX_DESCRIPTION_LENGTH + 1))
    with pytest.raises(v.InvalidValue):
        v.check_description("nul\0")


@pytest.mark.parametrize("key", ["", "a b", "a\r\nb", "é", "a/b", "k" * 257])
def test_keys_follow_svix_pattern(key: str) -> None:
    """Uids and event type names: 1 to 256 of a-z, A-Z, 0-9, '-', '_', '.'."""
    with pytest.raises(v.InvalidValue):
        v.check_key(key)


def test_throttle_rate_is_a_uint16() -> None:
    """1 to 65535: 2**63 would overflow a PostgreSQL integer."""
    assert v.check_throttle_rate(65535) == 65535
    for bad in (0, 65536, 2**63, -1):
        with pytest.raises(v.InvalidValue):
            v.check_throttle_rate(bad)


def test_naive_times_are_utc_and_out_of_range_ones_are_refused() -> None:
    """A time without an offset is read as UTC; years outside 1970-2099 (and offsets that
    overflow) are refused rather than crashing id arithmetic."""
    assert v.check_time(datetime(2024, 1, 1)) == datetime(2024, 1, 1, tzinfo=UTC)
    plus_two = timezone(timedelta(hours=2))
    assert v.check_time(datetime(2024, 1, 1, 2, tzinfo=plus_two)) == datetime(
        2024, 1, 1, tzinfo=UTC
    )
    for bad in (
        datetime(1969, 12, 31, tzinfo=UTC),
        datetime(2100, 1, 1, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, tzinfo=timezone(-timedelta(hours=23))),
        datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1))),
    ):
        with pytest.raises(v.InvalidValue, match="1970"):
            v.check_time(bad)


def test_a_date_time_given_as_text_must_be_iso_8601() -> None:
    """Text that is a number (which pydantic would read as seconds since 1970) or a date
    without a time is refused; ISO 8601 date-times pass unchanged, as do non-text values,
    which the type check judges."""
    for good in ("2024-01-01T00:00:00Z", "2024-01-01 00:00", "2024-01-01t00:00:00+02:00"):
        assert v.check_time_text(good) == good
    assert v.check_time_text(5) == 5
    for bad in ("0.5", "1700000000", "2024-01-01", "", "T00:00", "now"):
        with pytest.raises(v.InvalidValue, match="ISO 8601"):
            v.check_time_text(bad)


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ({"x": 2**64}, "64 bits"),
        ({"x": -(2**63) - 1}, "64 bits"),
        ({"x": [1, {"y": float("nan")}]}, "finite"),
        ({"x": float("inf")}, "finite"),
    ],
)
def test_json_values_must_fit_64_bits_and_be_finite(value: object, why: str) -> None:
    """What JSON cannot carry faithfully is named, at any depth."""
    assert why in (v.json_problem(value) or "")


def test_json_nesting_is_bounded() -> None:
    """A value nested past 128 levels is refused (orjson stops at 254)."""
    deep: object = 1
    for _ in range(v.MAX_JSON_DEPTH + 1):
        deep = [deep]
    assert "nesting" in (v.json_problem(deep) or "")
    assert v.json_problem({"x": [2**64 - 1, -(2**63), 1.5, None, True, "s"]}) is None
