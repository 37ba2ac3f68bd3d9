"""Tokens and operational webhooks from the console.

A new token's plaintext is shown once, on the answer to the form that created it (never in
a URL, a redirect or a log line); the list shows only what the store keeps: ids, names,
scopes, expiry and last use. Console sessions are tokens too (``console_sessions``): they
are listed, and revoking one signs its browser out.
"""

from __future__ import annotations

from datetime import timedelta

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hookline.domain.errors import Conflict, HooklineError, InvalidRequest
from hookline.operations import applications, operational_webhooks, tokens
from hookline.operations.endpoints import EndpointFields
from hookline.operations.tokens import IssuedToken, TokenRequest
from hookline.storage.base import MAX_LIST_LIMIT, ListQuery
from hookline.web.console.base import PREFIX, ConsolePages, Visit, field_errors
from hookline.web.forms import FieldErrors

TOKENS = PREFIX + "/tokens"
HOOKS = PREFIX + "/operational-webhooks"
TOKEN_FIELDS = ("name", "app", "expiresInDays")
HOOK_FIELDS = ("url", "description", "filterTypes")
MAX_TOKEN_DAYS = 3650


def expiry(text: str) -> timedelta | None:
    """Days from now, a whole number from 1, or empty for a token that never expires."""
    if not text:
        return None
    if not text.isdigit() or not 1 <= int(text) <= MAX_TOKEN_DAYS:
        raise InvalidRequest(
            f"The expiry is a whole number of days from 1 to {MAX_TOKEN_DAYS}, or empty",
            loc=("body", "expiresInDays"),
        )
    return timedelta(days=int(text))


class Access(ConsolePages):
    def routes(self) -> list[Route]:
        pages = [
            ("GET", TOKENS, self.list_tokens),
            ("POST", TOKENS, self.create_token),
            ("GET", TOKENS + "/{token_id}/revoke", self.confirm_revoke),
            ("POST", TOKENS + "/{token_id}/revoke", self.revoke),
            ("GET", HOOKS, self.list_hooks),
            ("POST", HOOKS, self.create_hook),
            ("GET", HOOKS + "/{endpoint_id}/delete", self.confirm_delete_hook),
            ("POST", HOOKS + "/{endpoint_id}/delete", self.delete_hook),
        ]
        return [Route(path, self.guarded(h), methods=[m]) for m, path, h in pages]

    # Tokens ----------------------------------------------------------------------------

    async def list_tokens(self, request: Request, visit: Visit) -> Response:
        return await self._tokens(request, visit, {}, FieldErrors())

    async def _tokens(
        self,
        request: Request,
        visit: Visit,
        form: dict[str, str],
        errors: FieldErrors,
        *,
        issued: IssuedToken | None = None,
        status: int = 200,
    ) -> Response:
        ops, who = self._ops, visit.principal
        found = sorted(await tokens.list_tokens(ops, who), key=lambda t: t.id, reverse=True)
        apps = await applications.list_applications(ops, who, ListQuery(limit=MAX_LIST_LIMIT))
        return self.page(
            request,
            visit.session,
            "console/tokens.html",
            status=status,
            tokens=found,
            apps={app.id: app for app in apps.data},
            form=form,
            errors=errors,
            issued=issued,
            own=who.token_id,
            notice=request.query_params.get("notice"),
        )

    async def create_token(self, request: Request, visit: Visit) -> Response:
        form = {name: visit.text(name) for name in TOKEN_FIELDS}
        try:
            wanted = TokenRequest(
                app_key=form["app"] or None,
                name=form["name"] or None,
                expires_in=expiry(form["expiresInDays"]),
            )
            issued = await tokens.create_token(self._ops, visit.principal, wanted)
        except (InvalidRequest, Conflict) as exc:
            errors = field_errors(exc, TOKEN_FIELDS)
            return await self._tokens(request, visit, form, errors, status=422)
        return await self._tokens(request, visit, {}, FieldErrors(), issued=issued, status=201)

    async def confirm_revoke(self, request: Request, visit: Visit) -> Response:
        found = await tokens.get_token(self._ops, visit.principal, request.path_params["token_id"])
        own = found.id == visit.principal.token_id
        return self.page(
            request,
            visit.session,
            "console/confirm.html",
            title=f"Revoke token {found.name or found.id}?",
            warning=(
                "This is the session you are using: revoking it signs you out."
                if own
                else "Every request with it is refused from now on. This cannot be undone."
            ),
            action=f"{TOKENS}/{found.id}/revoke",
            button="Revoke token",
            back=TOKENS,
        )

    async def revoke(self, request: Request, visit: Visit) -> Response:
        token_id = request.path_params["token_id"]
        await tokens.revoke_token(self._ops, visit.principal, token_id)
        return self.see_other(TOKENS, notice=f"Token {token_id} revoked.")

    # Operational webhooks --------------------------------------------------------------

    async def list_hooks(self, request: Request, visit: Visit) -> Response:
        return await self._hooks(request, visit, {}, FieldErrors())

    async def _hooks(
        self,
        request: Request,
        visit: Visit,
        form: dict[str, str],
        errors: FieldErrors,
        status: int = 200,
    ) -> Response:
        found = await operational_webhooks.list_endpoints(
            self._ops, visit.principal, ListQuery(limit=MAX_LIST_LIMIT)
        )
        return self.page(
            request,
            visit.session,
            "console/operational_webhooks.html",
            status=status,
            hooks=found.data,
            form=form,
            errors=errors,
            notice=request.query_params.get("notice"),
        )

    async def create_hook(self, request: Request, visit: Visit) -> Response:
        form = {name: visit.text(name) for name in HOOK_FIELDS}
        types = [t.strip() for t in form["filterTypes"].split(",") if t.strip()]
        try:
            fields = EndpointFields(
                url=form["url"], description=form["description"], event_types=types or None
            )
            await operational_webhooks.create(self._ops, visit.principal, fields)
        except (InvalidRequest, Conflict) as exc:
            return await self._hooks(request, visit, form, _hook_errors(exc), status=422)
        return self.see_other(HOOKS, notice="Operational webhook endpoint created.")

    async def confirm_delete_hook(self, request: Request, visit: Visit) -> Response:
        found = await operational_webhooks.get(
            self._ops, visit.principal, request.path_params["endpoint_id"]
        )
        return self.page(
            request,
            visit.session,
            "console/confirm.html",
            title=f"Delete the operational webhook to {found.url}?",
            warning="hookline stops telling it about disabled endpoints and exhausted messages.",
            action=f"{HOOKS}/{found.id}/delete",
            button="Delete endpoint",
            back=HOOKS,
        )

    async def delete_hook(self, request: Request, visit: Visit) -> Response:
        key = request.path_params["endpoint_id"]
        await operational_webhooks.delete(self._ops, visit.principal, key)
        return self.see_other(HOOKS, notice="Operational webhook endpoint deleted.")


def _hook_errors(exc: HooklineError) -> FieldErrors:
    return field_errors(exc, HOOK_FIELDS)
