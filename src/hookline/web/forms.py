"""The endpoint form: what a browser posts, turned into the operations' inputs, and the
operations' refusals turned back into messages beside the fields they are about.

The form parses only what HTML cannot say in types (a number, one header per line, a
comma-separated list); every rule about the values is the operations layer's, the one the
API applies, so the portal cannot accept what the API refuses or refuse what it accepts.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import parse_qsl

from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request

from hookline.domain.errors import InvalidRequest
from hookline.domain.models import Endpoint
from hookline.domain.policy import EndpointPolicy, OrderingPolicy, PolicyError, RetryPolicy
from hookline.domain.validation import CHANNEL_CHARACTERS, MAX_CHANNEL_LENGTH, MAX_CHANNELS
from hookline.operations.endpoints import EndpointFields, EndpointPatch

MAX_FORM_BYTES = 65536
"""A form is a few fields a person typed: anything larger is not one of ours."""
FORM_TYPE = "application/x-www-form-urlencoded"
FIELDS = (
    *("url", "description", "eventTypes", "channels", "rateLimit", "headers", "disabled"),
    *("retrySchedule", "ordering"),
)
ORDERING_CHOICES = {"": "Any order", "skip": "In order, skipping", "hold": "In order, holding"}
"""The ordering select's values: none, or ``policy.ordering.onExhausted`` (docs/delivery.md)."""
_FIELD_OF_LOC = {"throttleRate": "rateLimit", "filterTypes": "eventTypes"}
_CHANNEL = re.compile(rf"[{CHANNEL_CHARACTERS}]{{1,{MAX_CHANNEL_LENGTH}}}")


async def posted_form(request: Request) -> FormData:
    """The fields of a form htmx posted (urlencoded, as htmx sends a form without files),
    read with a cap; parsed with the standard library, so the pages need no multipart
    parser."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in ("", FORM_TYPE):
        raise InvalidRequest(f"A form must be sent as {FORM_TYPE}", loc=("body",))
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise InvalidRequest(f"A form may hold {MAX_FORM_BYTES} bytes at most")
    try:
        text = body.decode()
    except UnicodeDecodeError:
        raise InvalidRequest("A form must be UTF-8") from None
    fields: list[tuple[str, str | UploadFile]] = list(parse_qsl(text, keep_blank_values=True))
    return FormData(fields)


@dataclass(frozen=True, slots=True)
class EndpointForm:
    """The endpoint form's values, as typed (shown again beside an error)."""

    url: str = ""
    description: str = ""
    event_types: tuple[str, ...] = ()
    channels: str = ""
    rate_limit: str = ""
    headers: str = ""
    disabled: bool = False
    retry_schedule: str = ""
    """Seconds between attempts, comma-separated; ``none`` for no retries; empty inherits
    the application's or the service's schedule."""
    ordering: str = ""

    @classmethod
    def posted(cls, form: FormData) -> EndpointForm:
        def text(name: str) -> str:
            value = form.get(name)
            return value.strip() if isinstance(value, str) else ""

        return cls(
            url=text("url"),
            description=text("description"),
            event_types=tuple(v for v in form.getlist("eventTypes") if isinstance(v, str) and v),
            channels=text("channels"),
            rate_limit=text("rateLimit"),
            headers=text("headers"),
            disabled=form.get("disabled") is not None,
            retry_schedule=text("retrySchedule"),
            ordering=text("ordering"),
        )

    @classmethod
    def of(cls, endpoint: Endpoint) -> EndpointForm:
        """The fields every face's form shows, filled from the endpoint; a face with more
        (headers, retry schedule, ordering) adds them with ``dataclasses.replace``."""
        return cls(
            url=endpoint.url,
            description=endpoint.description,
            event_types=endpoint.event_types or (),
            channels=", ".join(endpoint.channels or ()),
            rate_limit="" if endpoint.throttle_rate is None else str(endpoint.throttle_rate),
            disabled=endpoint.disabled,
        )

    def fields(self) -> EndpointFields:
        """A new endpoint from the fields every face's form has."""
        return EndpointFields(
            url=self.url,
            description=self.description,
            throttle_rate=self.throttle_rate(),
            disabled=self.disabled,
            event_types=list(self.event_types) or None,
            channels=self.channel_list(),
        )

    def patch(self) -> EndpointPatch:
        """The change of those fields; the policy is left as it is unless a face that shows
        its parts sets it, so a form without them never clears them."""
        return EndpointPatch(
            url=self.url,
            description=self.description,
            throttle_rate=self.throttle_rate(),
            disabled=self.disabled,
            event_types=list(self.event_types) or None,
            channels=self.channel_list(),
        )

    @classmethod
    def of_policy(cls, policy: EndpointPolicy) -> tuple[str, str]:
        """The retry and ordering fields as an endpoint's policy fills them."""
        retry = policy.retry
        schedule = "" if retry is None or retry.schedule is None else _seconds_text(retry.schedule)
        ordering = "" if policy.ordering is None else policy.ordering.on_exhausted.value
        return schedule, ordering

    def policy(self, current: EndpointPolicy) -> EndpointPolicy:
        """``current`` with the form's retry schedule and ordering; its other parts (breaker,
        fallback, recovery, a maximum age) are not on the form and are kept. The domain's
        rules decide what a schedule may be, as for the API's ``policy``."""
        if self.ordering not in ORDERING_CHOICES:
            raise InvalidRequest("Choose an ordering from the list", loc=("body", "ordering"))
        kept_age = None if current.retry is None else current.retry.max_age_seconds
        retry: RetryPolicy | None = None
        if self.retry_schedule:
            try:
                retry = RetryPolicy.from_json(
                    {"schedule": self._delays(), "maxAgeSeconds": kept_age}
                )
            except PolicyError as exc:
                raise InvalidRequest(
                    str(exc).replace("policy.retry.schedule", "The retry schedule"),
                    loc=("body", "retrySchedule"),
                ) from None
        elif kept_age is not None:
            retry = RetryPolicy(max_age_seconds=kept_age)
        ordering = (
            None if not self.ordering else OrderingPolicy.from_json({"onExhausted": self.ordering})
        )
        return dataclasses.replace(current, retry=retry, ordering=ordering)

    def _delays(self) -> list[float]:
        if self.retry_schedule.lower() == "none":
            return []
        delays: list[float] = []
        for part in self.retry_schedule.split(","):
            try:
                delays.append(float(part.strip()))
            except ValueError:
                raise InvalidRequest(
                    f"{part.strip()!r} is not a number of seconds: write seconds separated by "
                    "commas (5, 300, 1800), or none for no retries",
                    loc=("body", "retrySchedule"),
                ) from None
        return delays

    def throttle_rate(self) -> int | None:
        if not self.rate_limit:
            return None
        try:
            return int(self.rate_limit)
        except ValueError:
            raise InvalidRequest(
                "The rate limit must be a whole number of messages per second, or empty",
                loc=("body", "rateLimit"),
            ) from None

    def channel_list(self) -> list[str] | None:
        names = [c.strip() for c in self.channels.split(",") if c.strip()]
        if len(names) > MAX_CHANNELS:
            raise InvalidRequest(f"At most {MAX_CHANNELS} channels", loc=("body", "channels"))
        for name in names:
            if not _CHANNEL.fullmatch(name):
                raise InvalidRequest(
                    f"Channel {name!r} may hold letters, digits and - _ . : only (1 to 128)",
                    loc=("body", "channels"),
                )
        return names or None

    def header_map(self) -> dict[str, str]:
        """``Name: value`` per line; the rules on names and values are the operations'."""
        found: dict[str, str] = {}
        for number, line in enumerate(self.headers.splitlines(), start=1):
            if not line.strip():
                continue
            name, colon, value = line.partition(":")
            if not colon or not name.strip():
                raise InvalidRequest(
                    f"Line {number} of the headers is not 'Name: value'",
                    loc=("body", "headers"),
                )
            found[name.strip()] = value.strip()
        return found


@dataclass
class FieldErrors:
    """Messages by form field; ``general`` holds those no field owns."""

    by_field: dict[str, str] = field(default_factory=dict)
    general: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.by_field or self.general)

    def get(self, name: str) -> str | None:
        return self.by_field.get(name)


def errors_of(exc: InvalidRequest) -> FieldErrors:
    """Where the operations' refusal belongs on the form: the field its ``loc`` names."""
    errors = FieldErrors()
    name = _field_of(exc.loc)
    if name is None:
        errors.general.append(exc.detail)
    else:
        errors.by_field[name] = exc.detail
    return errors


def _field_of(loc: Sequence[str | int]) -> str | None:
    if len(loc) < 2 or not isinstance(loc[1], str):
        return None
    name = _FIELD_OF_LOC.get(loc[1], loc[1])
    return name if name in FIELDS else None


def _seconds_text(delays: Sequence[float]) -> str:
    """A schedule as the form shows it: whole seconds without a decimal point."""
    if not delays:
        return "none"
    return ", ".join(str(int(d)) if d == int(d) else str(d) for d in delays)


PERIODS = {"1h": "Last hour", "24h": "Last 24 hours", "7d": "Last 7 days", "30d": "Last 30 days"}
"""The date presets of the pages' lists, as Svix's portal offers them."""


def period(preset: str) -> timedelta:
    """A date preset's length; anything but ``PERIODS``' keys is refused with a reason."""
    if preset not in PERIODS:
        raise InvalidRequest(
            f"Unknown period {preset!r}: use one of {', '.join(PERIODS)}", loc=("query", "since")
        )
    number, unit = int(preset[:-1]), preset[-1]
    return timedelta(hours=number) if unit == "h" else timedelta(days=number)
