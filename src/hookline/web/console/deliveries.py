"""Deliveries and failures from the console: find a delivery among every application's,
see why it failed, send it again; and the failure groups, acknowledged, resolved or
replayed whole after seeing how many deliveries a replay would send.

The search is the API's (``operations/deliveries.py``, docs/search.md): the form's fields are
its filters and its ``q`` terms. A delivery's screen lists its attempts with the receiver's
answers. Every change is a POST with the session's CSRF token, through the operations, so it
is audited under the console session.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hookline.domain.errors import InvalidRequest
from hookline.domain.failure_groups import GroupFilter, GroupStatus
from hookline.domain.models import MessageStatus
from hookline.operations import attempts, failure_groups, messages
from hookline.operations.deliveries import DeliveryQuery, search
from hookline.storage.base import AttemptFilter, ListQuery
from hookline.web.console.base import PREFIX, ConsolePages, Visit
from hookline.web.forms import PERIODS, period

DELIVERIES = PREFIX + "/deliveries"
FAILURES = PREFIX + "/failures"
PAGE = 50
STATUSES = {"fail": MessageStatus.FAIL, "pending": MessageStatus.PENDING}
STATUSES |= {"success": MessageStatus.SUCCESS, "sending": MessageStatus.SENDING}
GROUP_STATUSES = {status.value: status for status in GroupStatus}
ATTEMPTS_SHOWN = 20


class Deliveries(ConsolePages):
    def routes(self) -> list[Route]:
        one = DELIVERIES + "/{app_id}/{msg_id}/{endpoint_id}"
        group = FAILURES + "/{app_id}/{group_id}"
        pages = [
            ("GET", DELIVERIES, self.list_deliveries),
            ("GET", one, self.show_delivery),
            ("POST", one + "/resend", self.resend),
            ("GET", FAILURES, self.list_failures),
            ("POST", group + "/acknowledge", self.acknowledge),
            ("POST", group + "/resolve", self.resolve),
            ("GET", group + "/replay", self.confirm_replay),
            ("POST", group + "/replay", self.replay),
        ]
        return [Route(path, self.guarded(h), methods=[m]) for m, path, h in pages]

    # Deliveries ------------------------------------------------------------------------

    async def list_deliveries(self, request: Request, visit: Visit) -> Response:
        """Newest first; the form's values stay in the query, so a search is a link."""
        given = {
            name: (request.query_params.get(name) or "").strip()
            for name in ("q", "app", "status", "since", "iterator")
        }
        status = given["status"]
        if status and status not in STATUSES:
            raise InvalidRequest(f"Unknown status {status!r}", loc=("query", "status"))
        since = given["since"]
        query = DeliveryQuery(
            application=given["app"] or None,
            status=STATUSES.get(status),
            after=None if not since else self._ops.clock() - period(since),
            q=given["q"] or None,
            limit=PAGE,
            iterator=given["iterator"] or None,
        )
        found = await search(self._ops, visit.principal, query)
        more = {k: v for k, v in given.items() if k != "iterator" and v}
        return self.page(
            request,
            visit.session,
            "console/deliveries.html",
            rows=found.data,
            given=given,
            statuses=STATUSES,
            periods=PERIODS,
            next_page=None if found.done else {**more, "iterator": found.iterator},
        )

    async def show_delivery(self, request: Request, visit: Visit) -> Response:
        """A delivery's message and its newest attempts to that endpoint: each status code
        and the receiver's answer (or why there was none), which is why it failed."""
        app_id, msg_id, endpoint_id = (
            request.path_params[name] for name in ("app_id", "msg_id", "endpoint_id")
        )
        found = await messages.get(self._ops, visit.principal, app_id, msg_id)
        tried = await attempts.list_by_message(
            self._ops,
            visit.principal,
            app_id,
            found.id,
            ListQuery(limit=ATTEMPTS_SHOWN, descending=True),
            AttemptFilter(endpoint_id=endpoint_id),
        )
        return self.page(
            request,
            visit.session,
            "console/delivery.html",
            message=found,
            endpoint_id=endpoint_id,
            attempts=tried.data,
            notice=request.query_params.get("notice"),
        )

    async def resend(self, request: Request, visit: Visit) -> Response:
        app_id, msg_id, endpoint_id = (
            request.path_params[name] for name in ("app_id", "msg_id", "endpoint_id")
        )
        await attempts.resend(self._ops, visit.principal, app_id, msg_id, endpoint_id)
        return self.see_other(
            f"{DELIVERIES}/{app_id}/{msg_id}/{endpoint_id}", notice="Resend queued."
        )

    # Failure groups --------------------------------------------------------------------

    async def list_failures(self, request: Request, visit: Visit) -> Response:
        """Open and acknowledged groups first by default; ``status`` shows one kind."""
        wanted = (request.query_params.get("status") or "").strip()
        if wanted and wanted not in GROUP_STATUSES:
            raise InvalidRequest(f"Unknown status {wanted!r}", loc=("query", "status"))
        iterator = request.query_params.get("iterator") or None
        found = await failure_groups.list_all(
            self._ops,
            visit.principal,
            ListQuery(limit=PAGE, iterator=iterator, descending=True),
            GroupFilter(status=GROUP_STATUSES.get(wanted)),
        )
        return self.page(
            request,
            visit.session,
            "console/failures.html",
            groups=found.data,
            shown=wanted,
            statuses=GROUP_STATUSES,
            next_page=None if found.done else found.iterator,
            notice=request.query_params.get("notice"),
        )

    async def acknowledge(self, request: Request, visit: Visit) -> Response:
        app_id, group_id = request.path_params["app_id"], request.path_params["group_id"]
        await failure_groups.acknowledge(self._ops, visit.principal, app_id, group_id)
        return self.see_other(FAILURES, notice=f"Failure group {group_id} acknowledged.")

    async def resolve(self, request: Request, visit: Visit) -> Response:
        app_id, group_id = request.path_params["app_id"], request.path_params["group_id"]
        await failure_groups.resolve(self._ops, visit.principal, app_id, group_id)
        return self.see_other(FAILURES, notice=f"Failure group {group_id} resolved.")

    async def confirm_replay(self, request: Request, visit: Visit) -> Response:
        """How many deliveries the replay would send, before it starts (its dry run)."""
        app_id, group_id = request.path_params["app_id"], request.path_params["group_id"]
        count = await failure_groups.replay_count(self._ops, visit.principal, app_id, group_id)
        return self.page(
            request,
            visit.session,
            "console/confirm.html",
            title=f"Replay failure group {group_id}?",
            warning=(
                f"{count} failed deliver{'y' if count == 1 else 'ies'} of this group would be "
                "sent again, as a background task you can follow and cancel."
            ),
            action=f"{FAILURES}/{app_id}/{group_id}/replay",
            button=f"Send {count} again",
            back=FAILURES,
        )

    async def replay(self, request: Request, visit: Visit) -> Response:
        app_id, group_id = request.path_params["app_id"], request.path_params["group_id"]
        task = await failure_groups.replay(self._ops, visit.principal, app_id, group_id)
        return self.see_other(FAILURES, notice=f"Replay started as background task {task.id}.")
