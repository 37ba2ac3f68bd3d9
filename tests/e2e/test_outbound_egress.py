"""A real ``hookline serve`` process with the egress settings: deliveries through
``HOOKLINE_OUTBOUND_PROXY`` (a CONNECT proxy on loopback, in a thread), and
``HOOKLINE_ENDPOINT_HTTPS_ONLY`` / ``HOOKLINE_OUTBOUND_DENY_PORTS`` answered with 422
through the svix SDK."""

from __future__ import annotations

import base64
import select
import socket
import socketserver
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from svix.api import ApplicationIn, EndpointIn, MessageIn, Svix, SvixOptions
from svix.exceptions import HTTPValidationError

from tests.e2e.harness import (
    ADMIN_TOKEN,
    HooklineProcess,
    Receiver,
    free_port,
    sqlite_url,
    wait_until,
)


class ConnectProxy(socketserver.ThreadingTCPServer):
    """An HTTP proxy that only opens CONNECT tunnels, and records each request head."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Tunnel)
        self.heads: list[str] = []
        self.lock = threading.Lock()

    @property
    def port(self) -> int:
        return int(self.server_address[1])


class _Tunnel(socketserver.BaseRequestHandler):
    server: ConnectProxy

    def handle(self) -> None:
        client: socket.socket = self.request
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = client.recv(4096)
            if not chunk:
                return
            head += chunk
        text = head.decode("latin-1")
        with self.server.lock:
            self.server.heads.append(text)
        host, _, port = text.split(" ", 2)[1].rpartition(":")
        with socket.create_connection((host.strip("[]"), int(port)), timeout=10) as upstream:
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            sockets = [client, upstream]
            while True:
                readable, _, _ = select.select(sockets, [], [], 10)
                if not readable:
                    return
                for source in readable:
                    data = source.recv(65536)
                    if not data:
                        return
                    (upstream if source is client else client).sendall(data)


@pytest.fixture
def proxy() -> Iterator[ConnectProxy]:
    server = ConnectProxy()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_deliveries_go_through_the_outbound_proxy_to_the_vetted_address(
    tmp_path: Path, receiver: Receiver, proxy: ConnectProxy
) -> None:
    """The message arrives, signed, through a CONNECT tunnel that names the receiver's
    address (the one the SSRF guard vetted), with the proxy URL's credentials as
    ``Proxy-Authorization``; the password shows in no log line."""
    proc = HooklineProcess(
        sqlite_url(tmp_path),
        free_port(),
        {"HOOKLINE_OUTBOUND_PROXY": f"http://egress:pa55word@127.0.0.1:{proxy.port}"},
        tmp_path,
    ).start("--dev")
    try:
        svix = Svix(ADMIN_TOKEN, SvixOptions(server_url=proc.url))
        app = svix.application.create(ApplicationIn(name="Acme"))
        url = f"http://localhost:{receiver.port}/proxied"
        svix.endpoint.create(app.id, EndpointIn(url=url))
        svix.message.create(app.id, MessageIn(event_type="user.created", payload={"n": 1}))
        wait_until(lambda: len(receiver.received("/proxied")) == 1, 10, "the delivery")
    finally:
        assert proc.terminate() == 0, proc.output()
    (delivered,) = receiver.received("/proxied")
    assert delivered.headers["Host"] == f"localhost:{receiver.port}"
    assert "webhook-signature" in {name.lower() for name in delivered.headers}
    (head,) = proxy.heads
    target = head.split(" ", 2)[1]
    assert target in (f"127.0.0.1:{receiver.port}", f"[::1]:{receiver.port}")
    credentials = base64.b64encode(b"egress:pa55word").decode()
    assert f"Proxy-Authorization: Basic {credentials}" in head
    assert "pa55word" not in proc.output()


def test_destination_rules_answer_422_through_the_sdk(tmp_path: Path) -> None:
    """With https only and port 22 denied, the SDK's endpoint create gets a validation
    error for an http:// URL and for port 22, and succeeds for https on 443."""
    proc = HooklineProcess(
        sqlite_url(tmp_path),
        free_port(),
        {"HOOKLINE_ENDPOINT_HTTPS_ONLY": "true", "HOOKLINE_OUTBOUND_DENY_PORTS": "22"},
        tmp_path,
    ).start()
    try:
        svix = Svix(ADMIN_TOKEN, SvixOptions(server_url=proc.url))
        app = svix.application.create(ApplicationIn(name="Acme"))
        for url in ("http://example.com/hook", "https://example.com:22/hook"):
            with pytest.raises(HTTPValidationError):
                svix.endpoint.create(app.id, EndpointIn(url=url))
        created = svix.endpoint.create(app.id, EndpointIn(url="https://example.com/hook"))
        assert created.url == "https://example.com/hook"
    finally:
        assert proc.terminate() == 0, proc.output()
