"""The SSRF guard's two halves at the network edge: the policy that judges an address, and
the resolver that judges every address a name resolves to.

The resolver is the only way the transport turns a name into addresses: one denied address
refuses the whole host, and the transport connects to an address the resolver returned, so
nothing can change between check and connect (no DNS rebinding window). The rules
themselves are pure and live in ``domain/ssrf.py``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from hookline.domain.ssrf import ANY_PORT, Address, Network, PortPolicy, deny_reason

Resolved = tuple[socket.AddressFamily, str]
"""An address family and an IP literal to connect to (an IPv6 zone kept: ``fe80::1%eth0``)."""

Lookup = Callable[[str, int], Awaitable[list[Resolved]]]
"""Name resolution, ``(host, port) -> [(family, address), ...]``: the system's by default
(``system_lookup``); tests inject a stub to play DNS rebinding without real DNS."""


async def system_lookup(host: str, port: int) -> list[Resolved]:
    """The system resolver (``getaddrinfo``), IPv4 and IPv6 stream addresses only."""
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, family=socket.AF_UNSPEC, type=socket.SOCK_STREAM, flags=socket.AI_ADDRCONFIG
    )
    return [
        (family, str(sockaddr[0]))
        for family, _, _, _, sockaddr in infos
        if family == socket.AF_INET or family == socket.AF_INET6
    ]


@dataclass(frozen=True)
class SsrfPolicy:
    """Which destinations are allowed: public addresses, plus the listed networks, plus
    private and loopback ranges when ``allow_private`` (dev mode); on the ports ``ports``
    allows; over https only when ``https_only``."""

    allow_networks: tuple[Network, ...] = ()
    allow_private: bool = False
    ports: PortPolicy = ANY_PORT
    https_only: bool = False

    def check(self, address: Address) -> str | None:
        """None when ``address`` may be connected to, else the reason it may not."""
        return deny_reason(
            address, allow_networks=self.allow_networks, allow_private=self.allow_private
        )


class SsrfBlocked(OSError):
    """The destination is, or resolves to, an address the SSRF guard refuses."""


class GuardedResolver:
    """Resolves with ``lookup`` (``getaddrinfo`` unless told) and refuses the host if any
    address is denied."""

    def __init__(self, policy: SsrfPolicy, lookup: Lookup = system_lookup) -> None:
        self._policy = policy
        self._lookup = lookup

    async def resolve(self, host: str, port: int = 0) -> list[Resolved]:
        """Every vetted address of ``host``, once each, in the resolver's order."""
        results: dict[Resolved, None] = {}
        for fam, resolved in await self._lookup(host, port):
            if fam != socket.AF_INET and fam != socket.AF_INET6:
                continue
            # A link-local IPv6 answer carries its zone ("fe80::1%eth0"): the zone is
            # kept for the connection, the address alone is judged.
            reason = self._policy.check(ipaddress.ip_address(resolved.partition("%")[0]))
            if reason is not None:
                raise SsrfBlocked(f"blocked by SSRF guard: {reason} (resolved from {host})")
            results[(fam, resolved)] = None
        if not results:
            raise OSError(f"{host} did not resolve to any IP address")
        return list(results)


async def non_canonical_reason(resolver: GuardedResolver, host: str) -> str:
    """127.1, 2130706433, ...: never connected to; say what it would have reached."""
    try:
        await resolver.resolve(host)
    except SsrfBlocked as exc:
        return str(exc)
    except OSError:
        pass
    return f"invalid URL: {host} is not a canonical IP address"
