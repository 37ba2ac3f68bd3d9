"""HTTP-only failures and the mapping of every ``HooklineError`` to a status code."""

from __future__ import annotations

from pydantic import ValidationError

from hookline.api.http import Response, error_response, json_response
from hookline.domain.errors import (
    Conflict,
    Forbidden,
    HooklineError,
    InvalidRequest,
    NotFound,
    Unauthorized,
    Unavailable,
)


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


STATUS_BY_ERROR: list[tuple[type[HooklineError], int]] = [
    (NotFound, 404),
    (Conflict, 409),
    (Unavailable, 503),
    (Unauthorized, 401),
    (Forbidden, 403),
    (PayloadTooLarge, 413),
    (IncompleteBody, 400),
    (NotImplementedRoute, 501),
]


def hookline_error_response(exc: HooklineError) -> Response:
    if isinstance(exc, InvalidRequest):
        return invalid_field(list(exc.loc), exc.detail)
    for cls, status in STATUS_BY_ERROR:
        if isinstance(exc, cls):
            return error_response(status, exc.code, exc.detail)
    return error_response(500, exc.code, exc.detail)


def validation_error_response(exc: ValidationError, location: str = "body") -> Response:
    """FastAPI's 422 shape, which Svix and its SDKs use: ``{"detail": [{loc, msg, type}]}``."""
    detail = [
        {"loc": [location, *err["loc"]], "msg": err["msg"], "type": err["type"]}
        for err in exc.errors(include_url=False, include_context=False, include_input=False)
    ]
    return json_response(422, {"detail": detail})


def invalid_field(location: list[str | int], msg: str, kind: str = "value_error") -> Response:
    return json_response(422, {"detail": [{"loc": location, "msg": msg, "type": kind}]})
