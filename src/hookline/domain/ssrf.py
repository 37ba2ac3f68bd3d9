"""Which destination addresses the SSRF guard refuses (DESIGN.md, "Safety").

Pure classification of already-resolved IP addresses; the resolver and the connection to
the vetted address live in ``hookline.transport`` (``_ssrf.py``). IPv6 forms that carry an IPv4
address (mapped, compatible, translated, NAT64, 6to4, Teredo) are judged by the address
they carry, since a gateway or the host's own stack would deliver to it.

Ranges come from the IANA IPv4 and IPv6 Special-Purpose Address Registries (RFC 6890).

``PortPolicy`` is the operator's optional rule on destination ports, judged alongside the
address: a receiver on a mail or database port of a public host is refused even though the
address is public.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

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


PortRange = tuple[int, int]
"""An inclusive range of TCP ports; a single port is ``(p, p)``."""


@dataclass(frozen=True, slots=True)
class PortPolicy:
    """Which destination ports deliveries may reach (``HOOKLINE_OUTBOUND_ALLOW_PORTS`` and
    ``HOOKLINE_OUTBOUND_DENY_PORTS``): a listed port is denied even when allowed, and with
    no allow list every port not denied is allowed. Port 0 is never a destination."""

    allow: tuple[PortRange, ...] = ()
    deny: tuple[PortRange, ...] = ()

    def check(self, port: int) -> str | None:
        """None when ``port`` may be connected to, else the reason it may not."""
        if not 1 <= port <= 65535:
            return f"port {port} is not a TCP port (1-65535)"
        if any(low <= port <= high for low, high in self.deny):
            return f"port {port} is denied by HOOKLINE_OUTBOUND_DENY_PORTS"
        if self.allow and not any(low <= port <= high for low, high in self.allow):
            return f"port {port} is not in HOOKLINE_OUTBOUND_ALLOW_PORTS"
        return None


ANY_PORT = PortPolicy()


def parse_ports(text: str) -> tuple[PortRange, ...]:
    """Comma-separated ports and inclusive ranges: ``443,8000-8999``; empty is none."""
    ranges: list[PortRange] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        low_text, dash, high_text = part.partition("-")
        try:
            low = int(low_text.strip())
            high = int(high_text.strip()) if dash else low
        except ValueError:
            raise ValueError(f"{part!r} is not a port (443) or a range (8000-8999)") from None
        if not 1 <= low <= high <= 65535:
            raise ValueError(f"{part!r}: ports are 1-65535, and a range goes from low to high")
        ranges.append((low, high))
    return tuple(ranges)


_DEFAULT_PORTS = {"http": 80, "https": 443}


def destination_reason(url: str, *, https_only: bool, ports: PortPolicy) -> str | None:
    """Why an endpoint URL may not be stored under the operator's destination rules
    (``HOOKLINE_ENDPOINT_HTTPS_ONLY``, the port lists), or None. Only what the URL itself
    says is judged here; its host's addresses are judged at each connection, since they
    can change after the endpoint is saved."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if https_only and scheme == "http":
        return (
            "must be an https:// URL: this server refuses http:// endpoints "
            "(HOOKLINE_ENDPOINT_HTTPS_ONLY)"
        )
    try:
        port = parts.port
    except ValueError:
        return "the URL's port must be a number from 1 to 65535"
    if port is None:
        port = _DEFAULT_PORTS.get(scheme)
    if port is None:
        return None
    reason = ports.check(port)
    return None if reason is None else f"{reason}: deliveries to it would be refused"
