"""A Python receiver for the scenarios nginx cannot serve: receipt times and slow answers.

It runs inside the bench process. It is fast enough for the fixed 500 messages/s of the
latency scenario, and its ``/slow`` route answers after 10 s for the isolation scenario;
``/tick`` only notes when each request arrived (the rate-limit scenario).
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field

from aiohttp import web

SLOW_SECONDS = 10.0


@dataclass
class Probe:
    port: int
    received_at: dict[int, float] = field(default_factory=dict)
    arrivals: list[float] = field(default_factory=list)
    _runner: web.AppRunner | None = None

    def url(self, route: str) -> str:
        return f"http://127.0.0.1:{self.port}/{route}"

    async def _record(self, request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        self.received_at.setdefault(int(body["i"]), time.time())
        return web.Response(text="ok")

    async def _tick(self, request: web.Request) -> web.Response:
        await request.read()
        self.arrivals.append(time.time())
        return web.Response(text="ok")

    async def _slow(self, request: web.Request) -> web.Response:
        await request.read()
        await asyncio.sleep(SLOW_SECONDS)
        return web.Response(text="late")

    async def start(self) -> Probe:
        app = web.Application()
        app.router.add_post("/rx", self._record)
        app.router.add_post("/slow", self._slow)
        app.router.add_post("/tick", self._tick)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port, backlog=4096).start()
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
