"""Endpoint credentials on the wire, over real HTTP on 127.0.0.1: a worker on a real store
(each backend) with hookline's own transport delivers to local receivers; OAuth tokens come
from a local token server started here; mutual TLS meets a receiver that requires a client
certificate made by ``tests/integration/certificates.py``."""

from __future__ import annotations

import asyncio
import base64
import logging
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from hookline.delivery.credentials import TokenCache
from hookline.delivery.worker import Worker, WorkerConfig
from hookline.domain.endpoint_auth import (
    AccessToken,
    BasicAuth,
    EndpointAuth,
    MutualTls,
    OAuthClient,
    OAuthMethod,
)
from hookline.domain.models import Attempt, MessageStatus
from hookline.domain.retry import RetrySchedule
from hookline.instrumentation import NO_INSTRUMENTATION, Instrumentation, LoggingHook
from hookline.storage.base import AttemptFilter, ListQuery, Store
from hookline.transport import AsyncioTransport, SsrfPolicy, Transport
from tests.conftest import make_app, make_endpoint, make_message, utcnow
from tests.integration.certificates import CertificateAuthority
from tests.integration.keep_alive import keep_alive_server
from tests.integration.test_worker import eventually

CLIENT_SECRET = "token-server-client-secret"
LOOPBACK = SsrfPolicy(allow_private=True)
"""The receivers and token server of these tests listen on 127.0.0.1."""


@dataclass
class Recorded:
    headers: dict[str, str]
    form: dict[str, str]


@dataclass
class Server:
    """A local HTTP server: a token server at ``/token``, a receiver at ``/hook``."""

    port: int = 0
    tokens: list[Recorded] = field(default_factory=list)
    deliveries: list[Recorded] = field(default_factory=list)
    token_answer: tuple[int, dict[str, Any]] | None = None
    """A fixed answer for ``/token``; else ``tok-N`` for the Nth request."""
    expires_in: int = 3600
    rejected: set[str] = field(default_factory=set)
    """Bearer tokens ``/hook`` answers 401."""
    gate: asyncio.Event | None = None
    """When set, ``/token`` answers only once it is."""

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    state = Server()

    async def token(request: web.Request) -> web.Response:
        form = dict(await request.post())
        state.tokens.append(Recorded(dict(request.headers), {k: str(v) for k, v in form.items()}))
        if state.gate is not None:
            await state.gate.wait()
        if state.token_answer is not None:
            status, body = state.token_answer
            return web.json_response(body, status=status)
        issued = {
            "access_token": f"tok-{len(state.tokens)}",
            "token_type": "Bearer",
            "expires_in": state.expires_in,
        }
        return web.json_response(issued)

    async def hook(request: web.Request) -> web.Response:
        await request.read()
        state.deliveries.append(Recorded(dict(request.headers), {}))
        given = request.headers.get("Authorization", "")
        if given.removeprefix("Bearer ") in state.rejected:
            return web.Response(status=401, text="token rejected")
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/token", token)
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    state.port = runner.addresses[0][1]
    yield state
    await runner.cleanup()


def config() -> WorkerConfig:
    return WorkerConfig(
        retry_schedule=RetrySchedule((0.01, 0.01, 0.01), jitter=0.0),
        request_timeout=5.0,
        lease_seconds=10.0,
        poll_interval=0.01,
        max_in_flight=32,
    )


Start = Callable[..., Worker]


@pytest.fixture
async def start(store: Store) -> AsyncIterator[Start]:
    """Starts a worker on the test's store with the given transport (and instrumentation);
    stopped after."""
    started: list[tuple[Worker, asyncio.Task[None], Transport]] = []

    def run(transport: Transport, heard: Instrumentation = NO_INSTRUMENTATION) -> Worker:
        worker = Worker(store, transport, config(), instrumentation=heard)
        started.append((worker, asyncio.create_task(worker.run()), transport))
        return worker

    yield run
    for worker, task, transport in started:
        worker.stop()
        await asyncio.wait_for(task, 10)
        await transport.close()


async def _publish(store: Store, url: str, auth: EndpointAuth, count: int = 1) -> tuple[str, str]:
    """An endpoint at ``url`` with ``auth`` (and a custom Authorization header the
    credentials must replace), and ``count`` messages to it; the application's and the
    endpoint's ids."""
    app = make_app()
    await store.create_application(app)
    endpoint = replace(
        make_endpoint(app, url), auth=auth, headers={"Authorization": "custom-header-loses"}
    )
    await store.create_endpoint(endpoint)
    await store.publish([make_message(app) for _ in range(count)], utcnow())
    return app.id, endpoint.id


async def _attempts(store: Store, app_id: str, endpoint_id: str) -> list[Attempt]:
    page = await store.list_attempts(
        app_id, ListQuery(limit=100), AttemptFilter(endpoint_id=endpoint_id), None
    )
    return sorted(page.data, key=lambda a: a.timestamp)


async def _delivered(store: Store, app_id: str, endpoint_id: str, count: int) -> bool:
    attempts = await _attempts(store, app_id, endpoint_id)
    return sum(a.status is MessageStatus.SUCCESS for a in attempts) >= count


def _oauth(server: Server, **changes: Any) -> OAuthClient:
    client = OAuthClient(
        token_url=server.url("/token"),
        client_id="hookline",
        client_secret=CLIENT_SECRET,
        scopes=("webhooks",),
        extra_params=(("audience", "https://rx.example.com"),),
    )
    return replace(client, **changes)


async def test_basic_credentials_reach_a_real_receiver(
    store: Store, start: Start, server: Server
) -> None:
    """Every attempt carries ``Authorization: Basic`` with the endpoint's credentials, in
    place of a custom Authorization header."""
    auth = EndpointAuth(basic=BasicAuth("hook-user", "hook-password"))
    app_id, endpoint_id = await _publish(store, server.url("/hook"), auth, count=2)
    start(AsyncioTransport(LOOPBACK))
    await eventually(lambda: _delivered(store, app_id, endpoint_id, 2))
    for delivery in server.deliveries:
        scheme, encoded = delivery.headers["Authorization"].split(" ")
        assert scheme == "Basic"
        assert base64.b64decode(encoded) == b"hook-user:hook-password"


async def test_one_token_serves_many_deliveries(store: Store, start: Start, server: Server) -> None:
    """Ten deliveries due together cause one token request (client_secret_basic, the
    scope and the audience in the form) and all carry the token it gave."""
    auth = EndpointAuth(oauth=_oauth(server))
    app_id, endpoint_id = await _publish(store, server.url("/hook"), auth, count=10)
    start(AsyncioTransport(LOOPBACK))
    await eventually(lambda: _delivered(store, app_id, endpoint_id, 10))
    (asked,) = server.tokens
    assert asked.form == {
        "grant_type": "client_credentials",
        "scope": "webhooks",
        "audience": "https://rx.example.com",
    }
    pair = base64.b64decode(asked.headers["Authorization"].removeprefix("Basic "))
    assert pair == f"hookline:{CLIENT_SECRET}".encode()
    assert {d.headers["Authorization"] for d in server.deliveries} == {"Bearer tok-1"}
    assert len(server.deliveries) == 10


async def test_client_secret_post_sends_the_credentials_in_the_form(
    store: Store, start: Start, server: Server
) -> None:
    auth = EndpointAuth(oauth=_oauth(server, method=OAuthMethod.CLIENT_SECRET_POST, scopes=()))
    app_id, endpoint_id = await _publish(store, server.url("/hook"), auth)
    start(AsyncioTransport(LOOPBACK))
    await eventually(lambda: _delivered(store, app_id, endpoint_id, 1))
    (asked,) = server.tokens
    assert "Authorization" not in asked.headers
    assert asked.form["client_id"] == "hookline" and asked.form["client_secret"] == CLIENT_SECRET


async def test_a_401_refreshes_the_token_once_and_the_retry_succeeds(
    store: Store, start: Start, server: Server
) -> None:
    """The receiver refuses the first token: that attempt fails with 401, the token is
    dropped, and the retry (on the ordinary schedule) carries a freshly fetched one."""
    server.rejected = {"tok-1"}
    app_id, endpoint_id = await _publish(
        store, server.url("/hook"), EndpointAuth(oauth=_oauth(server))
    )
    start(AsyncioTransport(LOOPBACK))
    await eventually(lambda: _delivered(store, app_id, endpoint_id, 1))
    attempts = await _attempts(store, app_id, endpoint_id)
    assert [a.response_status_code for a in attempts] == [401, 200]
    assert [d.headers["Authorization"] for d in server.deliveries] == [
        "Bearer tok-1",
        "Bearer tok-2",
    ]
    assert len(server.tokens) == 2


async def test_a_refused_token_request_is_an_attempt_failure_with_its_reason(
    store: Store, start: Start, server: Server
) -> None:
    """The token server's 401 becomes a failed attempt (status 0) whose recorded response
    says what happened, without the secret; the receiver is never called; the worker
    carries on (the delivery is retried, not lost)."""
    server.token_answer = (401, {"error": "invalid_client", "error_description": CLIENT_SECRET})
    app_id, endpoint_id = await _publish(
        store, server.url("/hook"), EndpointAuth(oauth=_oauth(server))
    )
    start(AsyncioTransport(LOOPBACK))
    await eventually(lambda: _attempts(store, app_id, endpoint_id))
    first = (await _attempts(store, app_id, endpoint_id))[0]
    assert first.response_status_code == 0 and first.status is MessageStatus.FAIL
    assert first.response == (
        "OAuth token request failed: the token URL answered HTTP 401 (invalid_client)"
    )
    assert server.deliveries == []
    await eventually(lambda: len(server.tokens) >= 2)  # retried on the schedule


async def test_a_token_url_at_a_blocked_address_is_refused_by_the_ssrf_guard(
    store: Store, start: Start, server: Server
) -> None:
    """The token request goes through the transport's guard: with private addresses
    refused, a token URL on loopback is never dialled, and the attempt says why."""
    auth = EndpointAuth(oauth=_oauth(server))
    app_id, endpoint_id = await _publish(store, "https://rx.example.com/hook", auth)
    start(AsyncioTransport(SsrfPolicy()))
    await eventually(lambda: _attempts(store, app_id, endpoint_id))
    first = (await _attempts(store, app_id, endpoint_id))[0]
    assert first.response == (
        "OAuth token request failed: blocked by SSRF guard: loopback address 127.0.0.1"
    )
    assert server.tokens == [] and server.deliveries == []


async def test_no_credential_reaches_a_log_line_or_an_attempt(
    store: Store, start: Start, server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    """With every attempt logged at the most verbose level, a Basic endpoint, an OAuth
    endpoint whose token server refuses it (echoing the secret in its error description)
    and one whose receiver rejects its token leave no password, client secret or token in
    any log line or recorded response."""
    caplog.set_level(logging.DEBUG)
    password = "basic-password-for-the-log-scan"
    basic = EndpointAuth(basic=BasicAuth("u", password))
    app_id, basic_id = await _publish(store, server.url("/hook"), basic)
    server.rejected = {"tok-1"}
    rejected_app, rejected_id = await _publish(
        store, server.url("/hook"), EndpointAuth(oauth=_oauth(server))
    )
    start(AsyncioTransport(LOOPBACK), Instrumentation([LoggingHook(attempts=True)]))
    await eventually(lambda: _delivered(store, app_id, basic_id, 1))
    await eventually(lambda: _delivered(store, rejected_app, rejected_id, 1))
    server.token_answer = (400, {"error": "invalid_client", "error_description": CLIENT_SECRET})
    refused_client = _oauth(server, client_id="refused")
    refused_app, refused_id = await _publish(
        store, server.url("/hook"), EndpointAuth(oauth=refused_client)
    )
    await eventually(lambda: _attempts(store, refused_app, refused_id))
    assert "OAuth token request failed" in caplog.text
    recorded = [
        a.response
        for app, ep in ((app_id, basic_id), (rejected_app, rejected_id), (refused_app, refused_id))
        for a in await _attempts(store, app, ep)
    ]
    for secret in (
        password,
        CLIENT_SECRET,
        "tok-1",
        "tok-2",
        base64.b64encode(b"u:" + password.encode()).decode(),
    ):
        assert secret not in caplog.text
        assert not any(secret in response for response in recorded)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_token_is_used_until_shortly_before_it_expires(server: Server) -> None:
    """A token that expires in 120 s is used for 108 s (a tenth of its life early), then
    another is fetched; a change of client credentials fetches anew at once."""
    server.expires_in = 120
    clock = Clock()
    transport = AsyncioTransport(LOOPBACK)
    cache = TokenCache(transport, clock)
    client = _oauth(server)
    try:
        first = await cache.token("ep_1", client, 5)
        clock.now += 107.9
        assert await cache.token("ep_1", client, 5) is first
        clock.now += 0.2
        second = await cache.token("ep_1", client, 5)
        assert isinstance(second, AccessToken) and second.header() == "Bearer tok-2"
        changed = await cache.token("ep_1", replace(client, client_id="other"), 5)
        assert isinstance(changed, AccessToken) and changed.header() == "Bearer tok-3"
        assert [t.form.get("grant_type") for t in server.tokens] == ["client_credentials"] * 3
    finally:
        await transport.close()


async def test_deliveries_due_together_wait_for_one_token_request(server: Server) -> None:
    """Twenty deliveries asking at once while the token server is slow: one request, one
    token for all (no stampede); and a 401 drops that token once, however many saw it."""
    server.gate = asyncio.Event()
    transport = AsyncioTransport(LOOPBACK)
    cache = TokenCache(transport)
    client = _oauth(server)
    try:
        asking = [asyncio.create_task(cache.token("ep_1", client, 5)) for _ in range(20)]
        await eventually(lambda: server.tokens)
        server.gate.set()
        tokens = await asyncio.gather(*asking)
        assert len(server.tokens) == 1
        assert all(t is tokens[0] for t in tokens)
        assert isinstance(tokens[0], AccessToken)
        for _ in range(20):
            cache.rejected("ep_1", tokens[0])
        again = await asyncio.gather(*(cache.token("ep_1", client, 5) for _ in range(5)))
        assert len(server.tokens) == 2 and all(t is again[0] for t in again)
    finally:
        await transport.close()


async def test_a_slow_token_server_is_cut_off_at_the_attempt_deadline(server: Server) -> None:
    server.gate = asyncio.Event()
    transport = AsyncioTransport(LOOPBACK)
    try:
        found = await TokenCache(transport).token("ep_1", _oauth(server), 0.2)
        assert found == "no answer from the token URL within 0.2s"
    finally:
        server.gate.set()
        await transport.close()


# -- mutual TLS -----------------------------------------------------------------------------


def _requiring_client_certificates(
    directory: Path, server_ca: CertificateAuthority, client_ca: CertificateAuthority
) -> ssl.SSLContext:
    """A TLS receiver on a certificate of ``server_ca`` that requires a client certificate
    issued by ``client_ca``."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*server_ca.issue("localhost").write(directory, "server"))
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(cadata=client_ca.pem)
    return context


async def test_mutual_tls_with_a_private_ca_against_a_receiver_that_requires_it(
    store: Store, start: Start, tmp_path: Path
) -> None:
    """An endpoint with the client certificate and the receiver's CA is delivered; one with
    the CA alone is refused by the receiver; one trusting another CA refuses the receiver's
    certificate. Each failure is recorded with its TLS reason."""
    server_ca, client_ca = CertificateAuthority("receiver CA"), CertificateAuthority("sender CA")
    issued = client_ca.issue("hookline-sender", client=True)
    identity = MutualTls(issued.certificate, issued.key, server_ca.pem)
    start(AsyncioTransport(LOOPBACK))
    context = _requiring_client_certificates(tmp_path, server_ca, client_ca)
    async with keep_alive_server(context) as receiver:
        url = f"https://localhost:{receiver.port}/hook"
        app_id, good = await _publish(store, url, EndpointAuth(mtls=identity))
        await eventually(lambda: _delivered(store, app_id, good, 1))
        assert receiver.paths == ["/hook"]
        (presented,) = receiver.client_certificates
        assert isinstance(presented, dict)
        assert presented["subject"] == ((("commonName", "hookline-sender"),),)

        ca_only = EndpointAuth(mtls=MutualTls(server_ca=server_ca.pem))
        app_id, refused = await _publish(store, url, ca_only)
        await eventually(lambda: _attempts(store, app_id, refused))
        attempt = (await _attempts(store, app_id, refused))[0]
        assert attempt.response_status_code == 0
        # An asyncio server closes a refused handshake without a TLS alert.
        assert attempt.response == "server disconnected without a response"

        wrong_ca = replace(identity, server_ca=CertificateAuthority("stranger").pem)
        app_id, untrusted = await _publish(store, url, EndpointAuth(mtls=wrong_ca))
        await eventually(lambda: _attempts(store, app_id, untrusted))
        attempt = (await _attempts(store, app_id, untrusted))[0]
        assert attempt.response == "TLS certificate error: unable to get local issuer certificate"
        assert receiver.paths == ["/hook"]
