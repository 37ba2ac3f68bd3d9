"""Slow and hostile clients and receivers against a real ``hookline serve`` on loopback
(issue 14): a slowloris flood, a body shorter than its Content-Length, oversized heads,
token guessing over real HTTP, and a receiver that drips its answer. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from tests.e2e.harness import ADMIN_TOKEN, HooklineProcess, free_port, sqlite_url, wait_until

CAP = 40
"""HOOKLINE_MAX_CONNECTIONS of the server under test."""
TIGHT = {
    "HOOKLINE_MAX_CONNECTIONS": str(CAP),
    "HOOKLINE_HEADER_TIMEOUT": "1",
    "HOOKLINE_BODY_TIMEOUT": "1",
    "HOOKLINE_MAX_URL_BYTES": "1024",
    "HOOKLINE_MAX_HEADER_COUNT": "20",
    "HOOKLINE_MAX_HEADER_BYTES": "4096",
    "HOOKLINE_REQUEST_TIMEOUT": "1",
    "HOOKLINE_RETRY_SCHEDULE": "600",
    "HOOKLINE_DEV": "true",
    "HOOKLINE_TRUSTED_PROXIES": "127.0.0.1/32",
}
READ_SECONDS = 10.0
"""The most any read of an answer in these tests waits."""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HooklineProcess]:
    folder = tmp_path_factory.mktemp("abuse")
    proc = HooklineProcess(sqlite_url(folder), free_port(), dict(TIGHT), folder)
    proc.start()
    try:
        yield proc
    finally:
        assert proc.terminate() == 0, proc.output()


def open_fds(proc: HooklineProcess) -> int:
    assert proc.process is not None
    return len(os.listdir(f"/proc/{proc.process.pid}/fd"))


async def exchange(port: int, data: bytes) -> tuple[bytes, float]:
    """Write ``data`` on a new connection and read until the server closes it; the bytes
    read and the seconds that took."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()
    try:
        writer.write(data)
        async with asyncio.timeout(READ_SECONDS):
            answer = await reader.read()
    finally:
        writer.close()
    return answer, time.monotonic() - started


def status_and_code(answer: bytes) -> tuple[int, str]:
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(body)["code"]


@contextlib.asynccontextmanager
async def slow_connections(port: int, count: int) -> AsyncIterator[list[asyncio.StreamReader]]:
    """``count`` connections, each having sent the start of a request head and no more."""
    opened: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    try:
        for _ in range(count):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /health/ping HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            opened.append((reader, writer))
        yield [reader for reader, _ in opened]
    finally:
        for _, writer in opened:
            writer.close()


async def test_a_slowloris_flood_holds_at_most_the_cap_and_health_still_answers(
    server: HooklineProcess,
) -> None:
    """300 connections that never finish their headers, against a cap of 40: each new one
    closes the one that has waited longest, so the process never holds more than the cap,
    and /health answers at once, long before any header deadline could have helped."""
    before = open_fds(server)
    async with slow_connections(server.port, 300) as readers:
        started = time.monotonic()
        async with httpx.AsyncClient(base_url=server.url, timeout=READ_SECONDS) as client:
            health = await client.get("/health/ping")
        answered = time.monotonic() - started
        held = open_fds(server) - before
        # The ones closed for newer ones read an end of stream (or a reset).
        closed = 0
        for reader in readers[:200]:
            with contextlib.suppress(ConnectionError):
                async with asyncio.timeout(READ_SECONDS):
                    await reader.read()
            closed += 1
    assert health.status_code == 200
    assert answered < 1.0
    assert held <= CAP + 2, f"the process holds {held} more descriptors than before the flood"
    assert closed == 200


async def test_a_newcomer_is_refused_with_503_only_when_every_connection_is_busy(
    server: HooklineProcess,
) -> None:
    """Connections in the middle of a request are never closed for a newcomer: with all 40
    waiting for their bodies (each has been told ``100 Continue``), the 41st gets a JSON
    503 at once; once they are gone, a new connection is served again."""
    head = (
        b"POST /api/v1/app HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
        + ADMIN_TOKEN.encode()
        + b"\r\nExpect: 100-continue\r\nContent-Length: 10\r\n\r\n"
    )
    busy = []
    try:
        for _ in range(CAP):
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(head)
            busy.append(writer)
            async with asyncio.timeout(READ_SECONDS):
                assert await reader.readuntil(b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
        answer, took = await exchange(server.port, b"GET /health/ping HTTP/1.1\r\n\r\n")
        assert status_and_code(answer) == (503, "too_many_connections")
        assert took < 0.9
    finally:
        for writer in busy:
            writer.close()
    async with httpx.AsyncClient(base_url=server.url, timeout=READ_SECONDS) as client:
        assert (await client.get("/health/ping")).status_code == 200


async def test_headers_not_finished_in_time_get_408_and_idle_connections_are_closed(
    server: HooklineProcess,
) -> None:
    """A head still incomplete after HOOKLINE_HEADER_TIMEOUT (1 s) gets a JSON 408 and the
    connection closes; a connection that sends nothing is closed without an answer."""
    answer, took = await exchange(server.port, b"GET /health/ping HTTP/1.1\r\nHost: x\r\n")
    assert status_and_code(answer) == (408, "request_timeout")
    assert 0.9 <= took < READ_SECONDS
    silent, took = await exchange(server.port, b"")
    assert silent == b""
    assert 0.9 <= took < READ_SECONDS


async def test_a_body_shorter_than_its_content_length_gets_408_and_changes_nothing(
    server: HooklineProcess,
) -> None:
    """The attack that used to wait forever: a complete JSON document announced as 100
    bytes. After HOOKLINE_BODY_TIMEOUT (1 s) it is a 408, and the application in it was
    not created from the part that arrived."""
    body = b'{"name":"partial","uid":"partial"}'
    head = (
        b"POST /api/v1/app HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Authorization: Bearer " + ADMIN_TOKEN.encode() + b"\r\nContent-Length: 100\r\n\r\n"
    )
    answer, took = await exchange(server.port, head + body)
    assert status_and_code(answer) == (408, "request_timeout")
    assert 0.9 <= took < READ_SECONDS
    headers = {"authorization": f"Bearer {ADMIN_TOKEN}"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=5) as client:
        assert (await client.get("/api/v1/app/partial")).status_code == 404


@pytest.mark.parametrize(
    ("request_head", "status", "code"),
    [
        (b"GET /" + b"a" * 2000 + b" HTTP/1.1\r\n\r\n", 414, "uri_too_long"),
        (
            b"GET /health/ping HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(25)),
            431,
            "header_fields_too_many",
        ),
        (
            b"GET /health/ping HTTP/1.1\r\nX-Big: " + b"b" * 5000 + b"\r\n\r\n",
            431,
            "header_fields_too_large",
        ),
        (
            b"GET /health/ping HTTP/1.1\r\nX-Endless: " + b"e" * 100_000,
            431,
            "header_fields_too_large",
        ),
    ],
    ids=["long-url", "many-headers", "big-header", "endless-header"],
)
async def test_oversized_request_heads_are_refused(
    server: HooklineProcess, request_head: bytes, status: int, code: str
) -> None:
    """Past the request target, header count or head size limits the server answers 414
    or 431 in JSON and closes, without waiting for the rest of the head, and without an
    error in its log."""
    answer, took = await exchange(server.port, request_head)
    assert status_and_code(answer) == (status, code)
    assert took < 0.9
    assert "Traceback" not in server.output()


async def test_token_guessing_over_http_is_answered_with_429(server: HooklineProcess) -> None:
    """Fifty guesses as fast as one connection allows, from a client a trusted proxy names
    in X-Forwarded-For: after the burst of failures (10), every guess gets 429 with
    Retry-After instead of a verdict on the token, the right token included; another
    client behind the same proxy is unaffected."""
    statuses = []
    forwarded = {"x-forwarded-for": "203.0.113.5"}
    async with httpx.AsyncClient(base_url=server.url, timeout=5) as client:
        for i in range(50):
            guess = {"authorization": f"Bearer hl_admin_guess{i}", **forwarded}
            response = await client.get("/api/v1/app", headers=guess)
            statuses.append(response.status_code)
        assert statuses[:10] == [401] * 10
        assert set(statuses[10:]) == {429}
        assert int(response.headers["retry-after"]) >= 1
        assert response.json()["code"] == "rate_limited"
        right = {"authorization": f"Bearer {ADMIN_TOKEN}"}
        assert (await client.get("/api/v1/app", headers={**right, **forwarded})).status_code == 429
        other = {**right, "x-forwarded-for": "203.0.113.6"}
        assert (await client.get("/api/v1/app", headers=other)).status_code == 200


@contextlib.contextmanager
def dripping_receiver() -> Iterator[tuple[int, list[float]]]:
    """A loopback receiver that answers 200 headers at once and then a byte every 50 ms of
    a 1 MB body, until the client hangs up; yields its port and, per connection, how long
    the client stayed."""
    listener = socket.create_server(("127.0.0.1", 0))
    stayed: list[float] = []
    stop = False

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop:
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            started = time.monotonic()
            with conn:
                conn.settimeout(5)
                with contextlib.suppress(OSError):
                    conn.recv(65536)
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n")
                    for _ in range(1000):
                        if stop:
                            break
                        conn.sendall(b"x")
                        time.sleep(0.05)
            stayed.append(time.monotonic() - started)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1], stayed
    finally:
        stop = True
        thread.join(10)
        listener.close()


def test_a_receiver_dripping_its_answer_is_cut_off_and_recorded_as_a_timeout(
    server: HooklineProcess,
) -> None:
    """A receiver answering 200 at once and then its body a byte at a time holds the
    attempt for HOOKLINE_REQUEST_TIMEOUT (1 s) and no longer: the connection is dropped,
    and the attempt is recorded as a timeout (status 0), not as a success."""
    headers = {"authorization": f"Bearer {ADMIN_TOKEN}"}
    with (
        dripping_receiver() as (port, stayed),
        httpx.Client(base_url=server.url, headers=headers, timeout=10) as client,
    ):
        assert client.post("/api/v1/app", json={"name": "drip", "uid": "drip"}).status_code == 201
        made = client.post("/api/v1/app/drip/endpoint", json={"url": f"http://127.0.0.1:{port}/"})
        assert made.status_code == 201, made.text
        sent = client.post("/api/v1/app/drip/msg", json={"eventType": "e", "payload": {}})
        assert sent.status_code == 202, sent.text
        path = f"/api/v1/app/drip/attempt/msg/{sent.json()['id']}"
        wait_until(lambda: bool(client.get(path).json()["data"]), 15, "the attempt's record")
        (attempt,) = client.get(path).json()["data"]
        wait_until(lambda: bool(stayed), 10, "the receiver to see the hang-up")
    assert attempt["responseStatusCode"] == 0
    assert "timeout after 1.0s" in attempt["response"]
    assert 0.9 <= stayed[0] < 5
