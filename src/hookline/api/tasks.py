"""Background tasks, and the routes that start them: recover, replay-missing, bulk replay
(Svix's), the dead letters with their redrive, and the bulk expunge of message content
(hookline's own).

Each starting route takes ``?dry_run=true`` (hookline's own, snake_case as Svix's query
parameters are) and then answers 200 with the count it would queue, changing nothing.
"""

from __future__ import annotations

from hookline.api import params, serialize
from hookline.api import schemas as s
from hookline.api.attempts import STATUS_CLASSES
from hookline.api.http import (
    Access,
    Handler,
    Request,
    Response,
    Route,
    json_response,
    model_response,
)
from hookline.domain.capabilities import Capability
from hookline.domain.models import MessageStatus
from hookline.domain.tasks import TaskKind, TaskStatus
from hookline.operations import tasks
from hookline.operations.context import Operations
from hookline.operations.tasks import TaskRequest
from hookline.storage.base import DeadLetterFilter

EP = "/api/v1/app/{app_id}/endpoint/{endpoint_id}"
TASK = "/api/v1/background-task/{task_id}"
DEAD_LETTER = "/api/v1/app/{app_id}/dead-letter"
_WIRE_STATUSES = {"running", "finished", "failed", TaskStatus.CANCELED.value}


async def _start(ops: Operations, request: Request, wanted: TaskRequest) -> Response:
    if params.query_bool(request, "dry_run"):
        counted = await tasks.count(ops, request.caller, request.app_key, wanted)
        return model_response(200, s.DryRunOut(task=wanted.kind.wire, count=counted))
    started = await tasks.start(ops, request.caller, request.app_key, wanted)
    return model_response(202, serialize.background_task(started))


async def recover(ops: Operations, request: Request) -> Response:
    body = params.body(s.RecoverIn, request)
    wanted = TaskRequest(
        TaskKind.RECOVER, body.since, body.until, request.path_params["endpoint_id"]
    )
    return await _start(ops, request, wanted)


async def replay_missing(ops: Operations, request: Request) -> Response:
    body = params.body(s.ReplayIn, request)
    wanted = TaskRequest(
        TaskKind.REPLAY_MISSING, body.since, body.until, request.path_params["endpoint_id"]
    )
    return await _start(ops, request, wanted)


async def bulk_replay(ops: Operations, request: Request) -> Response:
    body = params.body(s.BulkReplayIn, request)
    wanted = TaskRequest(
        TaskKind.BULK_REPLAY,
        body.since,
        body.until,
        request.path_params["endpoint_id"],
        event_types=tuple(body.event_types) if body.event_types else None,
        channel=body.channel,
        tag=body.tag,
        status=None if body.status is None else MessageStatus(body.status),
        status_code_class=body.status_code_class,
    )
    return await _start(ops, request, wanted)


async def redrive(ops: Operations, request: Request) -> Response:
    body = params.body(s.DeadLetterRedriveIn, request, optional=True)
    wanted = TaskRequest(
        TaskKind.REDRIVE,
        body.since,
        body.until,
        body.endpoint_id,
        event_types=tuple(body.event_types) if body.event_types else None,
        status_code_class=body.status_code_class,
    )
    return await _start(ops, request, wanted)


async def expunge_content(ops: Operations, request: Request) -> Response:
    body = params.body(s.ExpungeContentIn, request)
    wanted = TaskRequest(
        TaskKind.PURGE_CONTENT,
        body.since,
        body.until,
        event_types=tuple(body.event_types) if body.event_types else None,
        channel=body.channel,
        tag=body.tag,
    )
    return await _start(ops, request, wanted)


async def list_dead_letters(ops: Operations, request: Request) -> Response:
    code_class = request.query_one("status_code_class")
    if code_class not in (None, "") and code_class not in {str(c) for c in STATUS_CLASSES}:
        raise params.QueryError("status_code_class", "must be one of 0, 100, 200, 300, 400, 500")
    filters = DeadLetterFilter(
        endpoint_id=params.query_key(request, "endpoint_id"),
        event_types=params.query_keys(request, "event_types"),
        status_code_class=int(code_class) if code_class else None,
        since=params.query_datetime(request, "since"),
        until=params.query_datetime(request, "until"),
    )
    found = await tasks.dead_letters(
        ops, request.caller, request.app_key, params.list_query(request, True), filters
    )
    return json_response(
        200, serialize.page(found, lambda d: serialize.dump(serialize.dead_letter(d)))
    )


async def list_tasks(ops: Operations, request: Request) -> Response:
    status = request.query_one("status") or None
    if status is not None and status not in _WIRE_STATUSES:
        raise params.QueryError("status", "must be running, finished, failed or canceled")
    kind = request.query_one("task") or None
    wire_kinds = {k.wire for k in TaskKind}
    if kind is not None and kind not in wire_kinds:
        raise params.QueryError("task", f"must be one of {', '.join(sorted(wire_kinds))}")
    found = await tasks.list_tasks(
        ops,
        request.caller,
        params.list_query(request, True),
        None if status is None else _shown_as(status),
        None if kind is None else [k for k in TaskKind if k.wire == kind],
    )
    return json_response(
        200, serialize.page(found, lambda t: serialize.dump(serialize.background_task(t)))
    )


def _shown_as(status: str) -> list[TaskStatus]:
    """``failed`` finds canceled tasks too, since they are shown failed; ``canceled`` finds
    those alone."""
    return [s for s in TaskStatus if status in (s.value, s.wire)]


async def get_task(ops: Operations, request: Request) -> Response:
    found = await tasks.get(ops, request.caller, request.path_params["task_id"])
    return model_response(200, serialize.background_task(found))


async def cancel_task(ops: Operations, request: Request) -> Response:
    canceled = await tasks.cancel(ops, request.caller, request.path_params["task_id"])
    return model_response(200, serialize.background_task(canceled))


def _starter(
    path: str,
    handler: Handler,
    summary: str,
    body: type[s.Wire],
    capability: Capability = Capability.CREATE_ATTEMPTS,
) -> Route:
    return Route(
        "POST",
        path,
        handler,
        summary,
        "Background task",
        Access.APP,
        capability=capability,
        body=body,
        response=s.BackgroundTaskOut,
        status=202,
        query=("dry_run",),
    )


ROUTES = [
    Route(
        "GET",
        "/api/v1/background-task",
        list_tasks,
        "List background tasks",
        "Background task",
        Access.APP,
        capability=Capability.VIEW_BASE,
        response=s.ListResponse[s.BackgroundTaskOut],
        query=("status", "task", "limit", "iterator", "order"),
    ),
    Route(
        "GET",
        TASK,
        get_task,
        "Get a background task",
        "Background task",
        Access.APP,
        capability=Capability.VIEW_BASE,
        response=s.BackgroundTaskOut,
    ),
    Route(
        "POST",
        TASK + "/cancel",
        cancel_task,
        "Cancel a running background task (hookline)",
        "Background task",
        Access.APP,
        capability=Capability.CREATE_ATTEMPTS,
        response=s.BackgroundTaskOut,
    ),
    _starter(EP + "/recover", recover, "Resend failed deliveries in a time range", s.RecoverIn),
    _starter(
        EP + "/replay-missing",
        replay_missing,
        "Send the endpoint the messages it never got in a time range",
        s.ReplayIn,
    ),
    _starter(
        EP + "/bulk-replay",
        bulk_replay,
        "Send the endpoint's deliveries again by filter",
        s.BulkReplayIn,
    ),
    Route(
        "GET",
        DEAD_LETTER,
        list_dead_letters,
        "List dead letters: failed deliveries with no attempt left (hookline)",
        "Dead letter",
        Access.APP,
        capability=Capability.VIEW_BASE,
        response=s.ListResponse[s.DeadLetterOut],
        query=(
            "limit",
            "iterator",
            "order",
            "endpoint_id",
            "event_types",
            "status_code_class",
            "since",
            "until",
        ),
    ),
    _starter(
        DEAD_LETTER + "/redrive",
        redrive,
        "Send dead letters again by filter (hookline)",
        s.DeadLetterRedriveIn,
    ),
    _starter(
        "/api/v1/app/{app_id}/expunge-content",
        expunge_content,
        "Expunge the payloads of the application's messages by filter (hookline)",
        s.ExpungeContentIn,
        Capability.PUBLISH_MESSAGES,
    ),
]
