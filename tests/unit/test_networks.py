"""The API's address allowlist rule (``domain/networks.py``): parsing a token's networks and
judging a client address against them."""

from __future__ import annotations

import ipaddress

import pytest

from hookline.domain.networks import (
    MAX_TOKEN_NETWORKS,
    InvalidNetwork,
    admits,
    decode,
    encode,
    parse_allowlist,
    parse_network,
)


@pytest.mark.parametrize(
    ("written", "parsed"),
    [
        ("10.0.0.0/8", "10.0.0.0/8"),
        (" 192.0.2.7 ", "192.0.2.7/32"),
        ("2001:DB8::/32", "2001:db8::/32"),
        ("::1", "::1/128"),
        ("::ffff:10.0.0.0/104", "10.0.0.0/8"),
        ("::ffff:192.0.2.7", "192.0.2.7/32"),
        ("0.0.0.0/0", "0.0.0.0/0"),
        (
            "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255/128",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128",
        ),
    ],
)
def test_a_network_is_a_cidr_or_one_address_in_canonical_form(written: str, parsed: str) -> None:
    """A bare address is one host; an IPv4-mapped network is kept as the IPv4 network it
    names, since clients are matched unmapped; the result is the canonical spelling."""
    assert str(parse_network(written)) == parsed


@pytest.mark.parametrize(
    ("written", "says"),
    [
        ("10.1.2.3/8", "write 10.0.0.0/8 for the network, or 10.1.2.3 for the one address"),
        ("example.com", "is not a CIDR network"),
        ("10.0.0.0/33", "is not a CIDR network"),
        ("010.0.0.1", "is not a CIDR network"),
        ("", "is not a CIDR network"),
        ("fe80::1%eth0", "without a zone"),
        ("1" * 100, "is not a CIDR network"),
    ],
)
def test_a_bad_network_is_refused_with_what_to_write(written: str, says: str) -> None:
    """Host bits set are refused rather than silently widened; every refusal says why."""
    with pytest.raises(InvalidNetwork) as refused:
        parse_network(written)
    assert says in str(refused.value)


def test_an_allowlist_is_capped_not_empty_and_without_duplicates() -> None:
    """At most MAX_TOKEN_NETWORKS entries; none at all is refused (it would admit nobody,
    or, read as no restriction, everybody); repeats of one network collapse to one."""
    assert parse_allowlist(["10.0.0.1", "10.0.0.1/32", "::1"]) == (
        ipaddress.ip_network("10.0.0.1/32"),
        ipaddress.ip_network("::1/128"),
    )
    with pytest.raises(InvalidNetwork, match="at least one network"):
        parse_allowlist([])
    many = [f"10.0.{i // 256}.{i % 256}" for i in range(MAX_TOKEN_NETWORKS + 1)]
    assert len(parse_allowlist(many[:-1])) == MAX_TOKEN_NETWORKS
    with pytest.raises(InvalidNetwork, match=f"at most {MAX_TOKEN_NETWORKS}"):
        parse_allowlist(many)


@pytest.mark.parametrize(
    ("client", "admitted"),
    [
        ("10.2.3.4", True),
        ("::ffff:10.2.3.4", True),
        ("11.0.0.1", False),
        ("::ffff:11.0.0.1", False),
        ("2001:db8::5", True),
        ("2001:db9::5", False),
        ("fe80::1%eth0", False),
        ("unix-socket-peer", False),
        (None, False),
    ],
)
def test_a_client_is_admitted_by_its_address_ipv4_mapped_ones_as_ipv4(
    client: str | None, admitted: bool
) -> None:
    """An IPv4-mapped client matches IPv4 networks; anything not an address fails closed."""
    networks = parse_allowlist(["10.0.0.0/8", "2001:db8::/32"])
    assert admits(networks, client) is admitted


@pytest.mark.parametrize("client", ["10.2.3.4", "::ffff:10.2.3.4"])
def test_an_ipv4_mapped_network_of_the_setting_admits_its_ipv4_clients(client: str) -> None:
    """``HOOKLINE_API_ALLOW_NETWORKS`` is parsed as written (``domain.ssrf.parse_networks``),
    so it may hold ``::ffff:10.0.0.0/104``: that admits 10.x clients in either spelling,
    as ``10.0.0.0/8`` does, instead of none (clients are compared unmapped)."""
    setting = (ipaddress.ip_network("::ffff:10.0.0.0/104"),)
    assert admits(setting, client)
    assert not admits(setting, "11.0.0.1")


def test_a_link_local_client_with_a_zone_is_judged_by_its_address() -> None:
    """A zone id on the client's address does not keep it out of its network."""
    assert admits(parse_allowlist(["fe80::/10"]), "fe80::1%eth0")


def test_the_stored_form_reads_back_as_written_and_null_is_any_address() -> None:
    """Encoding then decoding gives the same networks; None stays None (no restriction)."""
    networks = parse_allowlist(["10.0.0.0/8", "2001:db8::/32", "192.0.2.7"])
    assert encode(networks) == "10.0.0.0/8,2001:db8::/32,192.0.2.7/32"
    assert decode(encode(networks)) == networks
    assert encode(None) is None and decode(None) is None
