"""Address allowlists of the API: which client addresses a network list admits.

One rule for the global list (``HOOKLINE_API_ALLOW_NETWORKS``) and for a token's own
(``allowedNetworks``, docs/security.md). A client seen as an IPv4-mapped IPv6 address
(``::ffff:10.1.2.3``, what a dual-stack socket reports for an IPv4 peer) is judged as the
IPv4 address it carries, so an IPv4 network admits it whichever socket it came through;
for the same reason a network written in the mapped form is kept as the IPv4 network it
names.

A token's networks are parsed strictly: ``10.1.2.3/8`` is refused rather than read as
``10.0.0.0/8``, since an allowlist that silently grew past what was typed is the wrong way
for this to fail.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from ipaddress import IPv4Network, IPv6Address, IPv6Network

Network = IPv4Network | IPv6Network

MAX_TOKEN_NETWORKS = 100
"""The most networks one token may carry: a list, not a routing table, and checked in
order on each of the token's requests."""
MAX_NETWORK_CHARS = 64
"""Longer than any CIDR (the longest, an IPv6 one spelled out with a dotted quad, is 49)."""


class InvalidNetwork(ValueError):
    """A network that cannot be used; the message says what to write instead."""


def parse_network(text: str) -> Network:
    """A CIDR network; a bare address is that one host (/32 or /128)."""
    written = text.strip()
    if not written or len(written) > MAX_NETWORK_CHARS:
        raise InvalidNetwork(f"{text[:MAX_NETWORK_CHARS]!r} is not a CIDR network")
    if "%" in written:
        # ipaddress accepts a scope id ("fe80::1%eth0"); a network has no interface.
        raise InvalidNetwork(f"{written!r}: give the network without a zone (%…)")
    try:
        network = ipaddress.ip_network(written, strict=True)
    except ValueError as exc:
        if "host bits set" in str(exc):
            loose = ipaddress.ip_network(written, strict=False)
            host = written.partition("/")[0]
            raise InvalidNetwork(
                f"{written!r} has host bits set: write {loose} for the network, "
                f"or {host} for the one address"
            ) from None
        raise InvalidNetwork(
            f"{written!r} is not a CIDR network such as 10.0.0.0/8, 2001:db8::/32 or 192.0.2.7"
        ) from None
    return _unmapped(network)


def parse_allowlist(entries: Sequence[str]) -> tuple[Network, ...]:
    """A token's networks, in the order given, duplicates dropped.

    An empty list is refused: it would admit no address at all, and read as "no
    restriction" it would make a list computed down to nothing open the token to all.
    """
    if not entries:
        raise InvalidNetwork(
            "give at least one network, or none at all (null) for a token usable from any address"
        )
    if len(entries) > MAX_TOKEN_NETWORKS:
        raise InvalidNetwork(f"at most {MAX_TOKEN_NETWORKS} networks, not {len(entries)}")
    return tuple(dict.fromkeys(parse_network(entry) for entry in entries))


def admits(networks: Iterable[Network], client: str | None) -> bool:
    """Whether ``client`` (an address as the server saw it) is inside one of ``networks``.

    No address, or one that is not an IP address (a Unix socket's peer), is admitted by
    no list: an allowlist fails closed. An IPv4-mapped client is matched as its IPv4
    address, and an IPv4-mapped network (``::ffff:10.0.0.0/104``, as an operator may write
    ``HOOKLINE_API_ALLOW_NETWORKS``) as its IPv4 network, so either spelling admits both.
    """
    if client is None:
        return False
    try:
        address = ipaddress.ip_address(client)
    except ValueError:
        return False
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in _unmapped(network) for network in networks)


def encode(networks: tuple[Network, ...] | None) -> str | None:
    """How a token's list is stored: comma-separated CIDRs; NULL for any address."""
    return None if networks is None else ",".join(str(n) for n in networks)


def decode(text: str | None) -> tuple[Network, ...] | None:
    """A stored list (written by ``encode``, so already checked)."""
    if text is None:
        return None
    return tuple(ipaddress.ip_network(part) for part in text.split(",") if part)


def _unmapped(network: Network) -> Network:
    """``::ffff:10.0.0.0/104`` as ``10.0.0.0/8``: clients are matched unmapped."""
    if isinstance(network, IPv6Network) and network.prefixlen >= 96:
        carried = network.network_address.ipv4_mapped
        if carried is not None:
            return IPv4Network((carried, network.prefixlen - 96))
    return network
