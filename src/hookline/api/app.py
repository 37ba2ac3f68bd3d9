"""The ASGI application: body limits, routing, authorization, idempotency, error mapping.

Handlers stay thin (parse, call one operation, serialize) because everything every route
needs happens here once, including the access its route declares (``Route.access``).

Paths under the pages' prefixes (``web.PREFIXES``: the portal, its static files, the
console) and the pages' roots (``web.ROOTS``: ``/dashboard`` itself) go to the pages' own
ASGI application, a Starlette app with templates, forms and sessions; everything else
stays on this small core, which ingest speed depends on.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import ValidationError

from hookline.api.cors import PREFLIGHT, CorsPolicy, is_preflight
from hookline.api.errors import (
    IncompleteBody,
    PayloadTooLarge,
    hookline_error_response,
    validation_error_response,
)
from hookline.api.http import (
    Access,
    Request,
    Response,
    Route,
    Router,
    error_response,
    parse_query,
    replay_record,
)
from hookline.api.limits import ApiLimits
from hookline.api.params import QueryError, check_idempotency_key, check_path, check_query
from hookline.api.reservations import KeptReservation
from hookline.config import Settings
from hookline.domain.errors import HooklineError, Unauthorized, Unavailable
from hookline.domain.tracecontext import accepted_request_id
from hookline.instrumentation import (
    NO_INSTRUMENTATION,
    REQUEST_ID,
    Instrumentation,
    MetricsHook,
    RequestServed,
    Tracing,
)
from hookline.operations.context import Operations
from hookline.operations.principal import Principal
from hookline.operations.tokens import Authenticator
from hookline.storage.repository import IDEMPOTENCY_LEASE_SECONDS
from hookline.web.session import Gate, Refused

log = logging.getLogger("hookline.api")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

NO_ROUTE = "(no route)"
"""The template a request without a route is counted under: a bounded label, never a path."""
IN_PROGRESS_RETRY_AFTER = b"1"
"""Seconds a client is asked to wait before retrying a key whose request is still running."""
ABANDON_TRIES = 2
"""How often releasing or completing an idempotency key is tried before giving up."""


@dataclass
class Services:
    """What the API is built from, once per process: the operations its handlers call,
    the settings it enforces itself (the body limit) and the metrics (None when they are
    off), which it counts its requests into and serves on ``/metrics``."""

    ops: Operations
    settings: Settings
    metrics: MetricsHook | None = None
    stopping: asyncio.Event | None = None
    """Set when the process begins to stop: long-lived page responses (the console's live
    tail) end on it, since uvicorn waits for every open response before it exits."""


ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class HooklineApp:
    def __init__(
        self,
        services: Services,
        routes: list[Route],
        *,
        pages: Callable[[Gate], ASGIApp] | None = None,
        page_prefixes: tuple[str, ...] = (),
        page_roots: tuple[str, ...] = (),
        instrumentation: Instrumentation = NO_INSTRUMENTATION,
    ) -> None:
        self.services = services
        self.router = Router(routes)
        self._ops = services.ops
        self._auth = Authenticator(services.ops)
        self._max_body = services.settings.max_payload_bytes
        self._limits = ApiLimits.from_settings(services.settings)
        self._pages = None if pages is None else pages(self.authenticate_page)
        self._page_prefixes = tuple(p + "/" for p in page_prefixes)
        self._page_roots = frozenset(page_roots)
        self._instrumentation = instrumentation
        self._requests_heard = instrumentation.wants(RequestServed)
        self._count_request = None if services.metrics is None else services.metrics.count_request
        self._tracing = services.ops.tracing
        self._cors = CorsPolicy.from_origins(services.settings.cors_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        request_id = _request_id(scope)
        token = REQUEST_ID.set(request_id)
        try:
            path = scope["path"]
            if self._pages is not None and (
                path.startswith(self._page_prefixes) or path in self._page_roots
            ):
                await self._pages(scope, receive, _with_request_id(send, request_id))
                return
            await self._serve(scope, receive, send, request_id)
        finally:
            REQUEST_ID.reset(token)

    async def _serve(self, scope: Scope, receive: Receive, send: Send, request_id: str) -> None:
        started = time.perf_counter() if self._requests_heard else 0.0
        if self._tracing is None:
            response, template = await self._respond(scope, receive)
        else:
            response, template = await self._traced(self._tracing, scope, receive, request_id)
        if self._requests_heard:
            served = RequestServed(
                scope["method"], template, response.status, time.perf_counter() - started
            )
            self._instrumentation.emit(served)
        if self._count_request is not None:
            self._count_request(scope["method"], template, response.status)
        # A new list: a response's own headers are what an idempotent replay stores, and a
        # replay answers with the id of the request that asked for it.
        headers = [*response.headers, (b"x-request-id", request_id.encode())]
        if self._cors is not None and template != PREFLIGHT:
            headers += self._cors.headers(scope)
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": response.body})

    async def _traced(
        self, tracing: Tracing, scope: Scope, receive: Receive, request_id: str
    ) -> tuple[Response, str]:
        """``_respond`` inside the request's server span, a child of the caller's
        ``traceparent`` when it sent one."""
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        span = tracing.request(scope["method"], headers, request_id)
        try:
            response, template = await self._respond(scope, receive)
        except BaseException:
            span.finish(NO_ROUTE, 500)
            raise
        span.finish(template, response.status)
        return response, template

    async def _respond(self, scope: Scope, receive: Receive) -> tuple[Response, str]:
        """The response, and the path template of the route that gave it."""
        method: str = scope["method"]
        path: str = scope["path"]
        if self._cors is not None and is_preflight(scope):
            return _preflight(self._cors, scope), PREFLIGHT
        route, params, allowed = self.router.match(method, path)
        if route is None:
            if allowed:
                refused = error_response(
                    405, "method_not_allowed", f"{method} is not allowed on {path}"
                )
                # RFC 9110 §15.5.6: a 405 lists the methods the resource does support.
                refused.headers.append((b"allow", ", ".join(allowed).encode()))
                return refused, NO_ROUTE
            return error_response(404, "not_found", f"No route for {method} {path}"), NO_ROUTE
        return await self._handle(route, params, scope, receive), route.path

    async def _handle(
        self, route: Route, params: dict[str, str], scope: Scope, receive: Receive
    ) -> Response:
        method: str = scope["method"]
        path: str = scope["path"]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        client = _client(scope)
        if route.access is not Access.PUBLIC:
            refused = self._limits.before_auth(client, time.monotonic())
            if refused is not None:
                return refused
        try:
            body = await _read_body(receive, headers, self._max_body)
        except (PayloadTooLarge, IncompleteBody) as exc:
            return hookline_error_response(exc)
        request = Request(
            method=method,
            path=path,
            query=parse_query(scope.get("query_string", b"")),
            headers=headers,
            body=body,
            path_params=params,
        )
        try:
            if route.access is not Access.PUBLIC:
                refused = await self._authorize(route, request, client)
                if refused is not None:
                    return refused
            key = _checked_inputs(route, request)
            if method == "POST" and key and request.principal is not None and route.replays:
                return await self._idempotent(route, request, request.principal, key)
            return await route.handler(self._ops, request)
        except HooklineError as exc:
            return hookline_error_response(exc)
        except ValidationError as exc:
            return validation_error_response(exc)
        except Exception:
            log.exception("unhandled error on %s %s", method, path)
            return error_response(500, "internal_error", "An unexpected error occurred")

    async def _authorize(
        self, route: Route, request: Request, client: str | None
    ) -> Response | None:
        """Set the request's principal; 401 without a valid token, 403 for a scoped token on
        an admin route or without the capability the route declares (raised), or the limits'
        refusal (returned)."""
        principal = await self._authenticated(request.headers.get("authorization"), client)
        if isinstance(principal, Response):
            return principal
        if route.access is Access.ADMIN:
            principal.require_admin()
        else:
            principal.require(route.capability)
        request.principal = principal
        return None

    async def _authenticated(
        self, authorization: str | None, client: str | None
    ) -> Principal | Response:
        """The token's principal (``Unauthorized`` raised without a valid one, counted as a
        failed authentication), or the limits' refusal after it was read."""
        try:
            principal = await self._auth.authenticate(authorization, self._ops.clock(), client)
        except Unauthorized:
            self._limits.auth_failed(client, time.monotonic())
            raise
        refused = self._limits.after_auth(principal, client, time.monotonic())
        return principal if refused is None else refused

    async def authenticate_page(self, authorization: str | None, client: str | None) -> Principal:
        """The pages' ``web.session.Gate``: the checks of a token-bearing API route, in the
        same order and with the same counts, so that a portal fragment is refused exactly
        when the API would refuse the same token (``Refused`` carries the limits' answer)."""
        refused = self._limits.before_auth(client, time.monotonic())
        if refused is None:
            principal = await self._authenticated(authorization, client)
            if not isinstance(principal, Response):
                return principal
            refused = principal
        detail = str(orjson.loads(refused.body).get("detail", "Refused"))
        retry_after = dict(refused.headers).get(b"retry-after")
        raise Refused(refused.status, detail, None if retry_after is None else retry_after.decode())

    async def _idempotent(
        self, route: Route, request: Request, principal: Principal, key: str
    ) -> Response:
        """Replay the first response for a repeated key; refuse the key with another body.

        Keys are kept in the database so every API replica sees them (DESIGN.md).
        """
        store = self._ops.store
        scope = principal.app_id or "admin"
        digest = hashlib.sha256(
            request.method.encode() + b" " + request.path.encode() + b"\n" + request.body
        ).hexdigest()
        try:
            earlier = await store.idempotency_begin(scope, key, digest, self._ops.clock())
        except Unavailable:
            # The reservation may have committed before the connection dropped; the handler
            # has not run, so releasing the key is safe and lets the client's retry proceed.
            await self._abandon(scope, key)
            raise
        if earlier is not None:
            if earlier.request_hash != digest:
                return error_response(
                    409,
                    "idempotency_conflict",
                    "This idempotency-key was already used with a different request; "
                    "use a new key for a new request",
                )
            if not earlier.completed:
                busy = error_response(
                    409,
                    "idempotency_in_progress",
                    "A request with this idempotency-key is still being processed; retry after "
                    "the Retry-After seconds (a key whose request died is free again within "
                    f"{IDEMPOTENCY_LEASE_SECONDS} s)",
                )
                busy.headers.append((b"retry-after", IN_PROGRESS_RETRY_AFTER))
                return busy
            stored = orjson.loads(earlier.body or b"{}")
            headers = [(k.encode(), v.encode()) for k, v in stored["headers"]]
            return Response(
                int(earlier.status or 200),
                stored["body"].encode("latin-1"),
                [*headers, (b"idempotent-replayed", b"true")],
            )
        request.idempotency = (scope, key)
        kept = KeptReservation(
            lambda: store.idempotency_renew(scope, key, digest, self._ops.clock())
        )
        try:
            response = await self._handle_safely(route, request)
        except BaseException:
            await self._abandon(scope, key)
            raise
        finally:
            await kept.release()
        if response.status >= 500:
            await self._abandon(scope, key)
        elif not request.idempotency_done:
            await self._finish(scope, key, response)
        return response

    async def _finish(self, scope: str, key: str, response: Response) -> None:
        """Store the response for replays. If that fails the work is still done, so the
        client gets the real response; the key then stays reserved until it goes stale."""
        record = replay_record(response)
        for _ in range(ABANDON_TRIES):
            try:
                await self._ops.store.idempotency_finish(scope, key, response.status, record)
                return
            except Unavailable:
                continue
        log.warning("could not store the response of an idempotent request")

    async def _abandon(self, scope: str, key: str) -> None:
        """Release a key whose request failed, so a retry runs; best effort, tried twice."""
        for _ in range(ABANDON_TRIES):
            try:
                await self._ops.store.idempotency_abandon(scope, key)
                return
            except Unavailable:
                continue
        log.warning("could not release idempotency key after a failure; it expires by itself")

    async def _handle_safely(self, route: Route, request: Request) -> Response:
        try:
            return await route.handler(self._ops, request)
        except HooklineError as exc:
            return hookline_error_response(exc)
        except ValidationError as exc:
            return validation_error_response(exc)


def _checked_inputs(route: Route, request: Request) -> str | None:
    """Refuse a query parameter the route does not read, a malformed path segment or query
    value, or a malformed idempotency key; the request's idempotency key, if any."""
    unsupported = route.unsupported_query(request.query)
    if unsupported is not None:
        raise QueryError(
            unsupported,
            f"{request.method} {route.path} does not support the query parameter "
            f"{unsupported!r}; see docs/api-compatibility.md",
        )
    if route.implemented:
        check_path(request.path_params)
        check_query(request.query)
    key = request.headers.get("idempotency-key")
    if key is not None and route.implemented:
        check_idempotency_key(key)
    return key


def _request_id(scope: Scope) -> str:
    """The caller's ``x-request-id`` when it is sane (``domain.tracecontext``), else a new
    one: 32 hex digits, as random as a trace id so that ids from many replicas never meet."""
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            sent = accepted_request_id(value.decode("latin-1"))
            if sent is not None:
                return sent
            break
    return os.urandom(16).hex()


def _preflight(cors: CorsPolicy, scope: Scope) -> Response:
    """A preflight is answered before routing and without a token (browsers send none with
    it): 204 with what may be sent from an allowed origin, else 403 and no CORS header, so
    the browser refuses the call."""
    allowed = cors.preflight_headers(scope)
    if allowed is None:
        return error_response(
            403,
            "cors_origin_not_allowed",
            "This page's origin may not call the API: the operator lists the origins that "
            "may in HOOKLINE_CORS_ORIGINS",
        )
    return Response(204, b"", allowed)


def _with_request_id(send: Send, request_id: str) -> Send:
    """``send`` for the pages' application, adding ``x-request-id`` to its response."""

    async def sending(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            headers = [*message.get("headers", ()), (b"x-request-id", request_id.encode())]
            message = {**message, "headers": headers}
        await send(message)

    return sending


def _client(scope: Scope) -> str | None:
    """The caller's address (the proxy's unless it is listed in HOOKLINE_TRUSTED_PROXIES)."""
    client = scope.get("client")
    return None if not client else str(client[0])


async def _read_body(receive: Receive, headers: dict[str, str], limit: int) -> bytes:
    """The whole body, or an error: never a part of it taken for the whole."""
    declared = headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(
            f"Request body of {declared} bytes exceeds the limit of {limit} bytes"
        )
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise IncompleteBody(
                f"The client went away after {size} bytes of the request body; nothing was done"
            )
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"Request body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
