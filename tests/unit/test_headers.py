"""Custom endpoint headers: names keep their case, and the refusals that protect a request."""

from __future__ import annotations

import pytest

from hookline.domain.headers import (
    MAX_CUSTOM_HEADER_BYTES,
    MAX_CUSTOM_HEADERS,
    InvalidHeader,
    header_bytes,
    merge_headers,
    normalize_headers,
    redacted,
)


def test_header_names_keep_the_case_they_were_given_in() -> None:
    """A receiver hand-coded for ``X-Team`` gets ``X-Team``, not ``x-team``."""
    assert normalize_headers({" X-Team ": "core", "x-trace": "1"}) == {
        "X-Team": "core",
        "x-trace": "1",
    }


def test_two_names_differing_only_in_case_are_refused() -> None:
    """They would be one header sent twice with two values."""
    with pytest.raises(InvalidHeader, match="same header"):
        normalize_headers({"X-Team": "a", "x-team": "b"})


@pytest.mark.parametrize("name", ["Host", "Transfer-Encoding", "Webhook-Signature", "Svix-Id"])
def test_headers_hookline_sets_or_hop_by_hop_are_refused_in_any_case(name: str) -> None:
    """A custom header cannot replace framing or signature headers, however it is spelled."""
    with pytest.raises(InvalidHeader, match="set by hookline or is hop-by-hop"):
        normalize_headers({name: "x"})


@pytest.mark.parametrize(
    "value", ["a\r\nInjected: 1", "a\nb", "a\0", "a\x0bb", "a\x7fb", "a\x1bb", "a\x85b", "\r"]
)
def test_control_characters_in_values_are_refused(value: str) -> None:
    """A value cannot smuggle a second header line, nor carry VT, DEL or another control
    character that receivers refuse (RFC 9110 §5.5): it would fail every delivery."""
    with pytest.raises(InvalidHeader, match="control character"):
        normalize_headers({"X-Team": value})


def test_tabs_and_non_ascii_text_in_values_are_kept() -> None:
    """HTAB is field whitespace and non-ASCII text goes out as UTF-8 (obs-text)."""
    assert normalize_headers({"X-Team": "a\tb — café"}) == {"X-Team": "a\tb — café"}


def test_more_than_the_cap_of_headers_is_refused() -> None:
    """51 headers are one too many, however small."""
    headers = {f"X-H{i}": "v" for i in range(MAX_CUSTOM_HEADERS + 1)}
    with pytest.raises(InvalidHeader, match=f"at most {MAX_CUSTOM_HEADERS}"):
        normalize_headers(headers)
    assert len(normalize_headers(dict(list(headers.items())[:-1]))) == MAX_CUSTOM_HEADERS


def test_headers_larger_than_the_byte_cap_are_refused() -> None:
    """The cap counts the lines as sent: ``Name: value`` and CRLF."""
    name = "X-Big"
    fits = "v" * (MAX_CUSTOM_HEADER_BYTES - len(name) - 4)
    assert header_bytes({name: fits}) == MAX_CUSTOM_HEADER_BYTES
    assert normalize_headers({name: fits}) == {name: fits}
    with pytest.raises(InvalidHeader, match=f"at most {MAX_CUSTOM_HEADER_BYTES}"):
        normalize_headers({name: fits + "v"})


def test_a_patch_that_only_deletes_is_allowed_past_the_caps() -> None:
    """Headers stored before the caps can still be trimmed; adding to them cannot."""
    stored = {f"X-H{i}": "v" for i in range(MAX_CUSTOM_HEADERS + 5)}
    assert len(merge_headers(stored, {}, ["X-H0"])) == MAX_CUSTOM_HEADERS + 4
    with pytest.raises(InvalidHeader, match="at most"):
        merge_headers(stored, {"X-New": "v"}, ["X-H0"])


def test_a_name_that_is_not_an_http_token_is_refused() -> None:
    """Spaces or colons in a name would break the request head."""
    with pytest.raises(InvalidHeader, match="not a valid HTTP token"):
        normalize_headers({"X Team": "a"})


def test_merging_replaces_and_deletes_names_in_any_case() -> None:
    """An update of ``x-team`` replaces ``X-Team``; deleting ``X-OLD`` removes ``x-old``."""
    current = {"X-Team": "core", "x-old": "1", "Keep": "yes"}
    merged = merge_headers(current, {"x-team": "edge"}, ["X-OLD"])
    assert merged == {"Keep": "yes", "x-team": "edge"}


def test_credentials_are_withheld_whatever_their_case() -> None:
    """``Authorization`` and token-like names are listed as sensitive, never shown."""
    shown, hidden = redacted({"Authorization": "Bearer s", "X-Api-Token": "t", "X-Team": "c"})
    assert shown == {"X-Team": "c"}
    assert hidden == ["Authorization", "X-Api-Token"]
