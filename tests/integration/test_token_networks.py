"""Per-token address allowlists (``allowedNetworks``) over real HTTP on loopback.

The real app is served by uvicorn, as ``hookline serve`` serves it (the same connection
protocol and trusted-proxy options), on three sockets: 127.0.0.1, ::1, and a dual-stack
IPv6 socket bound to ::ffff:127.0.0.1, on which an IPv4 client is seen as the IPv4-mapped
address ``::ffff:127.0.0.1`` (as on a server listening on ``::``). So one token can be tried
from several client addresses. ``HOOKLINE_TRUSTED_PROXIES`` lists 127.0.0.1 only, so
``X-Forwarded-For`` stands in for other clients when sent from there, and is ignored from
::1.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from hookline.api.app import Services
from hookline.api.connections import ConnectionLimits, protocol_with
from hookline.api.routes import create_app
from hookline.config import load_settings
from hookline.domain.networks import MAX_TOKEN_NETWORKS, parse_allowlist
from hookline.operations import tokens
from hookline.operations.context import Operations
from hookline.operations.principal import SYSTEM
from hookline.operations.token_cache import CACHE_SECONDS, TokenCache
from hookline.operations.tokens import Authenticator, TokenRequest
from hookline.server import ensure_admin_token, forwarded_options
from hookline.storage.sqlite import SqliteStore
from tests.conftest import utcnow
from tests.integration.conftest import Ops

ADMIN_TOKEN = "hl_admin_token-networks-test-token-long-enough"
FORWARDED_CLIENT = "203.0.113.5"
OUTSIDER = "198.51.100.1"


@dataclass
class Served:
    """The running API: its base URLs over IPv4 and IPv6 loopback, and the one whose
    IPv4 clients it sees IPv4-mapped."""

    v4: str
    v6: str
    mapped: str

    @asynccontextmanager
    async def client(
        self, family: str, token: str = ADMIN_TOKEN, forwarded_for: str | None = None
    ) -> AsyncIterator[httpx.AsyncClient]:
        headers = {"authorization": f"Bearer {token}"}
        if forwarded_for is not None:
            headers["x-forwarded-for"] = forwarded_for
        base = {"v4": self.v4, "v6": self.v6, "mapped": self.mapped}[family]
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=10) as opened:
            yield opened

    async def create_token(self, **body: Any) -> dict[str, Any]:
        async with self.client("v4") as admin:
            created = await admin.post("/api/v1/token", json=body)
        assert created.status_code == 201, created.text
        answer: dict[str, Any] = created.json()
        return answer


def _listener(family: socket.AddressFamily, host: str) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    if host.startswith("::ffff:"):
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    sock.bind((host, 0))
    sock.listen()
    return sock


@pytest.fixture
async def serve(tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[Served]]]:
    """Starts the API with the given settings over both loopback families."""
    store = SqliteStore(str(tmp_path / "networks.db"))
    await store.open()
    servers: list[tuple[uvicorn.Server, asyncio.Task[None]]] = []

    async def start(**overrides: str) -> Served:
        settings = load_settings(
            {"admin_token": ADMIN_TOKEN, "trusted_proxies": "127.0.0.1/32", **overrides},
            environ={},
        )
        await ensure_admin_token(store, settings)
        app = create_app(Services(ops=Operations(store), settings=settings))
        config = uvicorn.Config(
            app,
            http=protocol_with(ConnectionLimits.from_settings(settings)),
            lifespan="off",
            log_level="warning",
            **forwarded_options(settings),
        )
        server = uvicorn.Server(config)
        v4 = _listener(socket.AF_INET, "127.0.0.1")
        v6 = _listener(socket.AF_INET6, "::1")
        mapped = _listener(socket.AF_INET6, "::ffff:127.0.0.1")
        serving = asyncio.create_task(server.serve([v4, v6, mapped]))
        servers.append((server, serving))
        async with asyncio.timeout(10):
            while not server.started:
                assert not serving.done(), "the API stopped while starting"
                await asyncio.sleep(0.01)
        return Served(
            f"http://127.0.0.1:{v4.getsockname()[1]}",
            f"http://[::1]:{v6.getsockname()[1]}",
            f"http://127.0.0.1:{mapped.getsockname()[1]}",
        )

    yield start
    for server, serving in servers:
        server.should_exit = True
        await serving
    await store.close()


def assert_refused(response: httpx.Response, seen_as: str) -> None:
    assert response.status_code == 403, response.text
    assert response.json()["code"] == "token_address_not_allowed"
    assert f"may not be used from {seen_as}:" in response.json()["detail"]


async def test_a_token_is_used_from_its_networks_and_refused_from_any_other(
    serve: Callable[..., Awaitable[Served]],
) -> None:
    """A token limited to 127.0.0.1 works over IPv4 loopback and gets 403
    ``token_address_not_allowed`` naming the address from ::1, changing nothing; one limited
    to ::1 the other way round; an IPv4 client seen IPv4-mapped is judged as IPv4, and a
    network written IPv4-mapped admits the IPv4 client; an application-scoped token is held
    to its networks too."""
    served = await serve()
    v4_only = await served.create_token(allowedNetworks=["127.0.0.1"])
    v6_only = await served.create_token(allowedNetworks=["::1/128"])
    mapped = await served.create_token(allowedNetworks=["::ffff:127.0.0.0/104"])
    assert (v4_only["allowedNetworks"], mapped["allowedNetworks"]) == (
        ["127.0.0.1/32"],
        ["127.0.0.0/8"],
    )
    async with served.client("v4") as admin:
        assert (await admin.post("/api/v1/app", json={"name": "A", "uid": "a"})).is_success
    scoped = await served.create_token(appId="a", allowedNetworks=["::1"])
    for token, family in (
        (v4_only, "v4"),
        (v4_only, "mapped"),
        (v6_only, "v6"),
        (mapped, "v4"),
        (mapped, "mapped"),
        (scoped, "v6"),
    ):
        async with served.client(family, token["token"]) as inside:
            assert (await inside.get("/api/v1/app/a")).status_code == 200
    for token, family, seen_as in (
        (v4_only, "v6", "::1"),
        (v6_only, "v4", "127.0.0.1"),
        (v6_only, "mapped", "::ffff:127.0.0.1"),
        (mapped, "v6", "::1"),
        (scoped, "v4", "127.0.0.1"),
    ):
        async with served.client(family, token["token"]) as outside:
            assert_refused(
                await outside.post("/api/v1/app", json={"uid": "x", "name": "x"}), seen_as
            )
            assert_refused(await outside.get("/api/v1/app/a"), seen_as)
    async with served.client("v4") as admin:
        assert [a["uid"] for a in (await admin.get("/api/v1/app")).json()["data"]] == ["a"]


async def test_behind_a_trusted_proxy_the_forwarded_client_is_judged(
    serve: Callable[..., Awaitable[Served]],
) -> None:
    """From a trusted proxy the token is judged by the client X-Forwarded-For names; from
    an untrusted peer the header is ignored and the peer's own address is judged, so the
    header cannot be used to get in."""
    served = await serve()
    token = (await served.create_token(allowedNetworks=["203.0.113.0/24"]))["token"]
    async with served.client("v4", token, forwarded_for=FORWARDED_CLIENT) as forwarded:
        assert (await forwarded.get("/api/v1/app")).status_code == 200
    async with served.client("v4", token, forwarded_for=OUTSIDER) as outsider:
        assert_refused(await outsider.get("/api/v1/app"), OUTSIDER)
    async with served.client("v6", token, forwarded_for=FORWARDED_CLIENT) as spoofing:
        assert_refused(await spoofing.get("/api/v1/app"), "::1")


async def test_refusals_by_network_count_as_failed_authentications(
    serve: Callable[..., Awaitable[Served]],
) -> None:
    """Each refusal charges the address's failed-authentication budget: past it the address
    gets 429 for every token, the admin token included, while other addresses go on."""
    served = await serve(api_auth_failure_rate="1", api_burst_seconds="3")
    token = (await served.create_token(allowedNetworks=["203.0.113.0/24"]))["token"]
    statuses = []
    async with served.client("v4", token, forwarded_for=OUTSIDER) as stolen:
        for _ in range(5):
            statuses.append((await stolen.get("/api/v1/app")).status_code)
    assert statuses == [403, 403, 403, 429, 429]
    async with served.client("v4", forwarded_for=OUTSIDER) as admin_there:
        assert (await admin_there.get("/api/v1/app")).status_code == 429
    async with served.client("v4", token, forwarded_for=FORWARDED_CLIENT) as rightful:
        assert (await rightful.get("/api/v1/app")).status_code == 200


async def test_patch_replaces_or_lifts_a_tokens_networks_from_the_next_request(
    serve: Callable[..., Awaitable[Served]],
) -> None:
    """PATCH /api/v1/token/{id} with allowedNetworks replaces the list and takes effect on
    the next request although the token's lookup is cached; null lifts the limit; a body
    without the field changes nothing; a bad list is 422 and changes nothing; an unknown
    token is 404."""
    served = await serve()
    created = await served.create_token(allowedNetworks=["127.0.0.1"])
    path = f"/api/v1/token/{created['id']}"
    async with served.client("v6", created["token"]) as from_v6:
        assert_refused(await from_v6.get("/api/v1/app"), "::1")
        async with served.client("v4") as admin:
            changed = await admin.patch(path, json={"allowedNetworks": ["::1", "127.0.0.1"]})
            assert changed.status_code == 200, changed.text
            assert changed.json()["allowedNetworks"] == ["::1/128", "127.0.0.1/32"]
            assert "token" not in changed.json()
        assert (await from_v6.get("/api/v1/app")).status_code == 200
        async with served.client("v4") as admin:
            narrowed = await admin.patch(path, json={"allowedNetworks": ["10.0.0.0/8"]})
            assert narrowed.json()["allowedNetworks"] == ["10.0.0.0/8"]
        assert_refused(await from_v6.get("/api/v1/app"), "::1")
        async with served.client("v4") as admin:
            for bad in ([], ["10.1.2.3/8"], "10.0.0.0/8"):
                refused = await admin.patch(path, json={"allowedNetworks": bad})
                assert refused.status_code == 422, refused.text
            unchanged = await admin.patch(path, json={})
            assert unchanged.json()["allowedNetworks"] == ["10.0.0.0/8"]
            lifted = await admin.patch(path, json={"allowedNetworks": None})
            assert lifted.status_code == 200 and lifted.json()["allowedNetworks"] is None
            missing = await admin.patch("/api/v1/token/tok_absent", json={"allowedNetworks": None})
            assert missing.status_code == 404
        assert (await from_v6.get("/api/v1/app")).status_code == 200
        async with served.client("v4") as admin:
            shown = (await admin.get(path)).json()
            listed = (await admin.get("/api/v1/token")).json()["data"]
        assert shown["allowedNetworks"] is None
        assert [t["allowedNetworks"] for t in listed if t["id"] == created["id"]] == [None]


@pytest.mark.parametrize(
    ("networks", "location", "says"),
    [
        (["10.0.0.0/8", "10.1.2.3/8"], ["body", "allowedNetworks", 1], "write 10.0.0.0/8"),
        (["example.com"], ["body", "allowedNetworks", 0], "is not a CIDR network"),
        (["fe80::1%eth0"], ["body", "allowedNetworks", 0], "without a zone"),
        (["10.0.0.0/33"], ["body", "allowedNetworks", 0], "is not a CIDR network"),
        ([], ["body", "allowedNetworks"], "at least 1"),
        (["10.0.0.1"] * (MAX_TOKEN_NETWORKS + 1), ["body", "allowedNetworks"], "at most 100"),
        (["1" * 65], ["body", "allowedNetworks", 0], "at most 64 characters"),
    ],
)
async def test_a_bad_network_list_is_a_422_naming_the_entry_and_issues_no_token(
    serve: Callable[..., Awaitable[Served]], networks: list[str], location: list[Any], says: str
) -> None:
    """Each refusal names the field (and the entry) and what is wrong; no token is made."""
    served = await serve()
    async with served.client("v4") as admin:
        refused = await admin.post("/api/v1/token", json={"allowedNetworks": networks})
        assert refused.status_code == 422, refused.text
        (error,) = refused.json()["detail"]
        assert error["loc"] == location and says in error["msg"], error
        assert len((await admin.get("/api/v1/token")).json()["data"]) == 1


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_changed_networks_reach_another_process_within_the_cache_bound(ops: Ops) -> None:
    """Two processes over one database (each backend): the networks are read with the
    token, so another process that cached the token applies a change as soon as its lookup
    is older than CACHE_SECONDS, as it does a revocation."""
    clock = _Clock()
    replica = Authenticator(Operations(ops.store, token_cache=TokenCache(monotonic=clock)))
    issued = await tokens.create_token(
        ops.ops, SYSTEM, TokenRequest(allowed_networks=["192.0.2.0/24"])
    )
    bearer = f"Bearer {issued.token}"
    assert (await replica.authenticate(bearer, utcnow())).networks == parse_allowlist(
        ["192.0.2.0/24"]
    )
    await tokens.set_allowed_networks(ops.ops, SYSTEM, issued.record.id, ["2001:db8::/32"])
    here = await Authenticator(ops.ops).authenticate(bearer, utcnow())
    assert here.networks == parse_allowlist(["2001:db8::/32"])
    clock.now += CACHE_SECONDS - 0.1
    stale = await replica.authenticate(bearer, utcnow())
    assert stale.networks == parse_allowlist(["192.0.2.0/24"])
    clock.now += 0.2
    fresh = await replica.authenticate(bearer, utcnow())
    assert fresh.networks == parse_allowlist(["2001:db8::/32"])
