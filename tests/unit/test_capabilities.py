"""What a token holds, from what was asked: Svix's defaults, implications, readOnly."""

from __future__ import annotations

import pytest

from hookline.domain.capabilities import (
    ALL,
    Capability,
    UnknownCapability,
    decode,
    encode,
    grant,
    parse,
)

C = Capability


def test_nothing_named_grants_everything_as_svix_does() -> None:
    """Svix: without explicit capabilities the token gets all of them."""
    assert grant(None, read_only=False) == ALL


def test_view_base_is_always_held_and_managing_implies_viewing() -> None:
    """ManageEndpoint implies the secret capabilities; ManageEndpointSecret implies viewing."""
    assert grant([], read_only=False) == {C.VIEW_BASE}
    assert grant([C.MANAGE_ENDPOINT], read_only=False) == {
        C.VIEW_BASE,
        C.MANAGE_ENDPOINT,
        C.MANAGE_ENDPOINT_SECRET,
        C.VIEW_ENDPOINT_SECRET,
    }
    assert grant([C.MANAGE_ENDPOINT_SECRET], read_only=False) == {
        C.VIEW_BASE,
        C.MANAGE_ENDPOINT_SECRET,
        C.VIEW_ENDPOINT_SECRET,
    }


def test_read_only_keeps_only_reading_and_shows_secrets_only_when_named() -> None:
    """readOnly drops every writing capability, implied ones included; the secret is shown
    only if ViewEndpointSecret itself was named."""
    assert grant(None, read_only=True) == {C.VIEW_BASE}
    assert grant([C.MANAGE_ENDPOINT], read_only=True) == {C.VIEW_BASE}
    assert grant([C.VIEW_ENDPOINT_SECRET, C.CREATE_ATTEMPTS], read_only=True) == {
        C.VIEW_BASE,
        C.VIEW_ENDPOINT_SECRET,
    }


def test_parse_takes_wire_names_and_names_an_unknown_one() -> None:
    """Names are Svix's wire names; an unknown one is refused with the list of known ones."""
    assert parse(["ViewBase", "CreateAttempts"]) == {C.VIEW_BASE, C.CREATE_ATTEMPTS}
    with pytest.raises(UnknownCapability, match=r"'Admin'.*ViewBase"):
        parse(["Admin"])


def test_stored_form_round_trips_and_null_means_every_capability() -> None:
    """Tokens stored before capabilities (NULL) keep the full rights they always had."""
    held = frozenset({C.VIEW_BASE, C.PUBLISH_MESSAGES})
    assert decode(encode(held)) == held
    assert decode(None) == ALL
