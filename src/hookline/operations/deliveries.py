"""Searching deliveries: the operator's list across applications, with filters and payload
and header terms (``domain/search.py`` says what a search may ask; docs/search.md).

Admins only: a row names any application's message, endpoint and event type, and a payload
term reads any payload. The application and endpoint filters are resolved here, so a key
that names nothing is a 404 rather than an empty list that looks like "no deliveries".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from hookline.domain import search as rules
from hookline.domain.errors import NotFound
from hookline.domain.models import MessageStatus, Page
from hookline.domain.search import DeliveryRow, DeliverySearch
from hookline.operations import applications
from hookline.operations.context import Operations
from hookline.operations.principal import Principal
from hookline.storage.base import DEFAULT_LIST_LIMIT


@dataclass(frozen=True, slots=True)
class DeliveryQuery:
    """A search as a face received it: keys not yet resolved, ``q`` and ``iterator`` not
    yet parsed."""

    application: str | None = None
    """An application's id or uid."""
    endpoint: str | None = None
    """An endpoint's id, or its uid when ``application`` is given."""
    event_types: tuple[str, ...] | None = None
    status: MessageStatus | None = None
    status_code: int | None = None
    status_code_class: int | None = None
    before: datetime | None = None
    after: datetime | None = None
    q: str | None = None
    limit: int = DEFAULT_LIST_LIMIT
    iterator: str | None = None


async def search(ops: Operations, principal: Principal, query: DeliveryQuery) -> Page[DeliveryRow]:
    """A page of deliveries across every application, newest message first."""
    principal.require_admin()
    terms = rules.parse_terms(query.q)
    cursor = rules.parse_cursor(query.iterator)
    app_id = None
    endpoint_id = query.endpoint
    if query.application is not None:
        app_id = (await applications.resolve(ops, principal, query.application)).id
        if query.endpoint is not None:
            endpoint = await ops.store.get_endpoint(app_id, query.endpoint)
            if endpoint is None:
                raise NotFound("Endpoint not found")
            endpoint_id = endpoint.id
    found = DeliverySearch(
        app_id=app_id,
        endpoint_id=endpoint_id,
        event_types=query.event_types,
        status=query.status,
        status_code=rules.check_status_code(query.status_code),
        status_code_class=query.status_code_class,
        before=query.before,
        after=query.after,
        terms=terms,
        limit=query.limit,
        cursor=cursor,
    )
    return await ops.store.search_deliveries(found)
