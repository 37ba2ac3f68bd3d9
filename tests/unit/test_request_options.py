"""``RequestOptions`` and ``TlsOptions``: what a caller may ask of one request, checked when
built."""

from __future__ import annotations

import pytest

from hookline.transport import (
    DEFAULT_OPTIONS,
    RESPONSE_BODY_LIMIT_BYTES,
    RequestOptions,
    TlsOptions,
)


def test_the_defaults_are_todays_behaviour() -> None:
    """Without options a response is read up to 20 KB and TLS uses the system's trust."""
    assert RequestOptions() == DEFAULT_OPTIONS
    assert (DEFAULT_OPTIONS.max_response_bytes, DEFAULT_OPTIONS.tls) == (
        RESPONSE_BODY_LIMIT_BYTES,
        None,
    )
    assert RESPONSE_BODY_LIMIT_BYTES == 20 * 1024


def test_a_negative_response_cap_is_refused() -> None:
    """A cap below zero means nothing, so it cannot be built."""
    with pytest.raises(ValueError, match="max_response_bytes"):
        RequestOptions(max_response_bytes=-1)


@pytest.mark.parametrize(
    "half", [{"client_certificate": "CERT"}, {"client_key": "KEY"}], ids=["cert", "key"]
)
def test_a_client_certificate_and_its_key_go_together(half: dict[str, str]) -> None:
    """One without the other cannot be presented, so it cannot be built."""
    with pytest.raises(ValueError, match="go together"):
        TlsOptions(**half)


def test_the_private_key_never_shows_in_repr() -> None:
    """Options end up in logs and tracebacks; the key must not."""
    options = RequestOptions(
        tls=TlsOptions(ca_bundle="CA", client_certificate="CERT", client_key="SECRET-KEY")
    )
    assert "SECRET-KEY" not in repr(options)
    assert "CERT" in repr(options)


def test_equal_settings_are_one_key() -> None:
    """Options built apart from equal text are equal and hash alike: one pool, one context."""
    first = TlsOptions(ca_bundle="CA", client_certificate="CERT", client_key="KEY")
    second = TlsOptions(ca_bundle="CA", client_certificate="CERT", client_key="KEY")
    assert first == second and hash(first) == hash(second)
    assert first != TlsOptions(ca_bundle="CA")
