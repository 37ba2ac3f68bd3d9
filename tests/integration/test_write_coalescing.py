"""One socket write per response, and HTTP/1.1 still answered correctly through it."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import uvicorn

from hookline.api.write_coalescing import CoalescingHttpToolsProtocol, CoalescingTransport


class RecordingTransport(asyncio.Transport):
    """Records what reaches the socket."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False
        self.aborted = False

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def get_write_buffer_size(self) -> int:
        return 0


async def test_writes_in_one_loop_turn_reach_the_socket_as_one() -> None:
    """A head and a body written back to back leave in a single write, after the turn."""
    real = RecordingTransport()
    transport = CoalescingTransport(real, asyncio.get_running_loop())
    transport.write(b"HTTP/1.1 202 Accepted\r\n\r\n")
    transport.write(b'{"id":"msg_1"}')
    assert real.writes == []
    assert transport.get_write_buffer_size() == len(b"HTTP/1.1 202 Accepted\r\n\r\n") + 14
    await asyncio.sleep(0)
    assert real.writes == [b'HTTP/1.1 202 Accepted\r\n\r\n{"id":"msg_1"}']
    transport.write(b"next")
    await asyncio.sleep(0)
    assert real.writes[1:] == [b"next"]


async def test_close_sends_what_is_pending_first_and_abort_drops_it() -> None:
    """Closing never loses a response written in the same turn; aborting discards it."""
    real = RecordingTransport()
    transport = CoalescingTransport(real, asyncio.get_running_loop())
    transport.write(b"last words")
    transport.close()
    assert real.writes == [b"last words"] and real.closed
    other = RecordingTransport()
    aborted = CoalescingTransport(other, asyncio.get_running_loop())
    aborted.write(b"never sent")
    aborted.abort()
    await asyncio.sleep(0)
    assert other.writes == [] and other.aborted


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"echo:" + body})


async def test_uvicorn_through_the_protocol_answers_pipelined_keep_alive_requests() -> None:
    """Two pipelined requests on one connection get both answers, in order, chunked."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()  # connections wait in the backlog until the server accepts them
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        _app, http=CoalescingHttpToolsProtocol, lifespan="off", log_level="warning"
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve([sock]))
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        request = "POST /a HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n\r\n{}"
        writer.write((request.format(3, "one") + request.format(3, "two")).encode())
        await writer.drain()
        received = b""
        while received.count(b"0\r\n\r\n") < 2:
            chunk = await asyncio.wait_for(reader.read(65536), timeout=5)
            assert chunk, f"connection closed early after {received!r}"
            received += chunk
        writer.close()
    finally:
        server.should_exit = True
        await serving
    assert received.count(b"HTTP/1.1 200 OK") == 2
    assert received.index(b"echo:one") < received.index(b"echo:two")
