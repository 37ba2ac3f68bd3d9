"""How log lines are written: text for a terminal (the default), or one JSON object a line
(``HOOKLINE_LOG_FORMAT=json``) for a log pipeline.

A JSON line has ``time`` (ISO 8601, UTC), ``level``, ``logger`` and ``message``, and the
fields a line was logged with (``extra=``: the ids and status code of an attempt line,
``LoggingHook``), and ``request_id`` on a line written while an API request was handled
(``_request_ids.py``). python-json-logger writes them; uvicorn's own lines reach the same handler
(``server.uvicorn_logging``). What a line may hold is said in ``_logging.py``: never a
payload, a secret, a header value or a token.
"""

from __future__ import annotations

import logging

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

from hookline.instrumentation._request_ids import RequestIdFilter, TextFormatter

TEXT = "text"
JSON = "json"
LOG_FORMATS = (TEXT, JSON)
TEXT_LAYOUT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_NOT_FIELDS = (*RESERVED_ATTRS, "color_message")
"""Record attributes that are not fields of a line: the standard ones, and the copy of the
message with terminal colour codes that uvicorn attaches to some of its lines."""


def json_formatter() -> logging.Formatter:
    """One JSON object a line: time, level, logger, message and the line's own fields."""
    return JsonFormatter(
        ["levelname", "name", "message"],
        rename_fields={"levelname": "level", "name": "logger"},
        reserved_attrs=_NOT_FIELDS,
        timestamp="time",
    )


def configure_logging(log_format: str) -> None:
    """Send the process's log lines, at INFO and above, to stderr in ``log_format``."""
    handler = logging.StreamHandler()
    formatter = json_formatter() if log_format == JSON else TextFormatter(TEXT_LAYOUT)
    handler.setFormatter(formatter)
    handler.addFilter(RequestIdFilter())
    logging.basicConfig(level=logging.INFO, handlers=[handler])
