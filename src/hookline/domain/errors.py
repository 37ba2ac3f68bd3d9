"""One exception tree for rules that callers must react to.

    HooklineError
    ├── NotFound          → 404 not_found
    ├── Conflict          → 409 (code names the clash, e.g. event_type_exists)
    ├── InvalidRequest    → 400 / 422 (a rule about the input, not its shape)
    ├── Unauthorized      → 401 authentication_failed (no valid token)
    ├── Forbidden         → 403 forbidden (a valid token without the right)
    └── Unavailable       → 503 (the store cannot be reached; nothing was committed)

The class docstring is the default message; the API maps each class to a status.
"""

from __future__ import annotations


class HooklineError(Exception):
    """hookline could not do what was asked."""

    code = "error"

    def __init__(self, detail: str | None = None, *, code: str | None = None) -> None:
        self.detail = detail or (self.__doc__ or "").strip()
        if code is not None:
            self.code = code
        super().__init__(self.detail)


class NotFound(HooklineError):
    """Entity not found."""

    code = "not_found"


class Conflict(HooklineError):
    """The request clashes with something that already exists."""

    code = "conflict"


class InvalidRequest(HooklineError):
    """The request breaks a rule about its content."""

    code = "validation"

    def __init__(
        self, detail: str | None = None, *, loc: tuple[str | int, ...] = ("body",)
    ) -> None:
        super().__init__(detail)
        self.loc = loc


class Unauthorized(HooklineError):
    """Missing or invalid bearer token: send 'Authorization: Bearer <token>'."""

    code = "authentication_failed"


class Forbidden(HooklineError):
    """This token may not use this operation."""

    code = "forbidden"


class Unavailable(HooklineError):
    """The database cannot be reached right now; retry shortly."""

    code = "unavailable"


STATUS_BY_ERROR: tuple[tuple[type[HooklineError], int], ...] = (
    (NotFound, 404),
    (Conflict, 409),
    (InvalidRequest, 422),
    (Unavailable, 503),
    (Unauthorized, 401),
    (Forbidden, 403),
)
"""The HTTP status each face answers an error with (the JSON API, the pages), so a page and
the API never disagree on what a refusal is."""


def status_of(exc: HooklineError) -> int | None:
    """``exc``'s status in ``STATUS_BY_ERROR``; None for an error the face classes itself."""
    for cls, status in STATUS_BY_ERROR:
        if isinstance(exc, cls):
            return status
    return None
