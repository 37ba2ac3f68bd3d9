"""Where a delivery URL points, parsed and vetted once, before any socket is opened.

One reading of a URL decides both what the SSRF guard judges and what is dialled, so a
spelling cannot be read one way by the check and another by the connection: yarl parses it,
IP literals are checked against the policy here, and digit-and-dot spellings that are not
canonical literals (``127.1``, ``2130706433``) are never dialled. Host names are left to
``GuardedResolver``, which vets every address they resolve to. The port and the scheme are
judged here too (``PortPolicy``, https-only), so a refused one never reaches a socket.
"""

from __future__ import annotations

import base64
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import unquote

from yarl import URL

from hookline.domain.ssrf import Address
from hookline.transport._ssrf import SsrfPolicy

_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True, slots=True)
class Target:
    """A URL that may be requested, as the parts a transport needs."""

    scheme: str
    host: str
    """The host as written (IPv6 without brackets), for resolution and TLS."""
    port: int
    literal: frozenset[Address] | None
    """The destination of an IP-literal URL, already vetted; None for a host name."""
    numeric: bool
    """A name ``inet_aton`` reads as an address without DNS (``0x7f.1``)."""
    authority: str
    """``host`` or ``host:port`` as written in the URL, without user information."""
    host_header: str
    """The Host header sent: the port only when it is not the scheme's default, a trailing
    dot dropped (as aiohttp sent it, when it was one of the transports)."""
    userinfo: str
    """``user:password@`` as written (still percent-encoded), or empty."""
    path_query: str
    """The request target: the raw path (``/`` when empty) and query."""

    @property
    def tls(self) -> bool:
        return self.scheme == "https"

    def basic_auth(self) -> str | None:
        """The Authorization header for user information in the URL (Basic, RFC 7617)."""
        if not self.userinfo:
            return None
        user, _, password = self.userinfo[:-1].partition(":")
        credentials = f"{unquote(user)}:{unquote(password)}".encode()
        return "Basic " + base64.b64encode(credentials).decode()


@dataclass(frozen=True, slots=True)
class NonCanonical:
    """A digits-and-dots host that is not a canonical IP literal (``127.1``): never dialled."""

    host: str


def parse_target(url: str, policy: SsrfPolicy) -> Target | NonCanonical | str:
    """Parse and vet ``url``; a str is the reason it is refused."""
    try:
        parsed = URL(url)
        scheme = parsed.scheme
        host = parsed.raw_host
        port = parsed.port
    except (ValueError, TypeError):
        return "invalid URL"
    if scheme != "http" and scheme != "https":
        return "invalid URL: scheme must be http or https"
    if not host:
        return "invalid URL: a host is required"
    if port is None:
        return "invalid URL: no port"
    if policy.https_only and scheme != "https":
        return "refused: only https:// destinations are allowed (HOOKLINE_ENDPOINT_HTTPS_ONLY)"
    port_reason = policy.ports.check(port)
    if port_reason is not None:
        return f"blocked by destination policy: {port_reason}"
    literal = _vetted_literal(host, policy)
    if isinstance(literal, (NonCanonical, str)):
        return literal
    authority = parsed.host_subcomponent or host
    if port != _DEFAULT_PORTS[scheme]:
        authority = f"{authority}:{port}"
    query = parsed.raw_query_string
    return Target(
        scheme=scheme,
        host=host,
        port=port,
        literal=None if literal is None else frozenset((literal,)),
        numeric=literal is None and _inet_aton_reads(host),
        authority=authority,
        host_header=parsed.host_port_subcomponent or authority,
        userinfo=_userinfo(parsed),
        path_query=(parsed.raw_path or "/") + ("?" + query if query else ""),
    )


def _vetted_literal(host: str, policy: SsrfPolicy) -> Address | NonCanonical | str | None:
    """The address of an IP-literal host, vetted; None for a host name; a str is the reason
    it is refused. Digit-and-dot spellings ``ipaddress`` rejects are never dialled."""
    if ":" not in host and not host.replace(".", "").isdigit():
        return None
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        return NonCanonical(host)
    reason = policy.check(literal)
    return literal if reason is None else f"blocked by SSRF guard: {reason}"


def _inet_aton_reads(host: str) -> bool:
    """Whether ``inet_aton`` takes ``host`` for an address without DNS (``0x7f.1``)."""
    try:
        socket.inet_aton(host)
    except OSError:
        return False
    return True


def _userinfo(parsed: URL) -> str:
    """``user:password@`` as written in the URL, or nothing."""
    if parsed.raw_user is None:
        return ""
    if parsed.raw_password is None:
        return f"{parsed.raw_user}@"
    return f"{parsed.raw_user}:{parsed.raw_password}@"
