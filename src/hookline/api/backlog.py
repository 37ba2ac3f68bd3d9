"""``GET /api/v1/backlog`` (hookline's own): the due backlog and when it will clear, so an
operator can tell whether to add workers. Admins only: the backlog spans every application."""

from __future__ import annotations

import math

from hookline.api import schemas as s
from hookline.api.http import Access, Request, Response, Route, model_response
from hookline.domain.backlog import BacklogState, describe_drain
from hookline.operations import backlog as backlog_operations
from hookline.operations.context import Operations


async def get_backlog(ops: Operations, request: Request) -> Response:
    state = await backlog_operations.backlog(ops, request.caller)
    return model_response(200, _out(state))


def _out(state: BacklogState) -> s.BacklogOut:
    seconds = state.drain_seconds
    if state.due == 0:
        drain = "empty"
    elif seconds is None:
        drain = "unknown"
    elif math.isinf(seconds):
        drain = "stalled"
    else:
        drain = "draining"
    return s.BacklogOut(
        due=state.due,
        oldest_due_at=state.oldest_due_at,
        oldest_due_age_seconds=round(state.oldest_due_age_seconds, 3),
        drain=drain,
        drain_seconds=round(seconds, 1) if drain == "draining" and seconds is not None else None,
        forecast=describe_drain(state),
        live_workers=state.live_workers,
        disabled_endpoints=state.disabled_endpoints,
        open_breakers=state.open_breakers,
        sampled_at=state.sampled_at,
    )


ROUTES = [
    Route(
        "GET",
        "/api/v1/backlog",
        get_backlog,
        "The due backlog and its drain forecast (hookline)",
        "Health",
        Access.ADMIN,
        response=s.BacklogOut,
    ),
]
