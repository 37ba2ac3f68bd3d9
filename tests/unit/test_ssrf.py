"""SSRF classification of resolved addresses, including IPv4 hidden in IPv6."""

from __future__ import annotations

import ipaddress
import socket

import pytest

from hookline.domain.ssrf import deny_reason, embedded_ipv4, parse_networks

DENIED = [
    "127.0.0.1",
    "127.255.255.254",
    "0.0.0.0",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",
    "100.64.0.1",
    "224.0.0.1",
    "240.0.0.1",
    "255.255.255.255",
    "198.18.0.1",
    "::1",
    "::",
    "fd00::1",
    "fe80::1",
    "ff02::1",
    "::ffff:127.0.0.1",
    "::ffff:7f00:1",
    "::ffff:169.254.169.254",
    "::127.0.0.1",
    "64:ff9b::a00:1",
    "64:ff9b:1::7f00:1",
    "2002:7f00:1::",
    "2001:0:4136:e378:8000:63bf:80ff:fffe",
]
ALLOWED = ["93.184.216.34", "8.8.8.8", "2606:4700::1", "::ffff:93.184.216.34", "2002:5db8:d822::"]


@pytest.mark.parametrize("address", DENIED)
def test_internal_addresses_are_denied(address: str) -> None:
    """Loopback, private, link-local, CGNAT, multicast, reserved and IPv6 embeddings are refused."""
    assert deny_reason(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", ALLOWED)
def test_public_addresses_are_allowed(address: str) -> None:
    """Public addresses, also when carried in IPv6 forms, pass the guard."""
    assert deny_reason(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize("spelling", ["127.1", "2130706433", "0x7f000001", "0177.0.0.1", "127.0.1"])
def test_numeric_spellings_of_loopback_resolve_to_a_denied_address(spelling: str) -> None:
    """Odd spellings of 127.0.0.1 resolve (as the transport resolves them) to a denied address."""
    infos = socket.getaddrinfo(spelling, 80, type=socket.SOCK_STREAM)
    for *_, sockaddr in infos:
        reason = deny_reason(ipaddress.ip_address(sockaddr[0]))
        assert reason is not None and "loopback" in reason


def test_teredo_client_is_the_inverted_last_32_bits() -> None:
    """Teredo's embedded client address is recovered by inverting its last 32 bits."""
    teredo = ipaddress.IPv6Address("2001:0:4136:e378:8000:63bf:80ff:fffe")
    assert embedded_ipv4(teredo) == ipaddress.IPv4Address("127.0.0.1")


def test_allow_networks_exempt_addresses_inside_them_only() -> None:
    """HOOKLINE_ALLOW_NETWORKS exempts its CIDRs and nothing else."""
    allow = parse_networks("10.1.0.0/16, fd12::/16")
    assert deny_reason(ipaddress.ip_address("10.1.2.3"), allow_networks=allow) is None
    assert deny_reason(ipaddress.ip_address("fd12::5"), allow_networks=allow) is None
    assert deny_reason(ipaddress.ip_address("10.2.0.1"), allow_networks=allow) is not None


def test_dev_mode_allows_private_but_not_multicast_or_unspecified() -> None:
    """--dev reaches loopback and private ranges but never multicast or 0.0.0.0."""
    for address in ("127.0.0.1", "10.0.0.1", "::1", "::ffff:127.0.0.1", "fd00::1"):
        assert deny_reason(ipaddress.ip_address(address), allow_private=True) is None
    for address in ("224.0.0.1", "0.0.0.0", "ff02::1"):
        assert deny_reason(ipaddress.ip_address(address), allow_private=True) is not None


def test_parse_networks_rejects_junk() -> None:
    """A malformed CIDR in the setting is refused with the offending value."""
    assert parse_networks("") == ()
    with pytest.raises(ValueError, match=r"10\.0\.0\.0/33"):
        parse_networks("10.0.0.0/33")
