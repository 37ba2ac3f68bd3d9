"""Custom endpoint headers: names keep their case, and the refusals that protect a request."""

from __future__ import annotations

import pytest

from hookline.domain.headers import InvalidHeader, merge_headers, normalize_headers, redacted


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


@pytest.mark.parametrize("value", ["a\r\nInjected: 1", "a\nb", "a\0"])
def test_line_breaks_and_nul_in_values_are_refused(value: str) -> None:
    """A value cannot smuggle a second header line."""
    with pytest.raises(InvalidHeader, match="line break or NUL"):
        normalize_headers({"X-Team": value})


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
