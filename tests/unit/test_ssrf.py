"""SSRF classification of resolved addresses, including IPv4 hidden in IPv6."""

from __future__ import annotations

import ipaddress
import socket

import pytest

from hookline.domain.ssrf import deny_reason, embedded_ipv4, parse_networks


def _teredo(client: str, server: str = "65.54.227.120") -> str:
    """A Teredo address (RFC 4380 §4) whose client field carries ``client``, inverted."""
    value = (0x2001_0000 << 96) | (int(ipaddress.IPv4Address(server)) << 64)
    value |= (0x8000 << 48) | (0x63BF << 32) | (~int(ipaddress.IPv4Address(client)) & 0xFFFFFFFF)
    return str(ipaddress.IPv6Address(value))


DENIED = [
    ("127.0.0.1", "loopback"),
    ("127.255.255.254", "loopback"),
    ("0.0.0.0", "unspecified"),
    ("0.1.2.3", "unspecified"),
    ("10.1.2.3", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.255", "private"),
    ("192.168.1.1", "private"),
    ("169.254.169.254", "link-local"),
    ("100.64.0.1", "carrier-grade NAT"),
    ("100.127.255.255", "carrier-grade NAT"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "broadcast"),
    ("198.18.0.1", "benchmarking"),
    ("198.19.255.255", "benchmarking"),
    ("192.0.2.1", "documentation"),
    ("198.51.100.7", "documentation"),
    ("203.0.113.9", "documentation"),
    ("192.0.0.170", "IETF protocol assignment"),
    ("192.88.99.1", "6to4 relay"),
    ("::1", "loopback"),
    ("::", "unspecified"),
    ("fd00::1", "unique-local"),
    ("fc00::1", "unique-local"),
    ("fe80::1", "link-local"),
    ("fe80::1%eth0", "link-local"),
    ("fec0::1", "site-local"),
    ("ff02::1", "multicast"),
    ("100::1", "discard-only"),
    ("2001:2::1", "benchmarking"),
    ("2001:db8::1", "documentation"),
    ("3fff::1", "documentation"),
    ("5f00::1", "segment routing"),
    ("64:ff9b:1::8.8.8.8", "local-use NAT64"),
    ("4000::1", "reserved"),
    ("::ffff:127.0.0.1", "embeds loopback address 127.0.0.1"),
    ("::ffff:7f00:1", "embeds loopback"),
    ("::ffff:169.254.169.254", "embeds link-local"),
    ("::ffff:0.0.0.0", "embeds unspecified"),
    ("::ffff:224.0.0.1", "embeds multicast"),
    ("::127.0.0.1", "embeds loopback"),
    ("::ffff:0:127.0.0.1", "embeds loopback"),
    ("64:ff9b::a00:1", "embeds private address 10.0.0.1"),
    ("64:ff9b::7f00:1", "embeds loopback"),
    ("2002:7f00:1::", "embeds loopback"),
    ("2002:a9fe:a9fe::", "embeds link-local"),
    (_teredo("127.0.0.1"), "embeds loopback address 127.0.0.1"),
    (_teredo("10.0.0.1"), "embeds private"),
]
ALLOWED = [
    "93.184.216.34",
    "8.8.8.8",
    "1.1.1.1",
    "11.0.0.1",
    "172.32.0.1",
    "100.128.0.1",
    "198.20.0.1",
    "223.255.255.254",
    "2606:4700::1",
    "2a00:1450:4001:82a::200e",
    "::ffff:93.184.216.34",
    "64:ff9b::5db8:d822",
    "2002:5db8:d822::",
    _teredo("93.184.216.34"),
]


@pytest.mark.parametrize(("address", "fragment"), DENIED)
def test_internal_addresses_are_denied_with_a_reason(address: str, fragment: str) -> None:
    """Every non-public range, and IPv6 forms carrying one, is refused with a readable reason."""
    reason = deny_reason(ipaddress.ip_address(address))
    assert reason is not None and fragment in reason


def test_reason_names_the_kind_and_the_address() -> None:
    """The reason is short and names both the range and the address, for the attempt log."""
    assert deny_reason(ipaddress.ip_address("127.0.0.1")) == "loopback address 127.0.0.1"
    assert deny_reason(ipaddress.ip_address("::ffff:127.0.0.1")) == (
        "::ffff:7f00:1 embeds loopback address 127.0.0.1"
    )


@pytest.mark.parametrize("address", ALLOWED)
def test_public_addresses_are_allowed(address: str) -> None:
    """Public addresses, also when carried in IPv6 forms, pass the guard."""
    assert deny_reason(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize("spelling", ["127.1", "2130706433", "0x7f000001", "0177.0.0.1", "127.0.1"])
def test_numeric_spellings_of_loopback_are_loopback_once_parsed(spelling: str) -> None:
    """inet_aton reads odd spellings of 127.0.0.1 as 127.0.0.1, which is then denied."""
    address = ipaddress.ip_address(socket.inet_aton(spelling))
    assert address == ipaddress.IPv4Address("127.0.0.1")
    assert deny_reason(address) == "loopback address 127.0.0.1"


@pytest.mark.parametrize("spelling", ["127.1", "2130706433", "0x7f000001", "::ffff:127.0.0.1"])
def test_numeric_spellings_resolve_to_a_denied_address(spelling: str) -> None:
    """getaddrinfo (what the transport calls) turns these spellings into denied addresses."""
    flags = socket.AI_NUMERICHOST  # numeric only: no DNS in a unit test
    infos = socket.getaddrinfo(spelling, 80, type=socket.SOCK_STREAM, flags=flags)
    for *_, sockaddr in infos:
        reason = deny_reason(ipaddress.ip_address(sockaddr[0]))
        assert reason is not None and "loopback" in reason


@pytest.mark.parametrize(
    ("address", "inner"),
    [
        ("::ffff:1.2.3.4", "1.2.3.4"),
        ("::ffff:0:1.2.3.4", "1.2.3.4"),
        ("::1.2.3.4", "1.2.3.4"),
        ("64:ff9b::1.2.3.4", "1.2.3.4"),
        ("2002:102:304::1", "1.2.3.4"),
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", "127.0.0.1"),
        ("::1", None),
        ("::", None),
        ("2606:4700::1", None),
    ],
)
def test_embedded_ipv4_extraction(address: str, inner: str | None) -> None:
    """The carried IPv4 is found in each form; Teredo's client is the inverted last 32 bits."""
    found = embedded_ipv4(ipaddress.IPv6Address(address))
    assert found == (ipaddress.IPv4Address(inner) if inner else None)


def test_allow_networks_exempt_addresses_inside_them_only() -> None:
    """HOOKLINE_ALLOW_NETWORKS exempts its CIDRs (and IPv6 forms carrying them) and nothing else."""
    allow = parse_networks("10.1.0.0/16, fd12::/16, 192.168.1.5")
    for address in ("10.1.2.3", "fd12::5", "192.168.1.5", "::ffff:10.1.2.3"):
        assert deny_reason(ipaddress.ip_address(address), allow_networks=allow) is None
    for address in ("10.2.0.1", "fd13::1", "192.168.1.6", "127.0.0.1"):
        assert deny_reason(ipaddress.ip_address(address), allow_networks=allow) is not None


def test_allow_networks_can_exempt_even_multicast() -> None:
    """An operator's explicit network wins over every built-in rule."""
    allow = parse_networks("239.0.0.0/8")
    assert deny_reason(ipaddress.ip_address("239.1.1.1"), allow_networks=allow) is None


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.0.0.1",
        "172.20.0.2",
        "192.168.0.10",
        "169.254.169.254",
        "100.64.0.1",
        "198.18.0.1",
        "240.0.0.1",
        "::1",
        "::ffff:127.0.0.1",
        "fd00::1",
        "fe80::1",
        "64:ff9b:1::1",
    ],
)
def test_dev_mode_allows_private_and_reserved(address: str) -> None:
    """--dev reaches loopback, private, link-local, CGNAT, ULA and the other non-public ranges."""
    assert deny_reason(ipaddress.ip_address(address), allow_private=True) is None


@pytest.mark.parametrize(
    "address", ["224.0.0.1", "0.0.0.0", "::", "ff02::1", "::ffff:224.0.0.1", "::ffff:0.0.0.0"]
)
def test_dev_mode_still_denies_multicast_and_unspecified(address: str) -> None:
    """--dev never connects to multicast or unspecified addresses, also when embedded."""
    assert deny_reason(ipaddress.ip_address(address), allow_private=True) is not None


def test_parse_networks_reads_cidrs_and_bare_addresses() -> None:
    """Empty entries are skipped, host bits are masked and a bare address is one host."""
    assert parse_networks("") == ()
    assert parse_networks(" 10.1.2.3/8 ,, fd00::1 ,") == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("fd00::1/128"),
    )


@pytest.mark.parametrize("junk", ["10.0.0.0/33", "example.com", "10.0.0.0/8;", "fd00::/129"])
def test_parse_networks_rejects_junk(junk: str) -> None:
    """A malformed CIDR in the setting is refused, naming the offending value."""
    with pytest.raises(ValueError, match="is not a CIDR network") as info:
        parse_networks(f"192.168.0.0/16,{junk}")
    assert repr(junk) in str(info.value)
