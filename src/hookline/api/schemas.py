"""Request and response bodies in Svix's wire format (camelCase JSON).

Field names, types and limits follow the Svix v1 OpenAPI document so the official SDKs
work unchanged; where hookline is stricter it says so in docs/api-compatibility.md.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar, Generic, Literal, TypeVar

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    computed_field,
    model_validator,
)
from pydantic.alias_generators import to_camel

from hookline.domain import endpoint_auth as ea
from hookline.domain import validation as v
from hookline.domain.capabilities import Capability
from hookline.domain.headers import MAX_CUSTOM_HEADERS
from hookline.domain.policy import ApplicationPolicy, EndpointPolicy
from hookline.domain.validation import CHANNEL_CHARACTERS, MAX_CHANNEL_LENGTH, MAX_CHANNELS

T = TypeVar("T")

ID_PATTERN = v.KEY_PATTERN
Uid = Annotated[str, Field(min_length=1, max_length=v.MAX_KEY_LENGTH, pattern=ID_PATTERN)]
EventTypeName = Annotated[str, Field(min_length=1, max_length=v.MAX_KEY_LENGTH, pattern=ID_PATTERN)]
NAME_PATTERN = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$"
"""What ``check_name`` refuses (Unicode's control characters, Cc), for the document."""
DESCRIPTION_PATTERN = "^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f-\\u009f]*$"
"""What ``check_description`` refuses: the control characters but tab, CR and LF."""
Name = Annotated[
    str,
    Field(
        min_length=1,
        max_length=v.MAX_NAME_LENGTH,
        json_schema_extra={"pattern": NAME_PATTERN},
    ),
    AfterValidator(v.check_name),
]
"""A display name: no control characters or line breaks (``domain/validation.py``)."""
Description = Annotated[
    str,
    Field(max_length=v.MAX_DESCRIPTION_LENGTH, json_schema_extra={"pattern": DESCRIPTION_PATTERN}),
    AfterValidator(v.check_description),
]
_LAX_DATETIME = TypeAdapter(datetime)


def _parse_time(value: Any) -> Any:
    """ISO 8601 text to a datetime, parsed here because bodies are validated strictly
    (``api/params.py``), and strict pydantic takes no text for a datetime once a validator
    has seen it; numbers are left for the strict check to refuse."""
    if not isinstance(value, str):
        return value
    try:
        return _LAX_DATETIME.validate_python(v.check_time_text(value))
    except ValidationError:
        raise ValueError("must be an ISO 8601 date-time, like 2024-05-01T12:00:00Z") from None


Timestamp = Annotated[datetime, BeforeValidator(_parse_time), AfterValidator(v.check_time)]
"""An input date-time: read as UTC without an offset, between 1970 and 2099."""
Tag = Annotated[str, Field(min_length=1, max_length=v.MAX_TAG_LENGTH, pattern=v.TAG_PATTERN)]
ThrottleRate = Annotated[int, Field(ge=1, le=v.MAX_THROTTLE_RATE)]
"""Messages per second; a uint16, as Svix declares it."""
Headers = Annotated[dict[str, str], Field(max_length=MAX_CUSTOM_HEADERS)]
"""Custom headers; names and values follow RFC 9110 and their total size is capped
(``domain/headers.py``, checked by the operations with a 422 naming ``headers``)."""
Channel = Annotated[
    str,
    Field(min_length=1, max_length=MAX_CHANNEL_LENGTH, pattern=rf"^[{CHANNEL_CHARACTERS}]+$"),
]
OrderingKey = Annotated[str, Field(min_length=1, max_length=256, pattern=r"^[a-zA-Z0-9\-_.:]+$")]
"""A hookline field: on an ordered endpoint, order is kept per key (docs/delivery.md)."""
MAX_GRACE_PERIOD_SECONDS = 7 * 24 * 3600


EndpointUrl = Annotated[
    str,
    Field(min_length=1, max_length=v.MAX_URL_LENGTH, json_schema_extra={"format": "uri"}),
    AfterValidator(v.check_url),
]


def _check_json(value: dict[str, Any]) -> dict[str, Any]:
    problem = v.json_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


JsonObject = Annotated[dict[str, Any], AfterValidator(_check_json)]
"""Any JSON object whose numbers fit in 64 bits and are finite."""


def _check_endpoint_policy(value: dict[str, Any]) -> dict[str, Any]:
    EndpointPolicy.from_json(value)  # a PolicyError is a ValueError: a 422 naming the field
    return value


def _check_application_policy(value: dict[str, Any]) -> dict[str, Any]:
    ApplicationPolicy.from_json(value)
    return value


EndpointPolicyWire = Annotated[dict[str, Any], AfterValidator(_check_endpoint_policy)]
"""hookline's ``policy`` field (docs/delivery.md): retry, breaker, ordering, fallback,
recovery, traceContext, anomalies."""
ApplicationPolicyWire = Annotated[dict[str, Any], AfterValidator(_check_application_policy)]


class Wire(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True
    )
    empty_body_allowed: ClassVar[bool] = False
    """Whether an absent request body counts as ``{}`` (its fields all have defaults and
    Svix's SDKs send none); the OpenAPI document then marks the body optional."""


# -- requests ------------------------------------------------------------------------


class ThrottleRateIn(Wire):
    """A body with ``throttleRate``, which Svix also accepts as ``rateLimit`` (its older
    name, still sent by some SDKs): either may be given, both only if they agree."""

    @model_validator(mode="before")
    @classmethod
    def _rate_limit_alias(cls, data: Any) -> Any:
        if not isinstance(data, dict) or "rateLimit" not in data:
            return data
        data = dict(data)
        given = data.pop("rateLimit")
        if "throttleRate" in data and data["throttleRate"] != given:
            raise ValueError("throttleRate and rateLimit differ: send one of them")
        data["throttleRate"] = given
        return data


class ApplicationIn(ThrottleRateIn):
    name: Name
    uid: Uid | None = None
    throttle_rate: ThrottleRate | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    policy: ApplicationPolicyWire | None = None


class ApplicationPatch(ThrottleRateIn):
    name: Name | None = None
    uid: Uid | None = None
    throttle_rate: ThrottleRate | None = None
    metadata: dict[str, str] | None = None
    policy: ApplicationPolicyWire | None = None


FeatureFlags = Annotated[list[Uid], Field(min_length=1)]


class EventTypeUpdate(Wire):
    description: Description
    archived: bool = False
    deprecated: bool = False
    schemas: JsonObject | None = None
    group_name: Uid | None = None
    feature_flags: FeatureFlags | None = None


class EventTypeIn(EventTypeUpdate):
    name: EventTypeName


class EventTypePatch(Wire):
    description: Description | None = None
    archived: bool | None = None
    deprecated: bool | None = None
    schemas: JsonObject | None = None
    group_name: Uid | None = None
    feature_flags: FeatureFlags | None = None


class EndpointUpdate(ThrottleRateIn):
    url: EndpointUrl
    description: Description = ""
    throttle_rate: ThrottleRate | None = None
    uid: Uid | None = None
    disabled: bool = False
    event_types: list[EventTypeName] | None = Field(
        default=None, validation_alias=AliasChoices("eventTypes", "filterTypes"), min_length=1
    )
    channels: list[Channel] | None = Field(default=None, min_length=1, max_length=MAX_CHANNELS)
    metadata: dict[str, str] = Field(default_factory=dict)
    policy: EndpointPolicyWire | None = None


class EndpointIn(EndpointUpdate):
    secret: str | None = None
    headers: Headers | None = None


class EndpointPatch(ThrottleRateIn):
    url: EndpointUrl | None = None
    description: Description | None = None
    throttle_rate: ThrottleRate | None = None
    uid: Uid | None = None
    disabled: bool | None = None
    event_types: list[EventTypeName] | None = Field(
        default=None, validation_alias=AliasChoices("eventTypes", "filterTypes")
    )
    channels: list[Channel] | None = Field(default=None, max_length=MAX_CHANNELS)
    metadata: dict[str, str] | None = None
    policy: EndpointPolicyWire | None = None


class OperationalEndpointUpdate(Wire):
    """Svix's ``OperationalWebhookEndpointUpsertIn``: an endpoint without channels, whose
    filter names operational event types."""

    url: EndpointUrl
    description: Description = ""
    throttle_rate: ThrottleRate | None = None
    uid: Uid | None = None
    disabled: bool = False
    event_types: list[EventTypeName] | None = Field(
        default=None, validation_alias=AliasChoices("eventTypes", "filterTypes"), min_length=1
    )
    metadata: dict[str, str] = Field(default_factory=dict)


class OperationalEndpointIn(OperationalEndpointUpdate):
    """Svix's ``OperationalWebhookEndpointIn``."""

    secret: str | None = None
    headers: Headers | None = None


class EndpointSecretRotateIn(Wire):
    empty_body_allowed: ClassVar[bool] = True

    key: str | None = None
    grace_period_seconds: int = Field(default=24 * 3600, ge=0, le=MAX_GRACE_PERIOD_SECONDS)


class EndpointHeadersIn(Wire):
    headers: Headers


class EndpointHeadersPatchIn(Wire):
    headers: Headers = Field(default_factory=dict)
    delete_headers: list[Annotated[str, Field(max_length=256)]] | None = None
    """Not capped in number: deleting must stay possible from headers stored before the
    caps."""


class RecoverIn(Wire):
    since: Timestamp
    until: Timestamp | None = None


StatusCodeClass = Literal[0, 100, 200, 300, 400, 500]


class ReplayIn(Wire):
    since: Timestamp
    until: Timestamp | None = None


class BulkReplayIn(Wire):
    since: Timestamp
    until: Timestamp | None = None
    event_types: list[EventTypeName] | None = None
    channel: Channel | None = None
    tag: Tag | None = None
    status: Literal[0, 1, 2, 3, 4] | None = None
    status_code_class: StatusCodeClass | None = None


class DeadLetterRedriveIn(Wire):
    """hookline's own: which dead letters of the application to send again."""

    empty_body_allowed: ClassVar[bool] = True

    since: Timestamp | None = None
    until: Timestamp | None = None
    endpoint_id: Uid | None = None
    event_types: list[EventTypeName] | None = None
    status_code_class: StatusCodeClass | None = None


class ExpungeContentIn(Wire):
    """hookline's own: which messages of the application lose their payload (created in
    [since, until) and passing every filter given)."""

    since: Timestamp
    until: Timestamp | None = None
    event_types: list[EventTypeName] | None = None
    channel: Channel | None = None
    tag: Tag | None = None


class EventExampleIn(Wire):
    event_type: EventTypeName
    example_index: int = Field(default=0, ge=0)


class MessageIn(Wire):
    event_type: EventTypeName
    payload: dict[str, Any]
    event_id: Uid | None = None
    channels: list[Channel] | None = Field(default=None, min_length=1, max_length=MAX_CHANNELS)
    tags: list[Tag] | None = Field(default=None, max_length=5)
    application: ApplicationIn | None = None
    payload_retention_period: int | None = Field(default=None, ge=1, le=90)
    payload_retention_hours: int | None = Field(default=None, ge=1, le=2160)
    deliver_at: Timestamp | None = None
    ordering_key: OrderingKey | None = None


class AppPortalAccessIn(Wire):
    empty_body_allowed: ClassVar[bool] = True

    application: ApplicationIn | None = None
    expiry: int = Field(default=7 * 24 * 3600, ge=3600, le=7 * 24 * 3600)
    read_only: bool | None = None
    capabilities: list[Capability] | None = None
    feature_flags: list[str] | None = None
    session_id: str | None = None


class PortalBrandingIn(Wire):
    """An application's portal branding defaults: the link's parameters, by the same names
    (docs/portal.md, "Branding"); each left out keeps hookline's own look."""

    primary_color: str | None = None
    primary_color_dark: str | None = None
    font_family: str | None = None
    icon: str | None = None
    dark_mode: bool | Literal["auto"] | None = None
    hide_navigation: bool | None = None


# -- responses -----------------------------------------------------------------------


class PortalBrandingOut(PortalBrandingIn):
    pass


class ListResponse(Wire, Generic[T]):
    data: list[T]
    iterator: str | None
    prev_iterator: str | None = None
    done: bool


class ApplicationOut(Wire):
    id: str
    uid: str | None
    name: str
    throttle_rate: int | None
    metadata: dict[str, str]
    created_at: datetime
    updated_at: datetime
    policy: dict[str, Any]


class EventTypeOut(Wire):
    name: str
    description: str
    archived: bool
    deprecated: bool
    schemas: dict[str, Any] | None
    group_name: str | None
    feature_flags: list[str] | None
    created_at: datetime
    updated_at: datetime


class CircuitOut(Wire):
    """hookline's own: an endpoint's circuit breaker (docs/delivery.md)."""

    state: str
    consecutive_failures: int | None
    failure_ratio: float | None
    reason: str | None
    opened_at: datetime | None
    next_probe_at: datetime | None
    probing: bool


class EndpointOut(Wire):
    id: str
    uid: str | None
    url: str
    description: str
    throttle_rate: int | None
    disabled: bool
    event_types: list[str] | None
    channels: list[str] | None
    metadata: dict[str, str]
    created_at: datetime
    updated_at: datetime
    policy: dict[str, Any]
    failing_since: datetime | None = None
    """hookline: since when every attempt has failed (None after a success)."""
    disable_at: datetime | None = None
    """hookline: when auto-disable will disable the endpoint if nothing succeeds."""
    circuit: CircuitOut | None = None
    """Read-only; null in the answer to a PUT or PATCH (read the endpoint to see it)."""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def filter_types(self) -> list[str] | None:
        """The same list under Svix's older name, read by pre-2.0 SDKs."""
        return self.event_types

    @computed_field  # type: ignore[prop-decorator]
    @property
    def rate_limit(self) -> int | None:
        """``throttleRate`` under Svix's older name, which some SDKs read."""
        return self.throttle_rate


class EndpointSecretOut(Wire):
    key: str


class EndpointHeadersOut(Wire):
    headers: dict[str, str]
    sensitive: list[str]


class RateLimitOut(Wire):
    """hookline's view of an endpoint's rate limit (docs/delivery.md, "Rate limits")."""

    limit: int | None
    source: str | None
    current_rate: float | None
    recovers_at: datetime | None


class EndpointStatsOut(Wire):
    success: int
    pending: int
    sending: int
    fail: int
    canceled: int
    rate_limit: RateLimitOut | None = None
    """A hookline field: the limit that applies, and any slowdown a receiver asked for."""
    circuit: CircuitOut


class AttemptOutcomesOut(Wire):
    """A hookline field: attempts by how they ended (docs/observability.md, "Statistics")."""

    status_2xx: int = Field(alias="2xx")
    status_3xx: int = Field(alias="3xx")
    status_4xx: int = Field(alias="4xx")
    status_5xx: int = Field(alias="5xx")
    timeout: int
    connection: int
    dns: int
    tls: int
    ssrf_blocked: int = Field(alias="ssrfBlocked")
    other: int


class AttemptLatencyOut(Wire):
    """A hookline field: attempt durations, from the rollups' buckets (each figure the upper
    edge of the bucket holding that percentile; null with no attempts)."""

    p50_ms: int | None
    p90_ms: int | None
    p99_ms: int | None
    mean_ms: float | None


class EndpointAttemptStatsOut(Wire):
    success: int
    fail: int
    canceled: int
    """Always 0: hookline cancels no attempt (Svix counts attempts it cancelled)."""
    outcomes: AttemptOutcomesOut
    latency: AttemptLatencyOut
    payload_bytes: int
    """A hookline field: the bytes of the payloads sent, over the attempts that had one."""


class MessageOut(Wire):
    id: str
    event_type: str
    event_id: str | None
    payload: dict[str, Any]
    channels: list[str] | None
    tags: list[str] | None
    timestamp: datetime
    deliver_at: datetime | None = None
    ordering_key: str | None = None
    """A hookline field (``orderingKey``): the message's ordering key, if it has one."""


class MessageAttemptOut(Wire):
    id: str
    msg_id: str
    endpoint_id: str
    url: str
    response: str
    response_status_code: int
    response_duration_ms: int
    status: int
    status_text: str
    trigger_type: int
    timestamp: datetime
    msg: MessageOut | None = None
    fallback_for: str | None = None
    """hookline's own: set on an attempt at a fallback destination, the id of the endpoint
    it stood in for (docs/delivery.md, "Fallback destinations")."""


class EndpointMessageOut(MessageOut):
    status: int
    status_text: str
    next_attempt: datetime | None
    held: bool = False
    """A hookline field: this delivery holds its ordered endpoint's line (docs/delivery.md)."""


class MessageEndpointOut(Wire):
    id: str
    uid: str | None
    url: str
    description: str
    throttle_rate: int | None
    disabled: bool
    event_types: list[str] | None
    channels: list[str] | None
    created_at: datetime
    updated_at: datetime
    status: int
    status_text: str
    next_attempt: datetime | None
    held: bool = False
    """A hookline field: this delivery holds the endpoint's ordered line (docs/delivery.md)."""


class BackgroundTaskOut(Wire):
    id: str
    status: str
    task: str
    updated_at: datetime
    data: dict[str, Any]


class AppUsageStatsIn(Wire):
    since: Timestamp
    until: Timestamp
    app_ids: list[Uid] | None = Field(default=None, max_length=1000)
    """Application ids or uids; none for every application with attempts in the range."""


class AppUsageStatsOut(Wire):
    id: str
    status: str
    task: str
    updated_at: datetime
    unresolved_app_ids: list[str]


class AggregateEventTypesOut(Wire):
    id: str
    status: str
    task: str
    updated_at: datetime


class DryRunOut(Wire):
    """hookline's own: what a task would queue, counted without changing anything."""

    task: str
    count: int
    dry_run: bool = True


class DeadLetterOut(Wire):
    """hookline's own: a delivery that failed and has no attempt left."""

    id: str
    msg_id: str
    endpoint_id: str
    event_type: str
    channels: list[str] | None
    tags: list[str] | None
    timestamp: datetime
    attempt_count: int
    last_status_code: int | None
    failed_at: datetime


class AuditEntryOut(Wire):
    """hookline's own: one change in the audit log (docs/security.md, "Audit log")."""

    id: str
    timestamp: datetime
    actor: str = Field(description="The token id that acted, or `cli`, `system`, `admin`")
    address: str | None = Field(description="The API client's address; null off the API")
    action: str = Field(description="A stable dotted name, such as `endpoint.updated`")
    app_id: str | None
    target_id: str | None
    summary: dict[str, Any] = Field(
        description="What changed: field names and counts, never a secret or header value"
    )


class AnomalyOut(Wire):
    """hookline's own: what anomaly detection found (docs/observability.md, "Anomaly
    detection")."""

    id: str
    kind: str = Field(description="`failure_spike`, `latency_shift` or `volume_drop`")
    scope: str = Field(description="`endpoint`, or `application` for the whole application")
    app_id: str
    endpoint_id: str | None
    detected_at: datetime
    last_seen_at: datetime = Field(description="The last pass that found the rule holding")
    resolved_at: datetime | None = Field(description="Null while the anomaly is open")
    observed: float = Field(description="What the last window showed, in `unit`")
    expected: float = Field(description="The baseline, in `unit`")
    unit: str = Field(description="`ratio` (failed share), `ms` (median) or `per_minute`")
    baseline: str = Field(
        description="`daily` (the same hour on past days) or `recent` (the last day)"
    )
    description: str


class AppPortalAccessOut(Wire):
    url: str
    token: str


class HealthOut(Wire):
    """Readiness (docs/observability.md, "Health"): 200 while the database answers, 503
    when it does not; workers and backlog are reported, never judged."""

    status: str = Field(description="`ok`, or `unavailable` when a check failed")
    database: str = Field(description="`ok` or `down`")
    failing: list[str] = Field(description="The checks that failed: empty, or `database`")
    detail: str | None = Field(description="Why the database is down; null when it is up")
    live_workers: int | None = Field(
        description="Workers that heartbeated within HOOKLINE_STALL_TIMEOUT; null when the "
        "database is down"
    )
    backlog_age_seconds: float | None = Field(
        description="How long the oldest due delivery of an enabled endpoint has waited (0: "
        "none is due); null when the database is down"
    )


class BacklogOut(Wire):
    """The due backlog and its drain forecast (docs/observability.md, "Backlog"), from this
    process's latest background sample."""

    due: int = Field(
        description="Deliveries of enabled endpoints that are due and not being attempted"
    )
    oldest_due_at: datetime | None = Field(
        description="When the longest-waiting of them fell due; null when none is due"
    )
    oldest_due_age_seconds: float = Field(description="How long it had waited when sampled")
    drain: Literal["empty", "draining", "stalled", "unknown"] = Field(
        description="`empty`: nothing is due; `draining`: the backlog shrinks, see "
        "`drainSeconds`; `stalled`: it is not shrinking; `unknown`: too few samples yet"
    )
    drain_seconds: float | None = Field(
        description="Forecast seconds until the backlog clears at its rate over the last five "
        "minutes; null unless `drain` is `draining`"
    )
    forecast: str = Field(description="The forecast in words")
    live_workers: int
    disabled_endpoints: int
    open_breakers: int = Field(description="Endpoints whose breaker is open or half-open")
    sampled_at: datetime


class PingOut(Wire):
    status: str


class EmptyOut(Wire):
    """An empty object: the answer to a resend, as Svix's."""


class HttpErrorOut(Wire):
    code: str
    detail: str


class ValidationErrorItem(Wire):
    loc: list[str | int]
    msg: str
    type: str


class HttpValidationErrorOut(Wire):
    """A 422: every field that broke a rule, FastAPI's shape, which Svix and its SDKs use."""

    detail: list[ValidationErrorItem]


# -- endpoint authentication (docs/security.md, "Endpoint authentication") -----------------


class EndpointOauthConfigIn(Wire):
    """Svix's ``EndpointOauthConfigIn``. hookline supports the client credentials grant
    with ``clientSecretBasic`` or ``clientSecretPost``; an audience or resource goes in
    ``extraParams``, as with Svix."""

    auth_method: Literal["clientSecretBasic", "clientSecretPost"]
    client_id: str = Field(min_length=1, max_length=ea.MAX_CLIENT_ID_LENGTH)
    client_secret: str | None = Field(default=None, max_length=ea.MAX_CLIENT_SECRET_LENGTH)
    grant_type: Literal["clientCredentials"]
    token_url: EndpointUrl
    scopes: list[Annotated[str, Field(min_length=1, max_length=ea.MAX_SCOPE_LENGTH)]] | None = (
        Field(default=None, max_length=ea.MAX_SCOPES)
    )
    extra_params: dict[str, str] | None = Field(default=None, max_length=ea.MAX_EXTRA_PARAMS)
    jwt_params: dict[str, Any] | None = None
    """Svix's, for ``clientSecretJwt``: refused (not supported)."""
    refresh_token: str | None = None
    """Svix's, for the ``refreshToken`` grant: refused (not supported)."""

    @model_validator(mode="after")
    def _unsupported(self) -> EndpointOauthConfigIn:
        if self.jwt_params is not None:
            raise ValueError("jwtParams is not supported: hookline has no clientSecretJwt")
        if self.refresh_token is not None:
            raise ValueError("refreshToken is not supported: hookline has no refreshToken grant")
        return self


class EndpointOauthConfigOut(Wire):
    """Svix's ``EndpointOauthConfigOut``: never the client secret."""

    auth_method: str
    client_id: str
    extra_params: dict[str, str] | None
    grant_type: str
    scopes: list[str] | None
    token_url: str


class EndpointMtlsConfigIn(Wire):
    """Svix's ``EndpointMtlsConfigIn``; hookline also takes ``serverCaCert`` alone (trust a
    private CA without presenting a certificate)."""

    identity: str | None = Field(default=None, max_length=ea.MAX_IDENTITY_LENGTH)
    """A PEM private key (unencrypted) and the certificate it belongs to, then its chain."""
    server_ca_cert: str | None = Field(default=None, max_length=ea.MAX_CA_BUNDLE_LENGTH)
    """PEM certificates trusted for the receiver instead of the system's."""


class ClientCertificateOut(Wire):
    """hookline: what may be shown of the client certificate (never its key)."""

    subject: str
    issuer: str
    not_before: datetime
    not_after: datetime
    fingerprint_sha256: str


class EndpointMtlsConfigOut(Wire):
    """Svix's ``EndpointMtlsConfigOut``, with the client certificate's summary (hookline)."""

    server_ca_cert: str | None
    client_certificate: ClientCertificateOut | None = None


class EndpointBasicAuthIn(Wire):
    """hookline: HTTP Basic credentials sent with every attempt (Svix has no such route)."""

    username: str = Field(min_length=1, max_length=ea.MAX_USERNAME_LENGTH)
    password: str = Field(max_length=ea.MAX_PASSWORD_LENGTH)


class EndpointBasicAuthOut(Wire):
    """hookline: never the password."""

    username: str


class DeliveryOut(Wire):
    """hookline's own: one delivery of the operator's search (docs/search.md): a
    message to one endpoint."""

    id: str
    app_id: str
    msg_id: str
    endpoint_id: str
    event_type: str
    status: int = Field(description="0 success, 1 pending, 2 fail, 3 sending")
    status_text: str
    attempt_count: int
    last_status_code: int | None = Field(
        description="The HTTP status of the latest attempt (0: no answer); null before one"
    )
    next_attempt: datetime | None
    updated_at: datetime
    timestamp: datetime = Field(description="When the message was created")
