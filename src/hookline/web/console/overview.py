"""The console's first screen: the last hour across every application, the queue, and
what hurts now.

Every figure comes from a precomputed source, so the screen costs the same with ten
attempts or ten million: attempts from the minute rollups (``statistics.deployment_window``),
the queue from the backlog monitor's sample (``backlog.backlog``), anomalies from their
table. Rollups count attempts, not messages, so the rate shown is attempts per second.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hookline.domain.errors import HooklineError
from hookline.domain.models import Endpoint
from hookline.domain.rollups import MINUTE_SECONDS, OUTCOME_COLUMNS, EndpointShare
from hookline.operations import anomalies, applications, backlog, endpoints, statistics
from hookline.operations.statistics import DeploymentWindow
from hookline.storage.base import ListQuery
from hookline.web.console.base import PREFIX, ConsolePages, Visit

WINDOW = timedelta(hours=1)
HURTING_MIN_ATTEMPTS = 5
"""An endpoint with fewer attempts in the hour is not judged: one failure of two is noise."""
HURTING_SHOWN = 10
ANOMALIES_SHOWN = 20
REFRESH_SECONDS = 30
"""The overview reloads its figures this often (htmx); the rollups move by the minute."""
CHART_OUTCOMES = ("2xx", "4xx", "5xx", "timeout", "connection")
"""The chart's series; every other outcome is added to ``other``."""


@dataclass(frozen=True, slots=True)
class Hurting:
    """A row of "hurting now": the endpoint's share, its URL and its application's name."""

    share: EndpointShare
    app_name: str
    url: str


class Overview(ConsolePages):
    def routes(self) -> list[Route]:
        return [Route(PREFIX, self.guarded(self.show), methods=["GET"])]

    async def show(self, request: Request, visit: Visit) -> Response:
        ops, who = self._ops, visit.principal
        hour = await statistics.deployment_window(
            ops, who, WINDOW, HURTING_MIN_ATTEMPTS, HURTING_SHOWN
        )
        queue = await backlog.backlog(ops, who)
        found = await anomalies.list_anomalies(
            ops, who, ListQuery(limit=ANOMALIES_SHOWN, descending=True), "open"
        )
        total = hour.total
        seconds = (hour.until - hour.since).total_seconds()
        return self.page(
            request,
            visit.session,
            "console/overview.html",
            total=total,
            per_second=total.attempts / seconds if seconds else 0.0,
            success_percent=None if not total.attempts else 100 * total.succeeded / total.attempts,
            p95_ms=total.latency_percentile_ms(0.95),
            by_outcome={k: v for k, v in total.by_outcome().items() if v},
            queue=queue,
            drain=drain_text(queue.drain_seconds),
            anomalies=found.data,
            hurting=[await self._hurting(visit, share) for share in hour.worst],
            chart=orjson.dumps(chart_data(hour)).decode(),
            hurting_min=HURTING_MIN_ATTEMPTS,
            refresh_seconds=REFRESH_SECONDS,
        )

    async def _hurting(self, visit: Visit, share: EndpointShare) -> Hurting:
        """Names for a row; an endpoint deleted since its attempts keeps its id."""
        ops, who = self._ops, visit.principal
        try:
            app = await applications.resolve(ops, who, share.app_id)
            found: Endpoint = await endpoints.get(ops, who, app.id, share.endpoint_id)
        except HooklineError:
            return Hurting(share, share.app_id, share.endpoint_id)
        return Hurting(share, app.name, found.url)


def chart_data(hour: DeploymentWindow) -> dict[str, Any]:
    """uPlot's columns: every minute of the window (unix seconds), then attempts per
    outcome in it; a minute without a row is a zero, so the axis spans the whole hour."""
    found = {int(point.start.timestamp()): point for point in hour.series}
    step = MINUTE_SECONDS
    first = int(hour.since.timestamp())
    times = list(range(first - first % step, int(hour.until.timestamp()), step))
    columns: dict[str, list[int]] = {name: [] for name in (*CHART_OUTCOMES, "other")}
    for at in times:
        point = found.get(at)
        shown = 0
        for name in CHART_OUTCOMES:
            count = 0 if point is None else point.count(OUTCOME_COLUMNS[name])
            columns[name].append(count)
            shown += count
        columns["other"].append(0 if point is None else point.count("attempts") - shown)
    return {"times": times, "series": columns}


def drain_text(seconds: float | None) -> str:
    if seconds is None:
        return "not enough samples yet"
    if math.isinf(seconds):
        return "not draining"
    if seconds < 1:
        return "drained"
    if seconds < 120:
        return f"about {round(seconds)} s"
    if seconds < 7200:
        return f"about {round(seconds / 60)} min"
    return f"about {seconds / 3600:.1f} h"
