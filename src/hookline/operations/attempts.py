"""Attempt logs and manual resends: what happened to each (message, endpoint) pair."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from hookline.domain import audit as a
from hookline.domain.errors import Conflict, NotFound
from hookline.domain.models import Attempt, Delivery, Endpoint, Message, MessageStatus, Page
from hookline.operations import applications, endpoints, messages
from hookline.operations.audit import record
from hookline.operations.context import Operations
from hookline.operations.principal import Principal
from hookline.storage.base import AttemptFilter, ListQuery, MessageFilter


async def list_by_endpoint(
    ops: Operations,
    principal: Principal,
    app_key: str,
    endpoint_key: str,
    query: ListQuery,
    filters: AttemptFilter,
) -> Page[Attempt]:
    app = await applications.resolve(ops, principal, app_key)
    endpoint = await endpoints.in_application(ops, app, endpoint_key)
    return await ops.store.list_attempts(
        app.id, query, replace(filters, endpoint_id=endpoint.id), None
    )


async def list_by_message(
    ops: Operations,
    principal: Principal,
    app_key: str,
    msg_key: str,
    query: ListQuery,
    filters: AttemptFilter,
) -> Page[Attempt]:
    """A message's attempts; ``filters.endpoint_id`` may name the endpoint by uid.

    An endpoint that does not exist matches no attempt; it is not a 404.
    """
    app = await applications.resolve(ops, principal, app_key)
    msg = await messages.in_application(ops, app, msg_key)
    if filters.endpoint_id is not None:
        endpoint = await ops.store.get_endpoint(app.id, filters.endpoint_id)
        if endpoint is not None:
            filters = replace(filters, endpoint_id=endpoint.id)
    return await ops.store.list_attempts(app.id, query, filters, msg.id)


async def get(
    ops: Operations, principal: Principal, app_key: str, msg_key: str, attempt_id: str
) -> Attempt:
    app = await applications.resolve(ops, principal, app_key)
    msg = await messages.in_application(ops, app, msg_key)
    attempt = await ops.store.get_attempt(app.id, attempt_id)
    if attempt is None or attempt.msg_id != msg.id:
        raise NotFound("Message attempt not found")
    return attempt


async def attempted_messages(
    ops: Operations,
    principal: Principal,
    app_key: str,
    endpoint_key: str,
    query: ListQuery,
    filters: MessageFilter,
    status: MessageStatus | None = None,
) -> Page[tuple[Message, Delivery]]:
    """The messages sent to one endpoint, each with its delivery's state (``status`` keeps
    the deliveries in that state)."""
    app = await applications.resolve(ops, principal, app_key)
    endpoint = await endpoints.in_application(ops, app, endpoint_key)
    return await ops.store.list_attempted_messages(app.id, endpoint.id, query, filters, status)


async def messages_of(
    ops: Operations, principal: Principal, app_key: str, attempts: Sequence[Attempt]
) -> dict[str, Message]:
    """The messages of ``attempts`` (Svix's ``with_msg``), by id; one read per message."""
    app = await applications.resolve(ops, principal, app_key)
    found: dict[str, Message] = {}
    for msg_id in dict.fromkeys(attempt.msg_id for attempt in attempts):
        msg = await ops.store.get_message(app.id, msg_id)
        if msg is not None:
            found[msg_id] = msg
    return found


async def attempted_destinations(
    ops: Operations, principal: Principal, app_key: str, msg_key: str, query: ListQuery
) -> Page[tuple[Endpoint, Delivery]]:
    """The endpoints one message was sent to, each with its delivery's state."""
    app = await applications.resolve(ops, principal, app_key)
    msg = await messages.in_application(ops, app, msg_key)
    return await ops.store.list_attempted_destinations(app.id, msg.id, query)


async def resend(
    ops: Operations, principal: Principal, app_key: str, msg_key: str, endpoint_key: str
) -> None:
    """Queue one manual attempt now; it does not restart an exhausted retry schedule.

    Only a pair the message was routed to can be resent: a resend never creates a delivery.
    """
    app = await applications.resolve(ops, principal, app_key)
    msg = await messages.in_application(ops, app, msg_key)
    endpoint = await endpoints.in_application(ops, app, endpoint_key)
    if await ops.store.get_delivery(msg.id, endpoint.id) is None:
        raise NotFound("This message was never sent to this endpoint")
    await ops.store.resend(app.id, msg.id, endpoint.id, ops.clock())
    ops.work_queued()
    summary = {"endpointId": endpoint.id}
    await record(ops, principal, a.MESSAGE_RESENT, app_id=app.id, target_id=msg.id, summary=summary)


async def skip(
    ops: Operations, principal: Principal, app_key: str, msg_key: str, endpoint_key: str
) -> None:
    """Release an ordered endpoint's held line: its held delivery becomes a dead letter
    (failed; it can still be resent) and the next message of its sequence goes out.

    Only a held delivery can be skipped (409 ``not_held`` otherwise): skipping one still
    pending or sending would let the line overtake it.
    """
    app = await applications.resolve(ops, principal, app_key)
    msg = await messages.in_application(ops, app, msg_key)
    endpoint = await endpoints.in_application(ops, app, endpoint_key)
    if await ops.store.get_delivery(msg.id, endpoint.id) is None:
        raise NotFound("This message was never sent to this endpoint")
    if not await ops.store.skip_held(app.id, msg.id, endpoint.id, ops.clock()):
        raise Conflict(
            "This delivery is not holding its endpoint's line: only a held delivery "
            "(an ordered endpoint's exhausted delivery with onExhausted 'hold') can be skipped",
            code="not_held",
        )
    ops.work_queued()
    summary = {"endpointId": endpoint.id}
    await record(
        ops, principal, a.MESSAGE_SKIPPED, app_id=app.id, target_id=msg.id, summary=summary
    )
