"""Which destination addresses the SSRF guard refuses (DESIGN.md, "Safety").

Pure classification of already-resolved IP addresses; the resolver and the connection to
the vetted address live in ``delivery/transport.py``. IPv6 forms that carry an IPv4
address (mapped, compatible, NAT64, 6to4, Teredo) are judged by the address they carry,
since a gateway would deliver to it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_V4 = ipaddress.IPv4Network
_V6 = ipaddress.IPv6Network

# Ranges a dev machine may reach (--dev); everything else here is always refused.
_PRIVATE_RANGES: tuple[tuple[Network, str], ...] = (
    (_V4("127.0.0.0/8"), "loopback"),
    (_V4("10.0.0.0/8"), "private"),
    (_V4("172.16.0.0/12"), "private"),
    (_V4("192.168.0.0/16"), "private"),
    (_V4("169.254.0.0/16"), "link-local"),
    (_V4("100.64.0.0/10"), "carrier-grade NAT"),
    (_V6("::1/128"), "loopback"),
    (_V6("fc00::/7"), "unique-local"),
    (_V6("fe80::/10"), "link-local"),
    (_V6("fec0::/10"), "site-local"),
)
_ALWAYS_DENIED: tuple[tuple[Network, str], ...] = (
    (_V4("0.0.0.0/8"), "unspecified"),
    (_V4("192.0.0.0/24"), "IETF protocol assignment"),
    (_V4("192.0.2.0/24"), "documentation"),
    (_V4("198.18.0.0/15"), "benchmarking"),
    (_V4("198.51.100.0/24"), "documentation"),
    (_V4("203.0.113.0/24"), "documentation"),
    (_V4("224.0.0.0/4"), "multicast"),
    (_V4("240.0.0.0/4"), "reserved"),
    (_V6("::/128"), "unspecified"),
    (_V6("ff00::/8"), "multicast"),
    (_V6("100::/64"), "discard-only"),
    (_V6("2001:db8::/32"), "documentation"),
)
_NAT64 = (_V6("64:ff9b::/96"), _V6("64:ff9b:1::/48"))
_SIXTOFOUR = _V6("2002::/16")
_TEREDO = _V6("2001::/32")
_COMPATIBLE = _V6("::/96")


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries, if it is one of the embedding forms."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if any(address in net for net in _NAT64) or (address in _COMPATIBLE and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in _SIXTOFOUR:
        return address.sixtofour
    if address in _TEREDO and address.teredo is not None:
        return address.teredo[1]
    return None


def _classify(address: Address, allow_private: bool) -> str | None:
    for network, label in _ALWAYS_DENIED:
        if address.version == network.version and address in network:
            return label
    if not allow_private:
        for network, label in _PRIVATE_RANGES:
            if address.version == network.version and address in network:
                return label
    if isinstance(address, ipaddress.IPv4Address) and address == ipaddress.IPv4Address(
        "255.255.255.255"
    ):
        return "broadcast"
    return None


def deny_reason(
    address: Address,
    *,
    allow_networks: Sequence[Network] = (),
    allow_private: bool = False,
) -> str | None:
    """None when hookline may connect to ``address``; otherwise why not, for the attempt log."""
    if any(address.version == net.version and address in net for net in allow_networks):
        return None
    label = _classify(address, allow_private)
    if label is not None:
        return f"{label} address {address}"
    if isinstance(address, ipaddress.IPv6Address):
        inner = embedded_ipv4(address)
        if inner is not None:
            inner_reason = deny_reason(
                inner, allow_networks=allow_networks, allow_private=allow_private
            )
            if inner_reason is not None:
                return f"{address} embeds {inner_reason}"
    return None


def parse_networks(text: str) -> tuple[Network, ...]:
    """Parse ``HOOKLINE_ALLOW_NETWORKS``: comma-separated CIDRs (a bare address is one host)."""
    networks: list[Network] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            networks.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise ValueError(f"{part!r} is not a CIDR network such as 10.0.0.0/8") from None
    return tuple(networks)
