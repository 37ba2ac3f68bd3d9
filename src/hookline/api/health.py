"""Health checks for load balancers and orchestrators; no token needed.

Liveness (``/health/live``, and the older ``/health/ping``) answers from the event loop
alone, so a database outage never gets every pod restarted; readiness (``/health/ready``,
and ``/health``) answers 503 while the database does not, and reports the workers and the
backlog without judging them: alerting on those is Prometheus's job
(docs/observability.md, "Health").
"""

from __future__ import annotations

from hookline.api import schemas as s
from hookline.api.http import Access, Request, Response, Route, json_response, model_response
from hookline.domain.errors import Unavailable
from hookline.operations.context import Operations


async def health(ops: Operations, request: Request) -> Response:
    """200 when the database answers, 503 otherwise: a replica that cannot commit is not ready."""
    now = ops.clock()
    try:
        # One read answers both questions: whether the database answers, and what it holds.
        queue = await ops.store.queue_health(now - ops.stall_timeout)
    except Unavailable as exc:
        return model_response(503, _body("down", exc.detail, None, None))
    due = queue.first_due_at
    age = max(0.0, (now - due).total_seconds()) if due is not None else 0.0
    return model_response(200, _body("ok", None, queue.live_workers, round(age, 3)))


def _body(
    database: str, detail: str | None, live_workers: int | None, backlog_age: float | None
) -> s.HealthOut:
    up = database == "ok"
    return s.HealthOut(
        status="ok" if up else "unavailable",
        database=database,
        failing=[] if up else ["database"],
        detail=detail,
        live_workers=live_workers,
        backlog_age_seconds=backlog_age,
    )


async def ping(ops: Operations, request: Request) -> Response:
    """200 while the process's event loop answers; the database is not asked."""
    return json_response(200, {"status": "ok"})


def _health(path: str, summary: str) -> Route:
    return Route("GET", path, health, summary, "Health", Access.PUBLIC, response=s.HealthOut)


def _live(path: str, summary: str) -> Route:
    return Route("GET", path, ping, summary, "Health", Access.PUBLIC, response=s.PingOut)


ROUTES = [
    _health("/health", "Health: readiness, with the database, workers and backlog"),
    _live("/health/ping", "Liveness: the process answers"),
    _live("/health/live", "Liveness for Kubernetes: the event loop answers, no database"),
    _health("/health/ready", "Readiness for Kubernetes: 503 while the database is down"),
    _live("/api/v1/health/ping", "Liveness: the process answers (Svix's path)"),
    _health("/api/v1/health", "Health, including the database"),
]
