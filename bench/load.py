"""Producers for the throughput scenarios: h2load (from Debian's nghttp2-client) over HTTP/1.1.

The producers share the two cores with what they measure. A Python client spends about
100 µs of CPU per publish, a third of what hookline itself spends, so it would be measuring
itself as much as hookline; h2load is written in C and spends about 13 µs. It sends a fixed
number of requests over a fixed number of keep-alive connections, one request in flight per
connection, and logs every response's status and duration, from which the bench counts the
202s and takes percentiles. The rate-limited latency scenario keeps a Python producer
(``run.Publisher``), which needs each message's own send time and is not CPU-bound at 500/s.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Load:
    """What one h2load run saw."""

    requests: int
    accepted: int
    """Responses with the expected status (202 for a publish)."""
    seconds: float
    durations: list[float]
    """Per request, in seconds, from send to complete response."""


def h2load_binary() -> str:
    found = shutil.which("h2load")
    if found is None:
        raise RuntimeError("h2load not found: install it with `apt-get install nghttp2-client`")
    return found


async def h2load(
    url: str,
    count: int,
    body: bytes,
    headers: dict[str, str],
    *,
    connections: int = 64,
    expect_status: int = 202,
) -> Load:
    """POST ``body`` ``count`` times over ``connections`` keep-alive connections."""
    with tempfile.TemporaryDirectory(prefix="hookline-bench-h2load-") as work:
        body_file = Path(work) / "body.json"
        body_file.write_bytes(body)
        log = Path(work) / "requests.log"
        args = [
            h2load_binary(),
            "--h1",
            f"--requests={count}",
            f"--clients={connections}",
            "--threads=1",
            f"--data={body_file}",
            f"--log-file={log}",
        ]
        for name, value in headers.items():
            args.append(f"--header={name}: {value}")
        started = time.perf_counter()
        process = await asyncio.create_subprocess_exec(
            *args, url, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        output, _ = await process.communicate()
        seconds = time.perf_counter() - started
        if process.returncode != 0:
            raise RuntimeError(f"h2load failed: {output.decode(errors='replace')[-2000:]}")
        accepted = 0
        durations: list[float] = []
        for line in log.read_text().splitlines():
            _, status, micros = line.split("\t")
            if int(status) == expect_status:
                accepted += 1
            durations.append(int(micros) / 1e6)
    return Load(count, accepted, seconds, durations)
