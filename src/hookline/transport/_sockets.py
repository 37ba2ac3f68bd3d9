"""Opening a TCP connection to an IP literal, and nothing else: no name resolution."""

from __future__ import annotations

import asyncio
import errno
import os
import socket


async def connect_socket(
    family: socket.AddressFamily, address: tuple[str, int], loop: asyncio.AbstractEventLoop
) -> socket.socket:
    """A non-blocking socket connected to ``address`` (an IP literal and a port); closed
    again if that fails or is cancelled."""
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        await _connect(sock, address, loop)
    except BaseException:
        sock.close()
        raise
    return sock


async def _connect(
    sock: socket.socket, address: tuple[str, int], loop: asyncio.AbstractEventLoop
) -> None:
    """Connect without any name resolution: ``address`` is an IP literal, and
    ``loop.sock_connect`` would hand it to ``getaddrinfo`` (uvloop does) all the same."""
    sock.setblocking(False)
    try:
        sock.connect(address)
        return
    except BlockingIOError:
        pass
    fd = sock.fileno()
    writable: asyncio.Future[None] = loop.create_future()
    loop.add_writer(fd, writable.set_result, None)
    try:
        await writable
    finally:
        loop.remove_writer(fd)
    error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if error:
        raise OSError(error, os.strerror(error))


def connect_failure(error: OSError | None) -> str:
    """The reason a connection could not be made, as results give it."""
    if error is not None and error.errno == errno.ECONNREFUSED:
        return "connection refused"
    return f"connection failed: {(error.strerror or error) if error else 'no address'}"
