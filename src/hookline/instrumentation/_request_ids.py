"""The id of the API request being handled, for every log line written while it is.

The API sets it once per request (``api/app.py``) in a context variable, which asyncio
copies into the tasks a request starts, so a line logged anywhere below the handler (an
operation, a hook that hears ``MessageAccepted`` inline) carries it without any function
passing it on. ``RequestIdFilter`` puts it on each record as ``request_id``, which a JSON
line carries as a field and a text line appends.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar

REQUEST_ID: ContextVar[str | None] = ContextVar("hookline_request_id", default=None)


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` to records written while a request is handled (never drops one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        request_id = REQUEST_ID.get()
        if request_id is not None and not hasattr(record, "request_id"):
            record.request_id = request_id
        return True


class TextFormatter(logging.Formatter):
    """The text layout, with `` request_id=…`` at the end of a line written during a request."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        request_id = getattr(record, "request_id", None)
        return line if request_id is None else f"{line} request_id={request_id}"
