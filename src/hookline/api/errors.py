"""HTTP-only failures and the mapping of every ``HooklineError`` to a status code."""

from __future__ import annotations

from pydantic import ValidationError

from hookline.api.http import Response, error_response, json_response
from hookline.domain.errors import HooklineError, InvalidRequest, status_of


class PayloadTooLarge(HooklineError):
    """The request body is larger than HOOKLINE_MAX_PAYLOAD_BYTES allows."""

    code = "payload_too_large"


class IncompleteBody(HooklineError):
    """The request body ended before its Content-Length: the client went away, or was cut
    off by HOOKLINE_BODY_TIMEOUT. Nothing was done; the answer usually finds no one."""

    code = "incomplete_body"


class NotImplementedRoute(HooklineError):
    """This Svix API operation is not implemented by hookline yet."""

    code = "not_implemented"


HTTP_STATUS_BY_ERROR: tuple[tuple[type[HooklineError], int], ...] = (
    (PayloadTooLarge, 413),
    (IncompleteBody, 400),
    (NotImplementedRoute, 501),
)
"""The API's own errors; the domain's are in ``domain.errors.STATUS_BY_ERROR``."""


def hookline_error_response(exc: HooklineError) -> Response:
    if isinstance(exc, InvalidRequest):
        return invalid_field(list(exc.loc), exc.detail)
    status = status_of(exc)
    if status is None:
        status = next((s for cls, s in HTTP_STATUS_BY_ERROR if isinstance(exc, cls)), 500)
    return error_response(status, exc.code, exc.detail)


def validation_error_response(exc: ValidationError, location: str = "body") -> Response:
    """FastAPI's 422 shape, which Svix and its SDKs use: ``{"detail": [{loc, msg, type}]}``."""
    detail = [
        {"loc": [location, *err["loc"]], "msg": err["msg"], "type": err["type"]}
        for err in exc.errors(include_url=False, include_context=False, include_input=False)
    ]
    return json_response(422, {"detail": detail})


def invalid_field(location: list[str | int], msg: str, kind: str = "value_error") -> Response:
    return json_response(422, {"detail": [{"loc": location, "msg": msg, "type": kind}]})
