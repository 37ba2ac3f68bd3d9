"""The consumer portal: ``/portal/{app_id}`` and the fragments its screens are made of.

The page at ``/portal/{app_id}`` is a shell with no data in it: the token travels in the
link's URL fragment, which browsers never send, so the server cannot know who opens it.
Every screen is an HTML fragment under ``/portal/{app_id}/…`` that htmx fetches with the
token as a bearer header, and each fragment route declares the capability it needs, as
the API's routes do (``Portal.routes``). The screens hide what the token cannot do; the
routes refuse it anyway, so a hand-made request gets the API's 401 or 403.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import orjson
from jinja2 import Environment
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hookline.domain import branding
from hookline.domain.capabilities import Capability
from hookline.domain.errors import InvalidRequest, NotFound
from hookline.domain.headers import InvalidHeader, merge_headers
from hookline.domain.models import Endpoint
from hookline.domain.policy import NO_ENDPOINT_POLICY
from hookline.domain.rollups import RollupSummary
from hookline.domain.routing import endpoint_accepts
from hookline.domain.tasks import BackgroundTask, TaskKind, TaskStatus
from hookline.operations import (
    attempts,
    endpoints,
    event_types,
    messages,
    portal_branding,
    statistics,
    tasks,
    tokens,
)
from hookline.operations.context import Operations
from hookline.operations.endpoints import EndpointPatch, HeadersPatch
from hookline.operations.tasks import TaskRequest
from hookline.storage.base import MAX_LIST_LIMIT, AttemptFilter, ListQuery, MessageFilter
from hookline.web.forms import (
    ORDERING_CHOICES,
    PERIODS,
    EndpointForm,
    FieldErrors,
    errors_of,
    period,
    posted_form,
)
from hookline.web.pages import PageConfig, Pages
from hookline.web.session import Caller, Gate

MAX_GRACE_HOURS = 168
"""A rotated secret's overlap window, at most the operations' 7 days."""
DEFAULT_GRACE_HOURS = 24
MESSAGES_PER_PAGE = 50
ATTEMPTS_SHOWN = 50
"""A message's newest attempts on its screen; the API pages through all of them."""
PAYLOAD_SHOWN_BYTES = 65536
"""A payload larger than this is shown cut (the API returns it whole)."""
SIGNED_OUT_EVENT = "hookline:signed-out"
"""The event ``static/portal.js`` hears to drop the tab's copy of the key."""
WINDOWS = (("Last 24 hours", timedelta(hours=24)), ("Last 7 days", timedelta(days=7)))
"""The health windows of an endpoint's screen, as the issue asks."""


@dataclass(frozen=True, slots=True)
class Health:
    """An endpoint's attempts over one window, as its screen shows them."""

    window: str
    attempts: int
    success_percent: float | None
    p95_ms: int | None

    @classmethod
    def of(cls, window: str, found: RollupSummary) -> Health:
        if found.attempts == 0:
            return cls(window, 0, None, None)
        share = 100 * found.succeeded / found.attempts
        return cls(window, found.attempts, share, found.latency_percentile_ms(0.95))


class Portal(Pages):
    """The portal's routes over the operations, the gate and the templates."""

    def __init__(
        self, ops: Operations, gate: Gate, templates: Environment, config: PageConfig
    ) -> None:
        super().__init__(gate, templates, config)
        self._ops = ops

    def routes(self, prefix: str) -> list[Route]:
        base = prefix + "/{app_id}"
        manage, view = Capability.MANAGE_ENDPOINT, Capability.VIEW_BASE
        fragments = [
            ("GET", "/endpoints", self.list_endpoints, view),
            ("GET", "/endpoints/new", self.new_endpoint, manage),
            ("POST", "/endpoints", self.create_endpoint, manage),
            ("GET", "/endpoints/{endpoint_id}", self.show_endpoint, view),
            ("GET", "/endpoints/{endpoint_id}/edit", self.edit_endpoint, manage),
            ("POST", "/endpoints/{endpoint_id}", self.update_endpoint, manage),
            ("POST", "/endpoints/{endpoint_id}/disable", self.disable, manage),
            ("POST", "/endpoints/{endpoint_id}/enable", self.enable, manage),
            (
                "GET",
                "/endpoints/{endpoint_id}/secret",
                self.reveal_secret,
                Capability.VIEW_ENDPOINT_SECRET,
            ),
            (
                "POST",
                "/endpoints/{endpoint_id}/secret/rotate",
                self.rotate_secret,
                Capability.MANAGE_ENDPOINT_SECRET,
            ),
            (
                "POST",
                "/endpoints/{endpoint_id}/send-example",
                self.send_example,
                Capability.CREATE_ATTEMPTS,
            ),
            (
                "POST",
                "/endpoints/{endpoint_id}/recovery/count",
                self.count_recovery,
                Capability.CREATE_ATTEMPTS,
            ),
            (
                "POST",
                "/endpoints/{endpoint_id}/recovery",
                self.start_recovery,
                Capability.CREATE_ATTEMPTS,
            ),
            ("GET", "/tasks/{task_id}", self.show_task, view),
            ("POST", "/tasks/{task_id}/cancel", self.cancel_task, Capability.CREATE_ATTEMPTS),
            ("GET", "/event-types", self.list_event_types, view),
            ("GET", "/messages", self.list_messages, view),
            ("GET", "/messages/{msg_id}", self.show_message, view),
            (
                "POST",
                "/messages/{msg_id}/resend/{endpoint_id}",
                self.resend,
                Capability.CREATE_ATTEMPTS,
            ),
            ("POST", "/sign-out", self.sign_out, view),
        ]
        return [
            Route(base, self.shell, methods=["GET"]),
            *(
                Route(base + path, self._fragment(handler, capability), methods=[method])
                for method, path, handler, capability in fragments
            ),
        ]

    # The shell -------------------------------------------------------------------------

    async def shell(self, request: Request) -> Response:
        """The page the link opens: the layout, the branding, and a first fragment to load."""
        app_id = request.path_params["app_id"]
        nonce = secrets.token_urlsafe(16)
        try:
            defaults = await portal_branding.defaults(self._ops, app_id)
            brand = branding.parse({**defaults, **request.query_params}, dev=self._config.dev)
        except InvalidRequest as exc:
            page = self._render("portal/bad_link.html", app_id=app_id, message=exc.detail)
            return self._html(page, 400, nonce)
        page = self._render("portal/shell.html", app_id=app_id, brand=brand, nonce=nonce)
        return self._html(page, 200, nonce)

    # Endpoints -------------------------------------------------------------------------

    async def list_endpoints(self, request: Request, caller: Caller) -> Response:
        wanted = request.query_params.get("eventType") or None
        channel = (request.query_params.get("channel") or "").strip() or None
        page = await endpoints.list_shown(
            self._ops, caller.principal, caller.app_key, ListQuery(limit=MAX_LIST_LIMIT)
        )
        shown = [pair for pair in page.data if receives(pair[0], wanted, channel)]
        return self._fragment_page(
            "portal/endpoints.html",
            caller,
            endpoints=shown,
            more=not page.done,
            event_type=wanted,
            channel=channel,
            catalog=await self._catalog(caller),
        )

    async def new_endpoint(self, request: Request, caller: Caller) -> Response:
        return await self._form(caller, EndpointForm(), FieldErrors(), None)

    async def create_endpoint(self, request: Request, caller: Caller) -> Response:
        form = EndpointForm.posted(await posted_form(request))
        try:
            fields = replace(
                form.fields(), headers=form.header_map(), policy=form.policy(NO_ENDPOINT_POLICY)
            )
            created = await endpoints.create(self._ops, caller.principal, caller.app_key, fields)
        except InvalidRequest as exc:
            return await self._form(caller, form, errors_of(exc), None, status=422)
        return await self._detail(caller, created.id, notice="Endpoint created.", status=201)

    async def show_endpoint(self, request: Request, caller: Caller) -> Response:
        return await self._detail(caller, request.path_params["endpoint_id"])

    async def edit_endpoint(self, request: Request, caller: Caller) -> Response:
        found = await endpoints.get(
            self._ops, caller.principal, caller.app_key, request.path_params["endpoint_id"]
        )
        shown, _ = await endpoints.headers(self._ops, caller.principal, caller.app_key, found.id)
        schedule, ordering = EndpointForm.of_policy(found.policy)
        form = replace(
            EndpointForm.of(found),
            headers="\n".join(f"{name}: {value}" for name, value in shown.items()),
            retry_schedule=schedule,
            ordering=ordering,
        )
        return await self._form(caller, form, FieldErrors(), found)

    async def update_endpoint(self, request: Request, caller: Caller) -> Response:
        key = request.path_params["endpoint_id"]
        found = await endpoints.get(self._ops, caller.principal, caller.app_key, key)
        form = EndpointForm.posted(await posted_form(request))
        try:
            await self._apply(caller, found, form)
        except InvalidRequest as exc:
            return await self._form(caller, form, errors_of(exc), found, status=422)
        return await self._detail(caller, found.id, notice="Endpoint saved.")

    async def _apply(self, caller: Caller, found: Endpoint, form: EndpointForm) -> None:
        """The form's changes: every value is checked before the first write, so a refused
        form changes nothing; the fields, then the custom headers if they changed. Headers
        whose values are withheld (credentials) are not in the form and are kept."""
        ops, who, app = self._ops, caller.principal, caller.app_key
        given = form.header_map()
        shown, _ = await endpoints.headers(ops, who, app, found.id)
        kept = {name.lower() for name in given}
        changes = HeadersPatch(
            headers=given, delete=[name for name in shown if name.lower() not in kept]
        )
        try:
            merge_headers(found.headers, changes.headers, changes.delete)
        except InvalidHeader as exc:
            raise InvalidRequest(str(exc), loc=("body", "headers")) from exc
        patch = replace(form.patch(), policy=form.policy(found.policy))
        await endpoints.patch(ops, who, app, found.id, patch)
        if given != shown:
            await endpoints.update_headers(ops, who, app, found.id, changes)

    async def disable(self, request: Request, caller: Caller) -> Response:
        return await self._set_disabled(request, caller, True)

    async def enable(self, request: Request, caller: Caller) -> Response:
        return await self._set_disabled(request, caller, False)

    async def _set_disabled(self, request: Request, caller: Caller, disabled: bool) -> Response:
        key = request.path_params["endpoint_id"]
        changes = EndpointPatch(disabled=disabled)
        await endpoints.patch(self._ops, caller.principal, caller.app_key, key, changes)
        notice = "Endpoint disabled." if disabled else "Endpoint enabled."
        return await self._detail(caller, key, notice=notice)

    async def reveal_secret(self, request: Request, caller: Caller) -> Response:
        key = request.path_params["endpoint_id"]
        found = await endpoints.secret(self._ops, caller.principal, caller.app_key, key)
        return self._fragment_page("portal/secret.html", caller, secret=found, endpoint_id=key)

    async def rotate_secret(self, request: Request, caller: Caller) -> Response:
        key = request.path_params["endpoint_id"]
        form = await posted_form(request)
        hours = grace_hours(form.get("graceHours"))
        rotated = await endpoints.rotate_secret(
            self._ops, caller.principal, caller.app_key, key, None, timedelta(hours=hours)
        )
        return self._fragment_page(
            "portal/secret.html", caller, secret=rotated, endpoint_id=key, rotated=hours
        )

    async def send_example(self, request: Request, caller: Caller) -> Response:
        """Publish an event type's example to this one endpoint, to try a receiver."""
        key = request.path_params["endpoint_id"]
        form = await posted_form(request)
        name = form.get("eventType")
        sent = await messages.send_example(
            self._ops, caller.principal, caller.app_key, key, name if isinstance(name, str) else ""
        )
        notice = f"Example {sent.event_type} sent as {sent.id}."
        return await self._detail(caller, key, notice=notice)

    async def count_recovery(self, request: Request, caller: Caller) -> Response:
        """How many messages a recover or a replay would send again, before it starts: the
        task's own dry run, so the count is what the confirmation would queue."""
        form = await posted_form(request)
        wanted = recovery_request(form, request.path_params["endpoint_id"], self._ops.clock())
        counted = await tasks.count(self._ops, caller.principal, caller.app_key, wanted)
        return self._fragment_page(
            "portal/recovery.html",
            caller,
            endpoint_id=request.path_params["endpoint_id"],
            kind=form.get("kind"),
            since=wanted.since,
            count=counted,
            task=None,
        )

    async def start_recovery(self, request: Request, caller: Caller) -> Response:
        form = await posted_form(request)
        wanted = recovery_request(form, request.path_params["endpoint_id"], self._ops.clock())
        started = await tasks.start(self._ops, caller.principal, caller.app_key, wanted)
        return self._task(caller, started, status=202)

    async def show_task(self, request: Request, caller: Caller) -> Response:
        found = await tasks.get(self._ops, caller.principal, request.path_params["task_id"])
        return self._task(caller, found)

    async def cancel_task(self, request: Request, caller: Caller) -> Response:
        canceled = await tasks.cancel(self._ops, caller.principal, request.path_params["task_id"])
        return self._task(caller, canceled)

    def _task(self, caller: Caller, task: BackgroundTask, *, status: int = 200) -> Response:
        """A recover's or replay's progress; the fragment polls itself while it runs."""
        return self._fragment_page(
            "portal/recovery.html",
            caller,
            status=status,
            task=task,
            data=tasks.task_data(task),
            running=task.status is TaskStatus.RUNNING,
            can_cancel=caller.may(Capability.CREATE_ATTEMPTS),
        )

    async def list_event_types(self, request: Request, caller: Caller) -> Response:
        return self._fragment_page(
            "portal/event_types.html", caller, catalog=await self._catalog(caller)
        )

    async def list_messages(self, request: Request, caller: Caller) -> Response:
        """The newest messages first, a page at a time, optionally of one event type and
        within a period; or the one message whose id or ``eventId`` was searched for."""
        wanted = request.query_params.get("eventType") or None
        since = request.query_params.get("since") or None
        searched = (request.query_params.get("id") or "").strip() or None
        if searched is not None:
            try:
                found = await messages.get(self._ops, caller.principal, caller.app_key, searched)
            except NotFound:
                pass
            else:
                return await self._message(caller, found.id)
        iterator = request.query_params.get("iterator") or None
        query = ListQuery(limit=MESSAGES_PER_PAGE, iterator=iterator, descending=True)
        filters = MessageFilter(
            event_types=None if wanted is None else (wanted,),
            after=None if since is None else self._ops.clock() - period(since),
        )
        page = await messages.list_messages(
            self._ops, caller.principal, caller.app_key, query, filters
        )
        return self._fragment_page(
            "portal/messages.html",
            caller,
            messages=page.data,
            older=None if page.done else page.iterator,
            event_type=wanted,
            since=since,
            periods=PERIODS,
            not_found=searched,
            catalog=await self._catalog(caller),
        )

    async def show_message(self, request: Request, caller: Caller) -> Response:
        return await self._message(caller, request.path_params["msg_id"])

    async def resend(self, request: Request, caller: Caller) -> Response:
        key, endpoint = request.path_params["msg_id"], request.path_params["endpoint_id"]
        await attempts.resend(self._ops, caller.principal, caller.app_key, key, endpoint)
        notice = "Resend queued: a new attempt is on its way."
        return await self._message(caller, key, notice=notice)

    async def _message(self, caller: Caller, key: str, *, notice: str | None = None) -> Response:
        """A message, its payload, its latest attempts and the endpoints it was sent to."""
        ops, who, app = self._ops, caller.principal, caller.app_key
        found = await messages.get(ops, who, app, key)
        newest = ListQuery(limit=ATTEMPTS_SHOWN, descending=True)
        tried = await attempts.list_by_message(ops, who, app, found.id, newest, AttemptFilter())
        sent_to = await attempts.attempted_destinations(
            ops, who, app, found.id, ListQuery(limit=MAX_LIST_LIMIT)
        )
        return self._fragment_page(
            "portal/message.html",
            caller,
            message=found,
            payload=shown_payload(found.payload),
            attempts=tried.data,
            destinations=sent_to.data,
            notice=notice,
            can_resend=caller.may(Capability.CREATE_ATTEMPTS),
        )

    async def sign_out(self, request: Request, caller: Caller) -> Response:
        """Svix's logout from the portal: the token is revoked (``tokens.logout``, as
        ``POST /api/v1/auth/logout``) and the tab told to forget it (``HX-Trigger``)."""
        await tokens.logout(self._ops, caller.principal)
        response = self._fragment_page("portal/signed_out.html", caller)
        response.headers["hx-trigger"] = SIGNED_OUT_EVENT
        return response

    # Rendering -------------------------------------------------------------------------

    async def _detail(
        self, caller: Caller, key: str, *, notice: str | None = None, status: int = 200
    ) -> Response:
        found, circuit = await endpoints.show(self._ops, caller.principal, caller.app_key, key)
        health = [await self._health(caller, found.id, label, span) for label, span in WINDOWS]
        disable_at = None
        if found.failing_since is not None and not found.disabled:
            disable_at = found.failing_since + self._ops.disable_after
        headers: dict[str, str] = {}
        hidden: list[str] = []
        if caller.may(Capability.VIEW_ENDPOINT_SECRET):
            headers, hidden = await endpoints.headers(
                self._ops, caller.principal, caller.app_key, found.id
            )
        return self._fragment_page(
            "portal/endpoint.html",
            caller,
            status=status,
            endpoint=found,
            circuit=circuit,
            headers=headers,
            hidden_headers=hidden,
            health=health,
            disable_at=disable_at,
            can_send=caller.may(Capability.CREATE_ATTEMPTS),
            catalog=await self._catalog(caller),
            periods=PERIODS,
            notice=notice,
            default_grace=DEFAULT_GRACE_HOURS,
            max_grace=MAX_GRACE_HOURS,
        )

    async def _health(self, caller: Caller, key: str, label: str, span: timedelta) -> Health:
        """The endpoint's attempts over the window, from the rollups (never the attempts)."""
        since = self._ops.clock() - span
        found = await statistics.attempt_stats(
            self._ops, caller.principal, caller.app_key, key, since
        )
        return Health.of(label, found)

    async def _form(
        self,
        caller: Caller,
        form: EndpointForm,
        errors: FieldErrors,
        existing: Endpoint | None,
        *,
        status: int = 200,
    ) -> Response:
        return self._fragment_page(
            "portal/endpoint_form.html",
            caller,
            status=status,
            form=form,
            errors=errors,
            existing=existing,
            ordering_choices=ORDERING_CHOICES,
            catalog=await self._catalog(caller),
        )

    async def _catalog(self, caller: Caller) -> list[Any]:
        found = await event_types.list_event_types(
            self._ops, caller.principal, ListQuery(limit=MAX_LIST_LIMIT)
        )
        return list(found.data)

    def _fragment_page(
        self, template: str, caller: Caller, *, status: int = 200, **context: Any
    ) -> Response:
        page = self._render(
            template,
            app_id=caller.app_key,
            can_manage=caller.may(Capability.MANAGE_ENDPOINT),
            can_view_secret=caller.may(Capability.VIEW_ENDPOINT_SECRET),
            can_rotate=caller.may(Capability.MANAGE_ENDPOINT_SECRET),
            **context,
        )
        return self._html(page, status)


RECOVERY_KINDS = {"recover": TaskKind.RECOVER, "replay": TaskKind.REPLAY_MISSING}
"""The recovery panel's choice: Svix's recover (failed for good) and replay-missing."""


def recovery_request(form: FormData, endpoint: str, now: datetime) -> TaskRequest:
    """The task the recovery panel asks for. The count's confirmation carries the exact
    ``since`` it counted from, so the task starts from the time the count was made for;
    the first form carries a preset."""
    kind = RECOVERY_KINDS.get(str(form.get("kind") or ""))
    if kind is None:
        raise InvalidRequest("Choose recover or replay", loc=("body", "kind"))
    exact = str(form.get("sinceTime") or "")
    if exact:
        try:
            since = datetime.fromisoformat(exact)
        except ValueError:
            raise InvalidRequest(
                "sinceTime must be an ISO 8601 time", loc=("body", "sinceTime")
            ) from None
    else:
        since = now - period(str(form.get("since") or ""))
    return TaskRequest(kind, since=since, endpoint=endpoint)


def receives(endpoint: Endpoint, event_type: str | None, channel: str | None = None) -> bool:
    """Whether the endpoint would get a message of ``event_type`` on ``channel``, by the
    routing rule itself (``domain/routing.py``); a filter left empty matches any."""
    if event_type is not None and not endpoint_accepts(
        endpoint.event_types, None, event_type, None
    ):
        return False
    return channel is None or endpoint_accepts(None, endpoint.channels, "", (channel,))


def shown_payload(payload: bytes | None) -> str | None:
    """The payload indented for reading, or cut at ``PAYLOAD_SHOWN_BYTES``; None once
    expunged."""
    if payload is None:
        return None
    if len(payload) > PAYLOAD_SHOWN_BYTES:
        cut = payload[:PAYLOAD_SHOWN_BYTES].decode(errors="replace")
        return f"{cut}\n… (cut at {PAYLOAD_SHOWN_BYTES} of {len(payload)} bytes)"
    try:
        return orjson.dumps(orjson.loads(payload), option=orjson.OPT_INDENT_2).decode()
    except orjson.JSONDecodeError:
        return payload.decode(errors="replace")


def grace_hours(value: Any) -> int:
    """The overlap window of a rotation, in whole hours from 0 to 168."""
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        return DEFAULT_GRACE_HOURS
    if not text.isdigit() or int(text) > MAX_GRACE_HOURS:
        raise InvalidRequest(
            f"The old secret's overlap must be 0 to {MAX_GRACE_HOURS} hours",
            loc=("body", "graceHours"),
        )
    return int(text)
