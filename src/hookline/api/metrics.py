"""``GET /metrics``: Prometheus' text format, without a token, like ``/health``.

A scraper seldom carries a bearer token, and the figures hold no id, secret or payload
(labels are bounded enums); an operator who wants them private turns them off
(``HOOKLINE_METRICS=false``) or keeps the path from the outside at the proxy
(docs/observability.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from hookline.api.http import Access, Request, Response, Route, error_response
from hookline.operations.context import Operations

PATH = "/metrics"


def routes(exposition: Callable[[], bytes] | None) -> list[Route]:
    async def scrape(ops: Operations, request: Request) -> Response:
        if exposition is None:
            return error_response(404, "not_found", "metrics are off (HOOKLINE_METRICS=false)")
        # The scrape reads every process's files: small, but off the event loop all the same.
        body = await asyncio.to_thread(exposition)
        return Response(200, body, [(b"content-type", CONTENT_TYPE_PLAIN_0_0_4.encode())])

    return [Route("GET", PATH, scrape, "Prometheus metrics (text format)", "Health", Access.PUBLIC)]
