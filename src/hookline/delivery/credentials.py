"""An endpoint's credentials on the wire: HTTP Basic, an OAuth2 bearer token, a client
certificate (docs/security.md, "Endpoint authentication").

OAuth tokens are fetched from the endpoint's token URL through the worker's one transport,
so the SSRF guard, the operator's destination rules and the proxy apply to the token request
as to a delivery. A token is kept per endpoint, in this worker's memory only, until shortly
before it expires (``domain.endpoint_auth.usable_seconds``), and shared by every delivery of
that endpoint meanwhile; while one fetch is under way the others wait for it rather than
asking too (one fetch at a time per endpoint, however many deliveries fall due together).
A 401 from the receiver drops the token it was sent with, so the next attempt, under the
ordinary retry schedule, fetches a new one: one refresh per rejected token.

A failed fetch is an attempt failure (status 0) whose reason says what the token URL did;
it never raises and never carries the secret, the token or the token server's body.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from hookline.domain.endpoint_auth import (
    AccessToken,
    EndpointAuth,
    OAuthClient,
    token_from_response,
    with_authorization,
)
from hookline.transport import DEFAULT_OPTIONS, HttpResult, RequestOptions, TlsOptions, Transport

TOKEN_RESPONSE_LIMIT_BYTES = 64 * 1024
"""A token server's answer is read this far (a JWT access token is a few kilobytes)."""
MAX_ENDPOINTS_KEPT = 10_000
"""Endpoints whose tokens are kept; past it the longest-kept is let go (and fetched again
when next needed)."""
_TOKEN_OPTIONS = RequestOptions(max_response_bytes=TOKEN_RESPONSE_LIMIT_BYTES)


@dataclass(slots=True)
class _Kept:
    """One endpoint's token, or the fetch that will give it."""

    client: OAuthClient
    token: AccessToken | None = None
    good_until: float = 0.0
    fetch: asyncio.Task[AccessToken | str] | None = None


class TokenCache:
    """OAuth tokens by endpoint, for one worker."""

    def __init__(
        self, transport: Transport, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._transport = transport
        self._monotonic = monotonic
        self._kept: dict[str, _Kept] = {}

    async def token(
        self, endpoint_id: str, client: OAuthClient, timeout: float
    ) -> AccessToken | str:
        """The endpoint's token, fetched if there is none still good; or why there is none.
        Waits at most ``timeout`` seconds."""
        kept = self._kept.get(endpoint_id)
        if kept is None or kept.client != client:
            # Never seen, or its client credentials changed: an old token is not this one's.
            kept = _Kept(client)
            self._keep(endpoint_id, kept)
        elif kept.token is not None and self._monotonic() < kept.good_until:
            return kept.token
        if kept.fetch is None:
            kept.fetch = asyncio.create_task(self._fetch(kept, timeout))
        try:
            async with asyncio.timeout(timeout):
                return await asyncio.shield(kept.fetch)
        except TimeoutError:
            return f"no answer from the token URL within {timeout}s"

    def rejected(self, endpoint_id: str, token: AccessToken) -> None:
        """The receiver answered 401 to ``token``: fetch another next time. Deliveries that
        were sent the same token and rejected at the same time drop it only once."""
        kept = self._kept.get(endpoint_id)
        if kept is not None and kept.token is token:
            kept.token = None
            kept.good_until = 0.0

    def _keep(self, endpoint_id: str, kept: _Kept) -> None:
        self._kept.pop(endpoint_id, None)
        if len(self._kept) >= MAX_ENDPOINTS_KEPT:
            del self._kept[next(iter(self._kept))]
        self._kept[endpoint_id] = kept

    async def _fetch(self, kept: _Kept, timeout: float) -> AccessToken | str:
        asked = self._monotonic()
        try:
            body, headers = kept.client.token_request()
            result = await self._transport.post(
                kept.client.token_url, body, headers, timeout, _TOKEN_OPTIONS
            )
            if result.status_code == 0:
                found: AccessToken | str = result.error or "no answer from the token URL"
            else:
                found = token_from_response(result.status_code, result.body)
            if isinstance(found, AccessToken):
                kept.token = found
                kept.good_until = asked + found.usable_seconds
            return found
        finally:
            kept.fetch = None


def tls_options(auth: EndpointAuth | None) -> RequestOptions:
    """The request options an endpoint's mutual TLS asks for (the defaults without it)."""
    mtls = None if auth is None else auth.mtls
    if mtls is None:
        return DEFAULT_OPTIONS
    return RequestOptions(
        tls=TlsOptions(
            ca_bundle=mtls.server_ca,
            client_certificate=mtls.certificate,
            client_key=mtls.key,
        )
    )


class Credentials:
    """Sends a delivery with its endpoint's credentials, through ``transport``."""

    def __init__(
        self, transport: Transport, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._transport = transport
        self._monotonic = monotonic
        self.tokens = TokenCache(transport, monotonic)

    async def post(
        self,
        endpoint_id: str,
        auth: EndpointAuth,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
        timeout: float,
    ) -> HttpResult:
        """One attempt, held to ``timeout`` as a whole: a token fetch it needs counts
        against the same deadline as the delivery that follows."""
        options = tls_options(auth)
        if auth.basic is not None:
            headers = with_authorization(headers, auth.basic.header())
        if auth.oauth is None:
            return await self._transport.post(url, body, headers, timeout, options)
        started = self._monotonic()
        token = await self.tokens.token(endpoint_id, auth.oauth, timeout)
        waited = self._monotonic() - started
        if isinstance(token, str):
            return HttpResult(
                0, b"", f"OAuth token request failed: {token}", int(waited * 1000), None
            )
        left = round(timeout - waited, 3)
        if left <= 0:
            return HttpResult(0, b"", f"timeout after {timeout}s", int(waited * 1000), None)
        headers = with_authorization(headers, token.header())
        result = await self._transport.post(url, body, headers, left, options)
        if result.status_code == 401:
            self.tokens.rejected(endpoint_id, token)
        if waited >= 0.001:
            duration = result.duration_ms + int(waited * 1000)
            result = HttpResult(
                result.status_code, result.body, result.error, duration, result.retry_after
            )
        return result
