"""Who may call the token-bearing routes, and how often: the API's abuse limits.

Checked by ``HooklineApp`` on every route that needs a token, in this order:

1. the address allowlist (``HOOKLINE_API_ALLOW_NETWORKS``): 403 from anywhere else;
2. the address's failed authentications (``HOOKLINE_API_AUTH_FAILURE_RATE``): an address
   past its budget gets 429 *before* its token is looked at, whatever the token, so a
   guesser learns nothing from the answer and cannot go faster than the budget;
3. the address's requests (``HOOKLINE_API_ADDRESS_RATE``, off by default);
4. after authentication, the token's own networks (``allowedNetworks``): 403 from an
   address outside them, counted as a failed authentication of that address, since the
   request was refused for its credentials (a stolen token tried from elsewhere is then
   slowed like a guess);
5. the token's requests (``HOOKLINE_API_TOKEN_RATE`` for application-scoped tokens,
   ``HOOKLINE_API_ADMIN_RATE`` for admin ones).

Every address is the client as ``_client`` in ``api/app.py`` resolved it: the connection's
peer, or the client a proxy listed in ``HOOKLINE_TRUSTED_PROXIES`` names.

The counts live in this process (``domain/throttle.py``): with several processes or
replicas each keeps its own, so the limits multiply by their number.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Sequence

from hookline.api.http import Response, error_response
from hookline.config import Settings
from hookline.domain.networks import Network, admits
from hookline.domain.throttle import Rate, Throttle, address_key
from hookline.operations.principal import Principal


class ApiLimits:
    def __init__(
        self,
        *,
        allow_networks: Sequence[Network] = (),
        token_rate: Rate | None = None,
        admin_rate: Rate | None = None,
        address_rate: Rate | None = None,
        auth_failure_rate: Rate | None = None,
    ) -> None:
        self._allow = tuple(allow_networks)
        self._tokens = None if token_rate is None else Throttle(token_rate)
        self._admins = None if admin_rate is None else Throttle(admin_rate)
        self._addresses = None if address_rate is None else Throttle(address_rate)
        self._failures = None if auth_failure_rate is None else Throttle(auth_failure_rate)

    @classmethod
    def from_settings(cls, settings: Settings) -> ApiLimits:
        burst = settings.api_burst_seconds
        return cls(
            allow_networks=settings.api_allow_networks,
            token_rate=Rate.of(settings.api_token_rate, burst),
            admin_rate=Rate.of(settings.api_admin_rate, burst),
            address_rate=Rate.of(settings.api_address_rate, burst),
            auth_failure_rate=Rate.of(settings.api_auth_failure_rate, burst),
        )

    def before_auth(self, client: str | None, now: float) -> Response | None:
        """The refusal of a request from ``client`` before its token is read, or None."""
        if self._allow and not admits(self._allow, client):
            return error_response(
                403,
                "address_not_allowed",
                "This address may not use the API (HOOKLINE_API_ALLOW_NETWORKS)",
            )
        if client is None:
            return None
        key = address_key(client)
        if self._failures is not None:
            wait = self._failures.wait(key, now)
            if wait > 0:
                return too_many(wait, "Too many failed authentications from this address")
        if self._addresses is not None:
            wait = self._addresses.take(key, now)
            if wait > 0:
                return too_many(wait, "Too many requests from this address")
        return None

    def auth_failed(self, client: str | None, now: float) -> None:
        """Count a request from ``client`` whose token was missing, unknown or expired."""
        if self._failures is not None and client is not None:
            self._failures.charge(address_key(client), now)

    def after_auth(self, principal: Principal, client: str | None, now: float) -> Response | None:
        """The refusal of an authenticated request from outside its token's networks or
        over its token's rate, or None."""
        if principal.networks is not None and not admits(principal.networks, client):
            self.auth_failed(client, now)
            return error_response(
                403,
                "token_address_not_allowed",
                f"This token may not be used from {_shown(client)}: the address is outside "
                "the token's allowedNetworks (docs/security.md)",
            )
        throttle = self._admins if principal.is_admin else self._tokens
        if throttle is None or principal.token_id is None:
            return None
        wait = throttle.take(principal.token_id, now)
        if wait > 0:
            return too_many(wait, "Too many requests with this token")
        return None


def too_many(wait: float, reason: str) -> Response:
    """429 with the whole seconds to wait, in ``Retry-After`` and in the message."""
    seconds = max(1, math.ceil(wait))
    response = error_response(
        429, "rate_limited", f"{reason}; retry after {seconds} s (docs/security.md)"
    )
    response.headers.append((b"retry-after", str(seconds).encode()))
    return response


def _shown(client: str | None) -> str:
    """The client's address for an error message, only if it is one: the caller learns
    what the server saw (behind a proxy, whether it was trusted), and nothing else."""
    try:
        ipaddress.ip_address(client or "")
    except ValueError:
        return "an unknown address"
    return str(client)
