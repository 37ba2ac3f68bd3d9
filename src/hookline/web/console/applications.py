"""Managing applications and their endpoints from the console.

Every change goes through the operations layer with the session's principal, so the rules
are the API's and the audit log names the session. A refused form is shown again with the
operations' message beside the field it is about (``web.forms.errors_of``) and changes
nothing; a change that succeeds redirects to the screen that shows it.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hookline.domain.errors import Conflict, HooklineError, InvalidRequest
from hookline.domain.models import Application, Endpoint
from hookline.domain.operational import OPERATIONAL_APP_ID
from hookline.operations import applications, endpoints, event_types
from hookline.operations.applications import ApplicationPatch, NewApplication
from hookline.storage.base import MAX_LIST_LIMIT, ListQuery
from hookline.web.console.base import PREFIX, ConsolePages, Visit, field_errors
from hookline.web.forms import EndpointForm, FieldErrors, errors_of

APPS = PREFIX + "/applications"
APPS_PER_PAGE = 50


def rate_limit(text: str) -> int | None:
    """The rate-limit field: empty for none, else a whole number (its range is the
    operations' rule)."""
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise InvalidRequest(
            "The rate limit must be a whole number of messages per second, or empty",
            loc=("body", "throttleRate"),
        ) from None


class Applications(ConsolePages):
    def routes(self) -> list[Route]:
        one = APPS + "/{app_id}"
        pages = [
            ("GET", APPS, self.list),
            ("POST", APPS, self.create),
            ("GET", one, self.show),
            ("POST", one, self.update),
            ("GET", one + "/delete", self.confirm_delete),
            ("POST", one + "/delete", self.delete),
            ("GET", one + "/endpoints/new", self.new_endpoint),
            ("POST", one + "/endpoints", self.create_endpoint),
            ("GET", one + "/endpoints/{endpoint_id}", self.edit_endpoint),
            ("POST", one + "/endpoints/{endpoint_id}", self.update_endpoint),
        ]
        return [Route(path, self.guarded(h), methods=[m]) for m, path, h in pages]

    # Applications ----------------------------------------------------------------------

    async def list(self, request: Request, visit: Visit) -> Response:
        return await self._list(request, visit, {}, FieldErrors())

    async def _list(
        self,
        request: Request,
        visit: Visit,
        form: dict[str, str],
        errors: FieldErrors,
        status: int = 200,
    ) -> Response:
        iterator = request.query_params.get("iterator") or None
        query = ListQuery(limit=APPS_PER_PAGE, iterator=iterator)
        page = await applications.list_applications(self._ops, visit.principal, query)
        shown = [app for app in page.data if app.id != OPERATIONAL_APP_ID]
        return self.page(
            request,
            visit.session,
            "console/applications.html",
            status=status,
            apps=shown,
            next_page=None if page.done else page.iterator,
            first_page=iterator is None,
            form=form,
            errors=errors,
            notice=request.query_params.get("notice"),
        )

    async def create(self, request: Request, visit: Visit) -> Response:
        form = {k: visit.text(k) for k in ("name", "uid", "throttleRate")}
        try:
            new = NewApplication(
                name=form["name"],
                uid=form["uid"] or None,
                throttle_rate=rate_limit(form["throttleRate"]),
            )
            app, _ = await applications.create(self._ops, visit.principal, new)
        except (InvalidRequest, Conflict) as exc:
            return await self._list(request, visit, form, errors_of_app(exc), status=422)
        return self.see_other(f"{APPS}/{app.id}", notice="Application created.")

    async def show(self, request: Request, visit: Visit) -> Response:
        app = await applications.resolve(self._ops, visit.principal, request.path_params["app_id"])
        return await self._show(request, visit, app, None, FieldErrors())

    async def _show(
        self,
        request: Request,
        visit: Visit,
        app: Application,
        form: dict[str, str] | None,
        errors: FieldErrors,
        status: int = 200,
    ) -> Response:
        found = await endpoints.list_shown(
            self._ops, visit.principal, app.id, ListQuery(limit=MAX_LIST_LIMIT)
        )
        if form is None:
            form = {
                "name": app.name,
                "uid": app.uid or "",
                "throttleRate": "" if app.throttle_rate is None else str(app.throttle_rate),
            }
        return self.page(
            request,
            visit.session,
            "console/application.html",
            status=status,
            app=app,
            endpoints=found.data,
            more_endpoints=not found.done,
            form=form,
            errors=errors,
            notice=request.query_params.get("notice"),
        )

    async def update(self, request: Request, visit: Visit) -> Response:
        app = await applications.resolve(self._ops, visit.principal, request.path_params["app_id"])
        form = {k: visit.text(k) for k in ("name", "uid", "throttleRate")}
        try:
            changes = ApplicationPatch(
                name=form["name"],
                uid=form["uid"] or None,
                throttle_rate=rate_limit(form["throttleRate"]),
            )
            await applications.patch(self._ops, visit.principal, app.id, changes)
        except (InvalidRequest, Conflict) as exc:
            return await self._show(request, visit, app, form, errors_of_app(exc), status=422)
        return self.see_other(f"{APPS}/{app.id}", notice="Application saved.")

    async def confirm_delete(self, request: Request, visit: Visit) -> Response:
        app = await applications.resolve(self._ops, visit.principal, request.path_params["app_id"])
        return self.page(
            request,
            visit.session,
            "console/confirm.html",
            title=f"Delete application {app.name}?",
            warning=(
                "Its endpoints, messages and attempts are deleted with it, and its portal "
                "links stop working. This cannot be undone."
            ),
            action=f"{APPS}/{app.id}/delete",
            button="Delete application",
            back=f"{APPS}/{app.id}",
        )

    async def delete(self, request: Request, visit: Visit) -> Response:
        key = request.path_params["app_id"]
        await applications.delete(self._ops, visit.principal, key)
        return self.see_other(APPS, notice="Application deleted.")

    # Endpoints -------------------------------------------------------------------------

    async def new_endpoint(self, request: Request, visit: Visit) -> Response:
        app = await applications.resolve(self._ops, visit.principal, request.path_params["app_id"])
        return await self._endpoint_form(request, visit, app, None, EndpointForm(), FieldErrors())

    async def create_endpoint(self, request: Request, visit: Visit) -> Response:
        app = await applications.resolve(self._ops, visit.principal, request.path_params["app_id"])
        form = EndpointForm.posted(visit.form)
        try:
            await endpoints.create(self._ops, visit.principal, app.id, form.fields())
        except InvalidRequest as exc:
            return await self._endpoint_form(
                request, visit, app, None, form, errors_of(exc), status=422
            )
        return self.see_other(f"{APPS}/{app.id}", notice="Endpoint created.")

    async def edit_endpoint(self, request: Request, visit: Visit) -> Response:
        ops, who = self._ops, visit.principal
        app = await applications.resolve(ops, who, request.path_params["app_id"])
        found = await endpoints.get(ops, who, app.id, request.path_params["endpoint_id"])
        form = EndpointForm.of(found)
        return await self._endpoint_form(request, visit, app, found, form, FieldErrors())

    async def update_endpoint(self, request: Request, visit: Visit) -> Response:
        ops, who = self._ops, visit.principal
        app = await applications.resolve(ops, who, request.path_params["app_id"])
        found = await endpoints.get(ops, who, app.id, request.path_params["endpoint_id"])
        form = EndpointForm.posted(visit.form)
        try:
            await endpoints.patch(ops, who, app.id, found.id, form.patch())
        except InvalidRequest as exc:
            return await self._endpoint_form(
                request, visit, app, found, form, errors_of(exc), status=422
            )
        return self.see_other(f"{APPS}/{app.id}", notice="Endpoint saved.")

    async def _endpoint_form(
        self,
        request: Request,
        visit: Visit,
        app: Application,
        existing: Endpoint | None,
        form: EndpointForm,
        errors: FieldErrors,
        status: int = 200,
    ) -> Response:
        catalog = await event_types.list_event_types(
            self._ops, visit.principal, ListQuery(limit=MAX_LIST_LIMIT)
        )
        return self.page(
            request,
            visit.session,
            "console/endpoint_form.html",
            status=status,
            app=app,
            existing=existing,
            form=form,
            errors=errors,
            catalog=catalog.data,
        )


_APP_FIELDS = ("name", "uid", "throttleRate")


def errors_of_app(exc: HooklineError) -> FieldErrors:
    return field_errors(exc, _APP_FIELDS)
