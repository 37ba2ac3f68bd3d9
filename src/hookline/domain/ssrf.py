"""Which destination addresses the SSRF guard refuses (DESIGN.md, "Safety").

Pure classification of already-resolved IP addresses; the resolver and the connection to
the vetted address live in ``hookline.transport`` (``_ssrf.py``). IPv6 forms that carry an IPv4
address (mapped, compatible, translated, NAT64, 6to4, Teredo) are judged by the address
they carry, since a gateway or the host's own stack would deliver to it.

Ranges come from the IANA IPv4 and IPv6 Special-Purpose Address Registries (RFC 6890).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_V4 = ipaddress.IPv4Network
_V6 = ipaddress.IPv6Network

# Never a destination, not even in --dev: nothing listens on them with a TCP socket.
_NEVER: tuple[tuple[Network, str], ...] = (
    (_V4("0.0.0.0/8"), "unspecified"),  # RFC 791 "this network"
    (_V4("224.0.0.0/4"), "multicast"),  # RFC 5771
    (_V6("::/128"), "unspecified"),  # RFC 4291 §2.5.2
    (_V6("ff00::/8"), "multicast"),  # RFC 4291 §2.7
)
# Not on the public internet; --dev (allow_private) reaches them.
_NON_PUBLIC: tuple[tuple[Network, str], ...] = (
    (_V4("127.0.0.0/8"), "loopback"),  # RFC 1122 §3.2.1.3
    (_V4("10.0.0.0/8"), "private"),  # RFC 1918
    (_V4("172.16.0.0/12"), "private"),
    (_V4("192.168.0.0/16"), "private"),
    (_V4("169.254.0.0/16"), "link-local"),  # RFC 3927; cloud metadata is 169.254.169.254
    (_V4("100.64.0.0/10"), "carrier-grade NAT"),  # RFC 6598
    (_V4("192.0.0.0/24"), "IETF protocol assignment"),  # RFC 6890
    (_V4("192.0.2.0/24"), "documentation"),  # RFC 5737
    (_V4("198.51.100.0/24"), "documentation"),
    (_V4("203.0.113.0/24"), "documentation"),
    (_V4("192.88.99.0/24"), "6to4 relay anycast"),  # RFC 7526 (deprecated)
    (_V4("198.18.0.0/15"), "benchmarking"),  # RFC 2544
    (_V4("255.255.255.255/32"), "broadcast"),  # RFC 919
    (_V4("240.0.0.0/4"), "reserved"),  # RFC 1112 §4
    (_V6("::1/128"), "loopback"),  # RFC 4291 §2.5.3
    (_V6("fc00::/7"), "unique-local"),  # RFC 4193
    (_V6("fe80::/10"), "link-local"),  # RFC 4291 §2.5.6
    (_V6("fec0::/10"), "site-local"),  # RFC 3879 (deprecated)
    (_V6("100::/64"), "discard-only"),  # RFC 6666
    (_V6("2001:2::/48"), "benchmarking"),  # RFC 5180
    (_V6("2001:db8::/32"), "documentation"),  # RFC 3849
    (_V6("3fff::/20"), "documentation"),  # RFC 9637
    (_V6("5f00::/16"), "segment routing"),  # RFC 9602
    (_V6("64:ff9b:1::/48"), "local-use NAT64"),  # RFC 8215: site-local translators only
)
# RFC 4291 §2.4: only 2000::/3 is global unicast; outside it, only the embedding forms
# below can lead anywhere.
_GLOBAL_UNICAST = _V6("2000::/3")
_MAPPED = _V6("::ffff:0:0/96")  # RFC 4291 §2.5.5.2
_TRANSLATED = _V6("::ffff:0:0:0/96")  # RFC 2765 §2.1 (SIIT)
_COMPATIBLE = _V6("::/96")  # RFC 4291 §2.5.5.1 (deprecated)
_NAT64 = _V6("64:ff9b::/96")  # RFC 6052 §2.1
_SIXTOFOUR = _V6("2002::/16")  # RFC 3056 §2
_TEREDO = _V6("2001::/32")  # RFC 4380 §4


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries, if it is one of the embedding forms."""
    if address in _SIXTOFOUR:
        return address.sixtofour
    if address in _TEREDO:
        # RFC 4380 §4: the client's IPv4 address is the last 32 bits, bitwise inverted.
        return ipaddress.IPv4Address(~int(address) & 0xFFFFFFFF)
    if address in _COMPATIBLE and int(address) <= 1:
        return None  # :: and ::1 are the unspecified and loopback addresses themselves
    if any(address in net for net in (_MAPPED, _TRANSLATED, _NAT64, _COMPATIBLE)):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _match(address: Address, ranges: tuple[tuple[Network, str], ...]) -> str | None:
    for network, label in ranges:
        if address.version == network.version and address in network:
            return label
    return None


def _own_reason(address: Address, allow_private: bool) -> str | None:
    """Why the address itself (not what it embeds) is refused."""
    label = _match(address, _NEVER)
    if label is None and not allow_private:
        label = _match(address, _NON_PUBLIC)
    return f"{label} address {address}" if label else None


def _embedded_reason(
    address: ipaddress.IPv6Address, allow_networks: Sequence[Network], allow_private: bool
) -> str | None:
    inner = embedded_ipv4(address)
    if inner is None:
        if allow_private or address in _GLOBAL_UNICAST:
            return None
        return f"reserved address {address}"
    reason = deny_reason(inner, allow_networks=allow_networks, allow_private=allow_private)
    return f"{address} embeds {reason}" if reason else None


def deny_reason(
    address: Address,
    *,
    allow_networks: Sequence[Network] = (),
    allow_private: bool = False,
) -> str | None:
    """None when hookline may connect to ``address``; otherwise why not, for the attempt log.

    ``allow_networks`` (``HOOKLINE_ALLOW_NETWORKS``) exempts whatever lies inside them;
    ``allow_private`` (``--dev``) exempts every range but unspecified and multicast.
    """
    if any(address.version == net.version and address in net for net in allow_networks):
        return None
    reason = _own_reason(address, allow_private)
    if reason is None and isinstance(address, ipaddress.IPv6Address):
        reason = _embedded_reason(address, allow_networks, allow_private)
    return reason


def parse_networks(text: str) -> tuple[Network, ...]:
    """Parse ``HOOKLINE_ALLOW_NETWORKS``: comma-separated CIDRs (a bare address is one host)."""
    networks: list[Network] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            networks.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise ValueError(
                f"{part!r} is not a CIDR network such as 10.0.0.0/8 or fd00::/8"
            ) from None
    return tuple(networks)
