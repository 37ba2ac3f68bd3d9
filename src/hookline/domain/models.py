"""The objects hookline stores and serves, as frozen values.

Storage backends build them from rows and the API turns them into Svix-shaped JSON;
nothing here knows about either, which keeps the rules testable without a database.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum
from typing import Any, Generic, TypeVar

from hookline.domain.breaker import CLOSED_VIEW, CircuitView
from hookline.domain.capabilities import ALL as ALL_CAPABILITIES
from hookline.domain.capabilities import Capability
from hookline.domain.endpoint_auth import EndpointAuth
from hookline.domain.networks import Network
from hookline.domain.policy import (
    NO_APPLICATION_POLICY,
    NO_ENDPOINT_POLICY,
    ApplicationPolicy,
    EndpointPolicy,
)
from hookline.domain.ratelimit import RateLimitState

T = TypeVar("T")


class MessageStatus(IntEnum):
    """Status of one (message, endpoint) delivery and of each attempt, numbered as Svix does."""

    SUCCESS = 0
    PENDING = 1
    FAIL = 2
    SENDING = 3
    CANCELED = 4

    @property
    def text(self) -> str:
        return self.name.lower()


class AttemptTrigger(IntEnum):
    """Why an attempt happened: the retry schedule or a person asking for a resend."""

    SCHEDULED = 0
    MANUAL = 1


@dataclass(frozen=True, slots=True)
class Application:
    id: str
    name: str
    uid: str | None
    throttle_rate: int | None
    metadata: dict[str, str]
    created_at: datetime
    updated_at: datetime
    version: int = 1
    """The version of the stored row this was read at; an update writes only that version."""
    policy: ApplicationPolicy = NO_APPLICATION_POLICY
    """Delivery policy for all its endpoints (``domain/policy.py``)."""


@dataclass(frozen=True, slots=True)
class EventType:
    name: str
    description: str
    archived: bool
    deprecated: bool
    schemas: dict[str, Any] | None
    group_name: str | None
    feature_flags: tuple[str, ...] | None
    created_at: datetime
    updated_at: datetime
    version: int = 1
    """The version of the stored row this was read at; an update writes only that version."""


@dataclass(frozen=True, slots=True)
class SigningKey:
    """One endpoint secret; ``expires_at`` is set once a rotation has replaced it."""

    secret: str
    expires_at: datetime | None = None

    def valid_at(self, now: datetime) -> bool:
        return self.expires_at is None or self.expires_at > now


@dataclass(frozen=True, slots=True)
class Endpoint:
    id: str
    app_id: str
    url: str
    uid: str | None
    description: str
    throttle_rate: int | None
    disabled: bool
    event_types: tuple[str, ...] | None
    channels: tuple[str, ...] | None
    metadata: dict[str, str]
    headers: dict[str, str]
    keys: tuple[SigningKey, ...]
    created_at: datetime
    updated_at: datetime
    version: int = 1
    """The version of the stored row this was read at; an update writes only that version."""
    policy: EndpointPolicy = NO_ENDPOINT_POLICY
    """Its own delivery policy, over its application's and the server's."""
    failing_since: datetime | None = None
    """Since when every attempt has failed (auto-disable), as last read; never written by an
    update of the endpoint. None when it last succeeded, or for an endpoint read for a claim."""
    app_throttle_rate: int | None = None
    """Its application's ``throttleRate``, where the worker reads it (claims, hand-overs)."""
    auth: EndpointAuth | None = None
    """Credentials presented to the receiver (HTTP Basic, OAuth2, mutual TLS;
    ``domain/endpoint_auth.py``), beyond custom headers; None for none."""

    @property
    def rate_limit(self) -> int | None:
        """Messages per second it may be sent: its own limit, else its application's."""
        return self.throttle_rate if self.throttle_rate is not None else self.app_throttle_rate

    @property
    def current_key(self) -> SigningKey:
        """The newest key: the one shown by ``GET …/secret``. Older ones only sign in grace."""
        return self.keys[0]

    def signing_secrets(self, now: datetime) -> tuple[str, ...]:
        return tuple(k.secret for k in self.keys if k.valid_at(now))


@dataclass(frozen=True, slots=True)
class Message:
    id: str
    app_id: str
    event_type: str
    event_id: str | None
    payload: bytes | None
    """The exact JSON bytes that are signed and sent; ``None`` once expunged."""
    channels: tuple[str, ...] | None
    tags: tuple[str, ...] | None
    timestamp: datetime
    expires_at: datetime | None = None
    deliver_at: datetime | None = None
    """Svix's ``deliverAt``: its deliveries are not attempted before then."""

    ordering_key: str | None = None
    """Keeps order per key on an ordered endpoint (``domain/ordering.py``); a hookline field."""

    trace_context: str | None = None
    """The W3C trace context its attempts join or forward (``domain/tracecontext.py``,
    ``stored_context``); never on the wire of the API."""

    @property
    def due_at(self) -> datetime:
        """When its deliveries first fall due: what a maximum age is counted from."""
        return self.timestamp if self.deliver_at is None else max(self.timestamp, self.deliver_at)


@dataclass(frozen=True, slots=True)
class Delivery:
    """The state of one message to one endpoint: the unit the worker claims."""

    id: str
    app_id: str
    msg_id: str
    endpoint_id: str
    status: MessageStatus
    attempt_count: int
    next_attempt_at: datetime | None
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Attempt:
    id: str
    app_id: str
    msg_id: str
    endpoint_id: str
    url: str
    status: MessageStatus
    response_status_code: int
    response: str
    response_duration_ms: int
    trigger: AttemptTrigger
    timestamp: datetime
    fallback_for: str | None = None
    """Set on an attempt at a fallback destination: the endpoint it stood in for."""


@dataclass(frozen=True, slots=True)
class ClaimedDelivery:
    """What a worker needs to make one attempt, read in the same step that leases it."""

    delivery_id: str
    lease_token: str
    attempt_count: int
    trigger: AttemptTrigger
    message: Message
    endpoint: Endpoint
    fallback_for: str | None = None
    """A delivery to a fallback destination: the endpoint it stands in for."""


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a cursor-paginated list, in Svix's ``ListResponse`` terms."""

    data: list[T]
    iterator: str | None
    prev_iterator: str | None
    done: bool


@dataclass(frozen=True, slots=True)
class EndpointStats:
    success: int = 0
    pending: int = 0
    sending: int = 0
    fail: int = 0
    canceled: int = 0
    rate_limit: RateLimitState | None = None
    """The endpoint's rate limit as it stands (``operations.endpoints.stats`` adds it)."""
    circuit: CircuitView = CLOSED_VIEW
    """The endpoint's circuit breaker now (a hookline field)."""


@dataclass(frozen=True, slots=True)
class AccessToken:
    """A stored bearer token: only its hash is kept; ``app_id`` scopes it to one application."""

    id: str
    token_hash: str
    app_id: str | None
    expires_at: datetime | None
    created_at: datetime
    name: str | None = None
    capabilities: frozenset[Capability] = ALL_CAPABILITIES
    """What a scoped token may do in its application (an admin token may do everything)."""
    session_id: str | None = None
    """The portal session it was issued for (``expire-all`` can pick tokens by session)."""
    configured: bool = False
    """The token of the ``HOOKLINE_ADMIN_TOKEN`` setting: replaced when the setting changes."""
    last_used_at: datetime | None = None
    """When it last authenticated a request, to within a minute."""
    allowed_networks: tuple[Network, ...] | None = None
    """The client networks it may be used from (``domain/networks.py``); None: any."""
