"""The SSRF guard attacked through the transport (issue 14, item 8), with no real DNS and
nothing leaving loopback.

Names are answered by a scripted stub resolver injected into the transport (``lookup``),
so a name can answer a public address and then a private one (DNS rebinding), or several
addresses at once. "Public" addresses must still be reachable for the attack to mean
anything, so every connection goes through an egress proxy on 127.0.0.1 (the transport's
``proxy``): it records the address each CONNECT names and tunnels every one of them to a
local server, which stands in for the internet. What the proxy records is therefore
exactly where the transport tried to go.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from hookline.domain.ssrf import PortPolicy
from hookline.transport import AsyncioTransport, HttpResult, SsrfPolicy
from tests.integration.keep_alive import KeepAliveServer, keep_alive_server
from tests.integration.test_transport_proxy import pipe

PUBLIC = "93.184.216.34"


@dataclass
class ScriptedDns:
    """A stub resolver: each name gives its scripted answers in turn (the last one again
    once the script runs out); every query is recorded. Unknown names do not resolve."""

    script: dict[str, list[list[str]]] = field(default_factory=dict)
    queries: list[str] = field(default_factory=list)

    async def __call__(self, host: str, port: int) -> list[tuple[socket.AddressFamily, str]]:
        self.queries.append(host)
        answers = self.script.get(host)
        if not answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, a) for a in answer]


@dataclass
class Egress:
    """A CONNECT proxy that records each tunnel's target and sends every tunnel to the
    local server at ``upstream`` whatever address it names."""

    upstream: int = 0
    port: int = 0
    targets: list[str] = field(default_factory=list)
    writers: list[asyncio.StreamWriter] = field(default_factory=list)

    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            self.targets.append(head.split(b" ", 2)[1].decode())
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream)
            self.writers.append(up_writer)
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@contextlib.asynccontextmanager
async def egress_to(upstream: int) -> AsyncIterator[Egress]:
    state = Egress(upstream)
    listener = await asyncio.start_server(state.serve, "127.0.0.1", 0)
    state.port = listener.sockets[0].getsockname()[1]
    try:
        yield state
    finally:
        listener.close()
        for writer in state.writers:
            writer.close()
        await listener.wait_closed()


@pytest.fixture
async def internet() -> AsyncIterator[KeepAliveServer]:
    async with keep_alive_server() as server:
        yield server


@pytest.fixture
async def egress(internet: KeepAliveServer) -> AsyncIterator[Egress]:
    async with egress_to(internet.port) as proxy:
        yield proxy


@pytest.fixture
def dns() -> ScriptedDns:
    return ScriptedDns()


@contextlib.asynccontextmanager
async def guarded(
    egress: Egress, dns: ScriptedDns, policy: SsrfPolicy | None = None
) -> AsyncIterator[AsyncioTransport]:
    """The transport under the production policy (nothing private allowed) unless told."""
    transport = AsyncioTransport(policy or SsrfPolicy(), proxy=egress.url(), lookup=dns)
    try:
        yield transport
    finally:
        await transport.close()


async def post(transport: AsyncioTransport, url: str) -> HttpResult:
    return await transport.post(url, b"{}", {"content-type": "application/json"}, 5.0)


# -- DNS rebinding -------------------------------------------------------------------------


async def test_a_name_that_rebinds_to_a_private_address_is_refused_at_the_next_connection(
    egress: Egress, dns: ScriptedDns
) -> None:
    """First answer public, second private: the first delivery reaches the public address;
    the receiver then closes the connection, so the next delivery resolves afresh, sees
    the private address and is refused without any connection to it."""
    dns.script["rebind.test"] = [[PUBLIC], ["10.0.0.7"]]
    async with guarded(egress, dns) as transport:
        first = await post(transport, "http://rebind.test/closing")
        assert first.status_code == 200
        second = await post(transport, "http://rebind.test/closing")
    assert second.status_code == 0
    assert (
        second.error
        == "blocked by SSRF guard: private address 10.0.0.7 (resolved from rebind.test)"
    )
    assert dns.queries == ["rebind.test", "rebind.test"]
    assert egress.targets == [f"{PUBLIC}:80"]


async def test_the_connection_goes_to_the_address_that_was_vetted_not_to_a_fresh_lookup(
    egress: Egress, dns: ScriptedDns, internet: KeepAliveServer
) -> None:
    """The name is resolved once per connection and the socket is opened to the vetted
    address itself (the CONNECT names it, never the name): a second answer, loopback, is
    never asked for while the connection lives, so there is no window between check and
    connect for a rebinding resolver to use."""
    dns.script["rebind.test"] = [[PUBLIC], ["127.0.0.1"]]
    async with guarded(egress, dns) as transport:
        results = [await post(transport, "http://rebind.test/ok") for _ in range(3)]
    assert [r.status_code for r in results] == [200, 200, 200]
    assert dns.queries == ["rebind.test"]
    assert egress.targets == [f"{PUBLIC}:80"]
    assert len(internet.connections) == 1


# -- several addresses ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "denied"),
    [
        ([PUBLIC, "10.0.0.7"], "private address 10.0.0.7"),
        (["10.0.0.7", PUBLIC], "private address 10.0.0.7"),
        ([PUBLIC, "169.254.169.254"], "link-local address 169.254.169.254"),
        (["2606:4700::1111", "fd00::1"], "unique-local address fd00::1"),
        ([PUBLIC, "::ffff:127.0.0.1"], "::ffff:7f00:1 embeds loopback address 127.0.0.1"),
        (["2606:4700::1111", "fe80::1%eth0"], "link-local address fe80::1"),
    ],
)
async def test_one_private_address_among_several_refuses_the_whole_name(
    egress: Egress, dns: ScriptedDns, answer: list[str], denied: str
) -> None:
    """Whichever place the private address takes, no address of the name is dialled: a
    client that tried the addresses in turn could be steered to the private one by making
    the public one unreachable."""
    dns.script["multi.test"] = [answer]
    async with guarded(egress, dns) as transport:
        result = await post(transport, "http://multi.test/ok")
    assert result.status_code == 0
    assert result.error is not None and denied in result.error
    assert egress.targets == []


# -- redirects -----------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def redirecting(location: str) -> AsyncIterator[int]:
    """A receiver that answers every request with 302 to ``location``; yields its port."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                (
                    int(v)
                    for n, _, v in (line.partition(b":") for line in head.split(b"\r\n"))
                    if n.strip().lower() == b"content-length"
                ),
                0,
            )
            await reader.readexactly(length)
            writer.write(
                b"HTTP/1.1 302 Found\r\nLocation: "
                + location.encode()
                + b"\r\nContent-Length: 0\r\n\r\n"
            )
            await writer.drain()
        writer.close()

    listener = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield listener.sockets[0].getsockname()[1]
    finally:
        listener.close()


@pytest.mark.parametrize(
    "location",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://metadata.test/computeMetadata/v1/",
        "http://[::ffff:a9fe:a9fe]/",
    ],
)
async def test_a_redirect_is_the_answer_and_is_never_followed(
    dns: ScriptedDns, location: str
) -> None:
    """A public receiver redirecting to the metadata service gets its 302 recorded as the
    attempt's answer (a failure: not a 2xx); the Location is neither resolved nor dialled."""
    dns.script["origin.test"] = [[PUBLIC]]
    dns.script["metadata.test"] = [["169.254.169.254"]]
    async with (
        redirecting(location) as port,
        egress_to(port) as egress,
        guarded(egress, dns) as transport,
    ):
        result = await post(transport, "http://origin.test/hook")
    assert result.status_code == 302
    assert dns.queries == ["origin.test"]
    assert egress.targets == [f"{PUBLIC}:80"]


# -- IPv4 carried in IPv6 ------------------------------------------------------------------

EMBEDDING_FORMS = [
    # (form, IPv6 address, the IPv4 address it carries)
    ("mapped", "::ffff:127.0.0.1", "127.0.0.1"),
    ("mapped", "::ffff:a9fe:a9fe", "169.254.169.254"),
    ("compatible", "::127.0.0.1", "127.0.0.1"),
    ("compatible", "::a00:7", "10.0.0.7"),
    ("translated (SIIT)", "::ffff:0:7f00:1", "127.0.0.1"),
    ("NAT64", "64:ff9b::7f00:1", "127.0.0.1"),
    ("NAT64", "64:ff9b::a9fe:a9fe", "169.254.169.254"),
    ("6to4", "2002:7f00:1::1", "127.0.0.1"),
    ("6to4", "2002:a00:7::", "10.0.0.7"),
    # Teredo: server 65.54.227.120, client address bit-inverted in the last 32 bits.
    ("Teredo", "2001:0:4136:e378:8000:63bf:80ff:fffe", "127.0.0.1"),
    ("Teredo", "2001:0:4136:e378:8000:63bf:5601:5601", "169.254.169.254"),
    ("Teredo", "2001:0:4136:e378:8000:63bf:f5ff:fff8", "10.0.0.7"),
]


@pytest.mark.parametrize(("form", "address", "inner"), EMBEDDING_FORMS)
async def test_every_ipv4_in_ipv6_form_is_judged_by_the_ipv4_it_carries(
    egress: Egress, dns: ScriptedDns, form: str, address: str, inner: str
) -> None:
    """As a URL's IP literal and as a name's AAAA answer, each form of a private or
    loopback IPv4 address is refused, naming the address it carries; nothing is dialled."""
    dns.script["v6.test"] = [[address]]
    async with guarded(egress, dns) as transport:
        literal = await post(transport, f"http://[{address}]/ok")
        named = await post(transport, "http://v6.test/ok")
    for result in (literal, named):
        assert result.status_code == 0, form
        assert result.error is not None and "embeds" in result.error, form
        assert f"address {inner}" in result.error, form
    assert egress.targets == []


@pytest.mark.parametrize(
    "address", ["::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1", PUBLIC]
)
async def test_forms_that_carry_a_public_ipv4_address_are_delivered(
    egress: Egress, dns: ScriptedDns, address: str
) -> None:
    """The guard refuses by what is carried, not by the form: the same forms carrying a
    public address reach it (through the egress proxy, which names the vetted address)."""
    async with guarded(egress, dns) as transport:
        host = f"[{address}]" if ":" in address else address
        result = await post(transport, f"http://{host}/ok")
    assert result.status_code == 200
    canonical = ipaddress.ip_address(address)
    assert egress.targets == [f"[{canonical}]:80" if canonical.version == 6 else f"{PUBLIC}:80"]


# -- ports and scheme ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "url", "reason"),
    [
        (
            SsrfPolicy(ports=PortPolicy(deny=((22, 22),))),
            "http://name.test:22/",
            "blocked by destination policy: port 22 is denied by HOOKLINE_OUTBOUND_DENY_PORTS",
        ),
        (
            SsrfPolicy(ports=PortPolicy(allow=((443, 443),))),
            "http://name.test/",
            "blocked by destination policy: port 80 is not in HOOKLINE_OUTBOUND_ALLOW_PORTS",
        ),
        (
            SsrfPolicy(ports=PortPolicy(allow=((443, 443),))),
            f"http://{PUBLIC}:8080/",
            "blocked by destination policy: port 8080 is not in HOOKLINE_OUTBOUND_ALLOW_PORTS",
        ),
        (
            SsrfPolicy(https_only=True),
            "http://name.test/",
            "refused: only https:// destinations are allowed (HOOKLINE_ENDPOINT_HTTPS_ONLY)",
        ),
    ],
)
async def test_a_refused_port_or_scheme_is_never_resolved_or_dialled(
    egress: Egress, dns: ScriptedDns, policy: SsrfPolicy, url: str, reason: str
) -> None:
    dns.script["name.test"] = [[PUBLIC]]
    async with guarded(egress, dns, policy) as transport:
        result = await post(transport, url)
    assert (result.status_code, result.error) == (0, reason)
    assert dns.queries == []
    assert egress.targets == []


async def test_an_allowed_port_is_delivered_to(egress: Egress, dns: ScriptedDns) -> None:
    dns.script["name.test"] = [[PUBLIC]]
    policy = SsrfPolicy(ports=PortPolicy(allow=((8000, 8999),), deny=((8080, 8080),)))
    async with guarded(egress, dns, policy) as transport:
        result = await post(transport, "http://name.test:8443/ok")
    assert result.status_code == 200
    assert egress.targets == [f"{PUBLIC}:8443"]
