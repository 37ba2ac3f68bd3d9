"""The request head a delivery is sent with: which defaults go out, which caller headers
are refused, and who frames the body."""

from __future__ import annotations

import re
from collections.abc import Mapping

import hookline
from hookline.transport._target import Target

USER_AGENT = f"hookline/{hookline.__version__}"

# A control character in a header name or value would let it end early and start another
# (header injection); tab is allowed. The reason keeps aiohttp's words, which the transport
# gave before it was hookline's own.
FORBIDDEN_HEADER_CHARS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
FORBIDDEN_HEADER_REASON = (
    "ValueError: Forbidden control character detected in headers. "
    "Potential header injection attack."
)


def request_head(target: Target, headers: Mapping[str, str], length: int) -> bytes | str:
    """The request line and headers: each default the caller did not set (in any case),
    then the caller's. Framing is ours alone: a caller's Content-Length or
    Transfer-Encoding is not sent. A str is the reason the headers are refused."""
    host = target.host_header
    authorization = target.basic_auth()
    user_agent: str | None = USER_AGENT
    content_type: str | None = "application/json"
    lines: list[str] = []
    for name, value in headers.items():
        if FORBIDDEN_HEADER_CHARS.search(name) or FORBIDDEN_HEADER_CHARS.search(value):
            return FORBIDDEN_HEADER_REASON
        lower = name.lower()
        if lower == "user-agent":
            user_agent = None
        elif lower == "content-type":
            content_type = None
        elif lower == "host":
            host = ""
        elif lower == "authorization":
            authorization = None
        elif lower == "content-length" or lower == "transfer-encoding":
            continue
        value = value.strip(" \t")
        lines.append(f"{name}: {value}\r\n")
    head = [f"POST {target.path_query} HTTP/1.1\r\n"]
    if host:
        head.append(f"Host: {host}\r\n")
    if authorization is not None:
        head.append(f"Authorization: {authorization}\r\n")
    if user_agent is not None:
        head.append(f"User-Agent: {user_agent}\r\n")
    head.append("Accept: */*\r\n")
    if content_type is not None:
        head.append(f"Content-Type: {content_type}\r\n")
    head.append(f"Content-Length: {length}\r\n")
    head += lines
    head.append("\r\n")
    try:
        return "".join(head).encode("utf-8", "surrogateescape")
    except UnicodeEncodeError as exc:
        return f"invalid header: {exc}"
