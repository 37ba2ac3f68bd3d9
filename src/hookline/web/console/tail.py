"""The live tail: attempts across every application as they complete, over server-sent
events.

The page opens an ``EventSource`` on ``/dashboard/tail/stream`` (``static/console.js``);
the stream polls the store every ``POLL_SECONDS`` (another process may have recorded the
attempt, so nothing in memory would see it) and sends each new attempt as an ``attempt``
event whose data is one rendered table row. It ends when the browser goes away (Starlette
cancels it on the disconnect), when the server begins to stop (``Services.stopping``), and
when the session ends, which it checks every ``RECHECK_SECONDS``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

from jinja2 import Environment
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from hookline.domain.errors import HooklineError, InvalidRequest, Unauthorized, Unavailable
from hookline.domain.rollups import OUTCOMES
from hookline.operations import applications, live_tail
from hookline.operations.context import Operations
from hookline.operations.live_tail import FAILURE, SUCCESS, Cursor
from hookline.storage.base import ListQuery
from hookline.web.console.base import PREFIX, ConsolePages, Visit, log
from hookline.web.pages import PageConfig, security_headers
from hookline.web.session import Gate

POLL_SECONDS = 0.3
"""Between two reads of the store: an attempt shows well within a second of its record."""
RECHECK_SECONDS = 30.0
"""How often a stream checks that its session is still valid (revoked, expired)."""
KEEPALIVE_SECONDS = 15.0
"""A comment line this often keeps proxies from closing an idle stream."""
OUTCOME_FILTERS = (SUCCESS, FAILURE, *OUTCOMES)
APPS_LISTED = 250


class Tail(ConsolePages):
    def __init__(
        self,
        ops: Operations,
        gate: Gate,
        templates: Environment,
        config: PageConfig,
        stopping: asyncio.Event | None,
    ) -> None:
        super().__init__(ops, gate, templates, config)
        self._stopping = stopping or asyncio.Event()

    def routes(self) -> list[Route]:
        return [
            Route(PREFIX + "/tail", self.guarded(self.show), methods=["GET"]),
            Route(PREFIX + "/tail/stream", self.guarded(self.stream), methods=["GET"]),
        ]

    async def show(self, request: Request, visit: Visit) -> Response:
        apps = await applications.list_applications(
            self._ops, visit.principal, ListQuery(limit=APPS_LISTED)
        )
        return self.page(
            request,
            visit.session,
            "console/tail.html",
            apps=apps.data,
            outcomes=OUTCOME_FILTERS,
            app=request.query_params.get("app", ""),
            outcome=request.query_params.get("outcome", ""),
        )

    async def stream(self, request: Request, visit: Visit) -> Response:
        """The event stream; a bad filter is refused (422) before it starts."""
        outcome = request.query_params.get("outcome") or None
        if outcome is not None and outcome not in OUTCOME_FILTERS:
            raise InvalidRequest(
                f"Unknown outcome {outcome!r}; one of {', '.join(OUTCOME_FILTERS)}"
            )
        app_id = await live_tail.resolve_filter(
            self._ops, visit.principal, request.query_params.get("app") or None
        )
        cursor = Cursor.starting(self._ops.clock(), app_id, outcome)
        headers = security_headers(self._config)
        headers["x-accel-buffering"] = "no"
        return StreamingResponse(
            self._events(request, visit, cursor), media_type="text/event-stream", headers=headers
        )

    async def _events(self, request: Request, visit: Visit, cursor: Cursor) -> AsyncIterator[str]:
        yield "retry: 2000\n: tail started\n\n"
        checked = sent = time.monotonic()
        names: dict[str, str] = {}
        while not self._stopping.is_set():
            now = time.monotonic()
            if now - checked >= RECHECK_SECONDS:
                checked = now
                try:
                    await self.resume(request)
                except Unauthorized:
                    yield "event: signed-out\ndata: \n\n"
                    return
                except HooklineError as exc:
                    # Refused by a limit or the database away: the session may well be
                    # valid, so the stream goes on and checks again later.
                    log.warning("live tail session check skipped: %s", exc.detail)
            try:
                found = await live_tail.next_attempts(self._ops, visit.principal, cursor)
            except Unavailable as exc:
                # The database is away for a moment (a failover): keep the stream and the
                # cursor, and read again at the next poll; nothing is lost meanwhile.
                log.warning("live tail read skipped: %s", exc)
                found = []
            for attempt in found:
                app = await self._app_name(visit, names, attempt.app_id)
                row = self._render(
                    "console/tail_row.html", attempt=attempt, app_name=app, prefix=PREFIX
                )
                yield "event: attempt\n" + "".join(f"data: {line}\n" for line in row.splitlines())
                yield "\n"
                sent = now
            if now - sent >= KEEPALIVE_SECONDS:
                sent = now
                yield ": keepalive\n\n"
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), POLL_SECONDS)

    async def _app_name(self, visit: Visit, names: dict[str, str], app_id: str) -> str:
        """The application's name for a row, looked up once per stream (an application
        deleted since shows its id)."""
        if app_id not in names:
            if len(names) >= APPS_LISTED:
                names.clear()
            try:
                app = await applications.resolve(self._ops, visit.principal, app_id)
                names[app_id] = app.name
            except HooklineError:
                names[app_id] = app_id
        return names[app_id]
