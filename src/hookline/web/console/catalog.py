"""The event catalog from the console: list, create, edit (with a JSON Schema editor) and
archive event types.

The schema editor is a textarea holding Svix's ``schemas`` object (``{"1": {…JSON Schema…}}``);
the form parses the JSON and the operations layer judges it (``event_types.check_fields``),
as it does the API's, so the console cannot store what the API would refuse.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hookline.domain.errors import Conflict, HooklineError, InvalidRequest
from hookline.domain.models import EventType
from hookline.operations import event_types
from hookline.operations.event_types import EventTypeFields, EventTypePatch
from hookline.storage.base import MAX_LIST_LIMIT, ListQuery
from hookline.web.console.base import PREFIX, ConsolePages, Visit, field_errors
from hookline.web.forms import FieldErrors

TYPES = PREFIX + "/event-types"
FIELDS = ("name", "description", "schemas", "groupName")
EXAMPLE_SCHEMA = {
    "1": {
        "type": "object",
        "properties": {"id": {"type": "string"}},
        "required": ["id"],
    }
}


def parsed_schemas(text: str) -> dict[str, Any] | None:
    """The editor's text as the ``schemas`` object: empty for none, else a JSON object of
    versions; anything else is refused beside the editor."""
    if not text.strip():
        return None
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        detail = f"The schemas are not valid JSON: {exc}"
        raise InvalidRequest(detail, loc=("body", "schemas")) from None
    if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
        raise InvalidRequest(
            'The schemas must be a JSON object of versions, as {"1": {"type": "object", …}}',
            loc=("body", "schemas"),
        )
    return value


def schemas_text(event_type: EventType) -> str:
    if not event_type.schemas:
        return ""
    return orjson.dumps(event_type.schemas, option=orjson.OPT_INDENT_2).decode()


class Catalog(ConsolePages):
    def routes(self) -> list[Route]:
        one = TYPES + "/{name}"
        pages = [
            ("GET", TYPES, self.list),
            ("POST", TYPES, self.create),
            ("GET", one, self.edit),
            ("POST", one, self.update),
            ("POST", one + "/archive", self.archive),
        ]
        return [Route(path, self.guarded(h), methods=[m]) for m, path, h in pages]

    async def list(self, request: Request, visit: Visit) -> Response:
        empty = {"name": "", "description": "", "schemas": "", "groupName": ""}
        return await self._list(request, visit, empty, FieldErrors())

    async def _list(
        self,
        request: Request,
        visit: Visit,
        form: dict[str, str],
        errors: FieldErrors,
        status: int = 200,
    ) -> Response:
        found = await event_types.list_event_types(
            self._ops, visit.principal, ListQuery(limit=MAX_LIST_LIMIT), include_archived=True
        )
        return self.page(
            request,
            visit.session,
            "console/event_types.html",
            status=status,
            types=found.data,
            more=not found.done,
            form=form,
            errors=errors,
            example=orjson.dumps(EXAMPLE_SCHEMA).decode(),
            notice=request.query_params.get("notice"),
        )

    async def create(self, request: Request, visit: Visit) -> Response:
        form = {name: visit.text(name) for name in FIELDS}
        form["schemas"] = _raw(visit, "schemas")
        try:
            fields = EventTypeFields(
                description=form["description"],
                schemas=parsed_schemas(form["schemas"]),
                group_name=form["groupName"] or None,
            )
            await event_types.create(self._ops, visit.principal, form["name"], fields)
        except (InvalidRequest, Conflict) as exc:
            return await self._list(request, visit, form, _errors(exc), status=422)
        return self.see_other(TYPES, notice=f"Event type {form['name']} created.")

    async def edit(self, request: Request, visit: Visit) -> Response:
        found = await event_types.get(self._ops, visit.principal, request.path_params["name"])
        form = {
            "description": found.description,
            "schemas": schemas_text(found),
            "groupName": found.group_name or "",
        }
        return self._edit(request, visit, found, form, FieldErrors())

    def _edit(
        self,
        request: Request,
        visit: Visit,
        found: EventType,
        form: dict[str, str],
        errors: FieldErrors,
        status: int = 200,
    ) -> Response:
        return self.page(
            request,
            visit.session,
            "console/event_type.html",
            status=status,
            event_type=found,
            form=form,
            errors=errors,
        )

    async def update(self, request: Request, visit: Visit) -> Response:
        found = await event_types.get(self._ops, visit.principal, request.path_params["name"])
        form = {name: visit.text(name) for name in FIELDS}
        form["schemas"] = _raw(visit, "schemas")
        try:
            changes = EventTypePatch(
                description=form["description"],
                schemas=parsed_schemas(form["schemas"]),
                group_name=form["groupName"] or None,
                archived=visit.form.get("archived") is not None,
            )
            await event_types.patch(self._ops, visit.principal, found.name, changes)
        except (InvalidRequest, Conflict) as exc:
            return self._edit(request, visit, found, form, _errors(exc), status=422)
        return self.see_other(TYPES, notice=f"Event type {found.name} saved.")

    async def archive(self, request: Request, visit: Visit) -> Response:
        name = request.path_params["name"]
        await event_types.delete(self._ops, visit.principal, name, expunge=False)
        return self.see_other(TYPES, notice=f"Event type {name} archived.")


def _raw(visit: Visit, name: str) -> str:
    value = visit.form.get(name)
    return value if isinstance(value, str) else ""


def _errors(exc: HooklineError) -> FieldErrors:
    return field_errors(exc, FIELDS)
