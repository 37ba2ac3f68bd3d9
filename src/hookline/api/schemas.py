"""Request and response bodies in Svix's wire format (camelCase JSON).

Field names, types and limits follow the Svix v1 OpenAPI document so the official SDKs
work unchanged; where hookline is stricter it says so in docs/api-compatibility.md.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar
from urllib.parse import urlsplit

from pydantic import AfterValidator, AliasChoices, BaseModel, ConfigDict, Field, computed_field
from pydantic.alias_generators import to_camel

from hookline.domain.policy import ApplicationPolicy, EndpointPolicy

T = TypeVar("T")

ID_PATTERN = r"^[a-zA-Z0-9\-_.]+$"
Uid = Annotated[str, Field(min_length=1, max_length=256, pattern=ID_PATTERN)]
EventTypeName = Annotated[str, Field(min_length=1, max_length=256, pattern=ID_PATTERN)]
Channel = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[a-zA-Z0-9\-_.:]+$")]
OrderingKey = Annotated[str, Field(min_length=1, max_length=256, pattern=r"^[a-zA-Z0-9\-_.:]+$")]
"""A hookline field: on an ordered endpoint, order is kept per key (docs/delivery.md)."""
MAX_GRACE_PERIOD_SECONDS = 7 * 24 * 3600


def _check_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError("must be an absolute http:// or https:// URL with a host")
    return value


EndpointUrl = Annotated[str, Field(min_length=1, max_length=65536), AfterValidator(_check_url)]


def _check_endpoint_policy(value: dict[str, Any]) -> dict[str, Any]:
    EndpointPolicy.from_json(value)  # a PolicyError is a ValueError: a 422 naming the field
    return value


def _check_application_policy(value: dict[str, Any]) -> dict[str, Any]:
    ApplicationPolicy.from_json(value)
    return value


EndpointPolicyWire = Annotated[dict[str, Any], AfterValidator(_check_endpoint_policy)]
"""hookline's ``policy`` field (docs/delivery.md): retry, breaker, ordering, fallback."""
ApplicationPolicyWire = Annotated[dict[str, Any], AfterValidator(_check_application_policy)]


class Wire(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True
    )


# -- requests ------------------------------------------------------------------------


class ApplicationIn(Wire):
    name: str = Field(min_length=1, max_length=256)
    uid: Uid | None = None
    throttle_rate: int | None = Field(default=None, ge=1)
    metadata: dict[str, str] = Field(default_factory=dict)
    policy: ApplicationPolicyWire | None = None


class ApplicationPatch(Wire):
    name: str | None = Field(default=None, min_length=1, max_length=256)
    uid: Uid | None = None
    throttle_rate: int | None = Field(default=None, ge=1)
    metadata: dict[str, str] | None = None
    policy: ApplicationPolicyWire | None = None


class EventTypeUpdate(Wire):
    description: str
    archived: bool = False
    deprecated: bool = False
    schemas: dict[str, Any] | None = None
    group_name: str | None = None
    feature_flags: list[str] | None = None


class EventTypeIn(EventTypeUpdate):
    name: EventTypeName


class EventTypePatch(Wire):
    description: str | None = None
    archived: bool | None = None
    deprecated: bool | None = None
    schemas: dict[str, Any] | None = None
    group_name: str | None = None
    feature_flags: list[str] | None = None


class EndpointUpdate(Wire):
    url: EndpointUrl
    description: str = ""
    throttle_rate: int | None = Field(default=None, ge=1)
    uid: Uid | None = None
    disabled: bool = False
    event_types: list[EventTypeName] | None = Field(
        default=None, validation_alias=AliasChoices("eventTypes", "filterTypes"), min_length=1
    )
    channels: list[Channel] | None = Field(default=None, min_length=1, max_length=10)
    metadata: dict[str, str] = Field(default_factory=dict)
    policy: EndpointPolicyWire | None = None


class EndpointIn(EndpointUpdate):
    secret: str | None = None
    headers: dict[str, str] | None = None


class EndpointPatch(Wire):
    url: EndpointUrl | None = None
    description: str | None = None
    throttle_rate: int | None = Field(default=None, ge=1)
    uid: Uid | None = None
    disabled: bool | None = None
    event_types: list[EventTypeName] | None = Field(
        default=None, validation_alias=AliasChoices("eventTypes", "filterTypes")
    )
    channels: list[Channel] | None = Field(default=None, max_length=10)
    metadata: dict[str, str] | None = None
    policy: EndpointPolicyWire | None = None


class EndpointSecretRotateIn(Wire):
    key: str | None = None
    grace_period_seconds: int = Field(default=24 * 3600, ge=0, le=MAX_GRACE_PERIOD_SECONDS)


class EndpointHeadersIn(Wire):
    headers: dict[str, str]


class EndpointHeadersPatchIn(Wire):
    headers: dict[str, str] = Field(default_factory=dict)
    delete_headers: list[str] | None = None


class RecoverIn(Wire):
    since: datetime
    until: datetime | None = None


class EventExampleIn(Wire):
    event_type: EventTypeName
    example_index: int = Field(default=0, ge=0)


class MessageIn(Wire):
    event_type: EventTypeName
    payload: dict[str, Any]
    event_id: Uid | None = None
    channels: list[Channel] | None = Field(default=None, min_length=1, max_length=10)
    tags: list[str] | None = Field(default=None, max_length=5)
    application: ApplicationIn | None = None
    payload_retention_period: int | None = Field(default=None, ge=1, le=90)
    payload_retention_hours: int | None = Field(default=None, ge=1, le=2160)
    deliver_at: datetime | None = None
    ordering_key: OrderingKey | None = None


class AppPortalAccessIn(Wire):
    application: ApplicationIn | None = None
    expiry: int = Field(default=7 * 24 * 3600, ge=3600, le=7 * 24 * 3600)
    read_only: bool | None = None
    capabilities: list[str] | None = None
    feature_flags: list[str] | None = None
    session_id: str | None = None


# -- responses -----------------------------------------------------------------------


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

    @computed_field  # type: ignore[prop-decorator]
    @property
    def filter_types(self) -> list[str] | None:
        """The same list under Svix's older name, read by pre-2.0 SDKs."""
        return self.event_types


class EndpointSecretOut(Wire):
    key: str


class EndpointHeadersOut(Wire):
    headers: dict[str, str]
    sensitive: list[str]


class EndpointStatsOut(Wire):
    success: int
    pending: int
    sending: int
    fail: int
    canceled: int


class MessageOut(Wire):
    id: str
    event_type: str
    event_id: str | None
    payload: dict[str, Any]
    channels: list[str] | None
    tags: list[str] | None
    timestamp: datetime
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


class RecoverOut(Wire):
    id: str
    status: str
    task: str
    updated_at: datetime


class AppPortalAccessOut(Wire):
    url: str
    token: str


class HealthOut(Wire):
    status: str
    database: str


class HttpErrorOut(Wire):
    code: str
    detail: str
