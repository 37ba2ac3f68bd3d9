"""``serve --processes N``: N copies of ``serve`` listening on one port.

A Python process computes on one core at a time, so on a machine with more cores one
process leaves them idle. The parent prepares the database once (schema, first admin
token), then forks N children that each run the API and a worker on their own socket bound
to the same port with ``SO_REUSEPORT``: the kernel spreads new connections evenly among
them (one shared socket would let whichever process woke first take a burst of
connections). Each child hands its own publishes to its own worker, and they share the
database like any other set of workers (leases, heartbeats; SQLite writes queue on a file
lock).

The parent only supervises: SIGTERM or SIGINT is passed to every child and waited for; a
child that exits on its own stops the others and the parent exits 1, so whatever runs
hookline (systemd, Kubernetes) sees the failure and restarts it whole.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable, Coroutine
from types import FrameType
from typing import Any

from hookline.config import Settings
from hookline.instrumentation import process_exited
from hookline.server import metrics_directory, prepare, run

log = logging.getLogger("hookline")

LISTEN_BACKLOG = 2048
PR_SET_PDEATHSIG = 1


def bind(host: str, port: int) -> socket.socket:
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    return socket.create_server(
        (host, port), family=family, backlog=LISTEN_BACKLOG, reuse_port=True
    )


def serve_processes(
    settings: Settings,
    *,
    worker: bool,
    runner: Callable[[Coroutine[Any, Any, None]], None],
) -> int:
    """Fork ``settings.processes`` servers; return the exit status for the parent."""
    bind(settings.host, settings.port).close()  # a port in use fails here, before any fork
    runner(prepare(settings))
    # One metrics directory for the tree: whichever child answers a scrape reports them all.
    with metrics_directory(settings) as directory:
        return _supervise(settings, worker, runner, directory)


def _supervise(
    settings: Settings,
    worker: bool,
    runner: Callable[[Coroutine[Any, Any, None]], None],
    directory: str | None,
) -> int:
    children: set[int] = set()
    stopping = False

    def stop_children(signum: int = signal.SIGTERM, _frame: FrameType | None = None) -> None:
        nonlocal stopping
        stopping = True
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    parent = os.getpid()
    for _ in range(settings.processes):
        pid = os.fork()
        if pid == 0:
            _die_with(parent)
            os._exit(_child(settings, worker, runner, directory))
        children.add(pid)
    signal.signal(signal.SIGTERM, stop_children)
    signal.signal(signal.SIGINT, stop_children)
    log.info(
        "hookline serving on %s:%d with %d processes", settings.host, settings.port, len(children)
    )
    status = 0
    while children:
        pid, wait_status = os.wait()
        children.discard(pid)
        if directory is not None:
            process_exited(directory, pid)
        code = os.waitstatus_to_exitcode(wait_status)
        if not stopping:
            log.error("hookline process %d exited (%d); stopping the others", pid, code)
            status = 1
            stop_children()
        elif code != 0:
            status = 1
    return status


def _die_with(parent: int) -> None:
    """Have the kernel stop this child if the parent dies, even by ``kill -9``: a server left
    behind would keep answering on the port with no one to supervise it (Linux only)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError, TypeError):
        return
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


def _child(
    settings: Settings,
    worker: bool,
    runner: Callable[[Coroutine[Any, Any, None]], None],
    directory: str | None,
) -> int:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    try:
        listener = bind(settings.host, settings.port)
        runner(run(settings, api=True, worker=worker, listener=listener, metrics_dir=directory))
    except BaseException:
        log.exception("hookline process %d failed", os.getpid())
        return 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    return 0
