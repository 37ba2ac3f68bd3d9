"""Settings from ``HOOKLINE_*`` environment variables, each mirrored by a CLI flag.

This is the one place configuration is read, so every knob is documented and typed once
(see docs/configuration.md). Secrets never appear in ``repr``.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import timedelta
from ipaddress import IPv4Network, IPv6Network
from typing import Any
from urllib.parse import urlsplit

from hookline.domain.keyring import KeyRing, parse_key_ring
from hookline.domain.retention import DEFAULT_RETENTION, parse_retention
from hookline.domain.retry import DEFAULT_SCHEDULE, RetrySchedule, parse_schedule
from hookline.domain.signing import HeaderStyle
from hookline.domain.ssrf import PortRange, parse_networks, parse_ports
from hookline.instrumentation import LOG_FORMATS, TRACINGS

ENV_PREFIX = "HOOKLINE_"


class ConfigError(ValueError):
    """A setting has a value hookline cannot use; the message names the variable."""


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise ValueError("must be greater than 0")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError("must be greater than 0")
    return value


def _cap(text: str) -> int | None:
    """A count, or 0 for no limit."""
    value = int(text)
    if value < 0:
        raise ValueError("must be 0 (no limit) or more")
    return value or None


def _ratio(text: str) -> float:
    value = float(text)
    if not 0 < value <= 1:
        raise ValueError("must be greater than 0 and at most 1")
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise ValueError("must be between 0 and 65535")
    return value


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError("must be true or false")


def _networks(text: str) -> tuple[IPv4Network | IPv6Network, ...]:
    return parse_networks(text)


def _ports(text: str) -> tuple[PortRange, ...]:
    return parse_ports(text)


def _path(text: str) -> str | None:
    """A file path; empty is none (so an environment can unset it)."""
    return text.strip() or None


MAX_METRICS_APPLICATIONS = 100
"""Each application named adds a dozen series per process: a list, not a label for all."""


def _applications(text: str) -> tuple[str, ...]:
    """Application ids or uids, comma-separated, each once; empty is none."""
    names = tuple(dict.fromkeys(name.strip() for name in text.split(",") if name.strip()))
    if len(names) > MAX_METRICS_APPLICATIONS:
        raise ValueError(
            f"names {len(names)} applications; at most {MAX_METRICS_APPLICATIONS} get series "
            "of their own (anomaly detection watches every application)"
        )
    return names


def _proxy_url(text: str) -> str | None:
    """``http://[user:password@]host:port``, checked now so a typo stops the start; the
    transport reads it again (``transport/_proxy.py``). Empty is no proxy."""
    text = text.strip()
    if not text:
        return None
    parts = urlsplit(text)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme != "http" or not parts.hostname or port is None:
        raise ValueError("must be http://host:port (user:password@ allowed), or empty")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError("must be http://host:port, without a path")
    return text


def _rate(text: str) -> float:
    """Requests per second, or 0 for no limit."""
    value = float(text)
    if not math.isfinite(value) or value < 0:
        raise ValueError("must be a number of requests per second, or 0 for no limit")
    return value


def _schedule(text: str) -> RetrySchedule:
    return parse_schedule(text)


def _max_age(text: str) -> float | None:
    """Seconds, or 0 (or empty) for no limit."""
    if not text.strip():
        return None
    value = float(text)
    if not math.isfinite(value) or value < 0:
        raise ValueError("must be a number of seconds, or 0 for no limit")
    return value or None


TRANSPORT = "asyncio"
"""hookline's one HTTP client for deliveries."""
REMOVED_TRANSPORTS = ("curl", "aiohttp")
"""Clients hookline used to offer: still accepted, so that existing deployments start, but
ignored (with a warning at start) and due to be refused in a later release."""


def _transport(text: str) -> str:
    if text != TRANSPORT and text not in REMOVED_TRANSPORTS:
        raise ValueError(f"must be {TRANSPORT}")
    return text


def _header_style(text: str) -> HeaderStyle:
    try:
        return HeaderStyle(text.strip().lower())
    except ValueError:
        raise ValueError("must be webhook, svix or both") from None


MIN_ADMIN_TOKEN_LENGTH = 32
"""The shortest ``HOOKLINE_ADMIN_TOKEN`` accepted: a configured token is a password a person
chose, and anything shorter is within reach of guessing (generated tokens have 43
characters of 32 random bytes)."""


def _admin_token(text: str) -> str:
    # The message never repeats the value: it is a secret (ConfigError quotes the raw text,
    # so this setting is masked there too, see load_settings).
    if len(text) < MIN_ADMIN_TOKEN_LENGTH:
        raise ValueError(
            f"must be at least {MIN_ADMIN_TOKEN_LENGTH} characters (it has {len(text)}); "
            "generate one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
    return text


def _log_format(text: str) -> str:
    lowered = text.strip().lower()
    if lowered not in LOG_FORMATS:
        raise ValueError(f"must be {' or '.join(LOG_FORMATS)}")
    return lowered


def _tracing(text: str) -> str:
    lowered = text.strip().lower()
    if lowered not in TRACINGS:
        raise ValueError(f"must be {' or '.join(TRACINGS)}")
    return lowered


_FRAME_SOURCE = re.compile(
    r"'self'|'none'|https?:|(https?://)?(\*\.)?[A-Za-z0-9.-]+(:(\d{1,5}|\*))?",
)
"""The CSP source expressions a ``frame-ancestors`` list may hold (CSP Level 3, section
2.3.1): keywords, schemes, and hosts with an optional scheme, wildcard subdomain and port;
no path, no quotes but the two keywords, so that no value can end the directive."""


def _frame_ancestors(text: str) -> str:
    """Space- or comma-separated sources; ``'none'`` only alone (the browser ignores it
    beside others); the normalized, space-separated directive value."""
    sources = text.replace(",", " ").split()
    if not sources:
        raise ValueError("must name at least one source, or 'none'")
    for source in sources:
        if source == "*" or not _FRAME_SOURCE.fullmatch(source):
            raise ValueError(
                f"{source!r} is not a frame-ancestors source: use 'self', 'none', "
                "https://host[:port] or https://*.host (no '*' alone, no path)"
            )
    if "'none'" in sources and len(sources) > 1:
        raise ValueError("'none' must stand alone")
    return " ".join(sources)


_ORIGIN = re.compile(r"https?://(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?")
"""An origin as a browser sends it: a scheme, a host and a port, nothing after."""


def _origins(text: str) -> tuple[str, ...]:
    """Comma- or space-separated origins, or ``*`` alone (any origin: safe because the API
    reads bearer tokens, never cookies); empty is none."""
    origins = tuple(dict.fromkeys(origin.lower() for origin in text.replace(",", " ").split()))
    if "*" in origins:
        if len(origins) > 1:
            raise ValueError("'*' must stand alone")
        return origins
    for origin in origins:
        if not _ORIGIN.fullmatch(origin):
            raise ValueError(
                f"{origin!r} is not an origin: use https://host[:port] (no path, no trailing "
                "slash), or '*' alone"
            )
    return origins


def _setting(parse: Callable[[str], Any], help: str, *, secret: bool = False) -> Any:
    return field(metadata={"parse": parse, "help": help, "secret": secret})


@dataclass(frozen=True)
class Settings:
    """Everything hookline can be told; defaults are the safe production ones."""

    database_url: str = _setting(str, "sqlite:///path or postgresql://…")
    host: str = _setting(str, "listen address of serve")
    port: int = _setting(_port, "listen port of serve")
    admin_token: str | None = _setting(
        _admin_token,
        f"bearer token with full rights, at least {MIN_ADMIN_TOKEN_LENGTH} characters; "
        "a changed value revokes the previous one",
        secret=True,
    )
    allow_networks: tuple[IPv4Network | IPv6Network, ...] = _setting(
        _networks, "comma-separated CIDRs exempt from the SSRF guard"
    )
    retry_schedule: RetrySchedule = _setting(_schedule, "seconds between attempts")
    retry_max_age: float | None = _setting(
        _max_age,
        "seconds after a message falls due past which no retry starts (0: no limit); "
        "an endpoint's or application's policy.retry.maxAgeSeconds overrides it",
    )
    request_timeout: float = _setting(_positive_float, "seconds per delivery attempt")
    max_payload_bytes: int = _setting(_positive_int, "largest accepted request body")
    max_endpoints_per_app: int | None = _setting(
        _cap, "endpoints an application may have (0: no limit)"
    )
    lease_seconds: float = _setting(
        _positive_float, "how long a claimed delivery stays reserved to its worker"
    )
    poll_interval: float = _setting(_positive_float, "seconds between polls for due work")
    max_in_flight: int = _setting(_positive_int, "concurrent delivery attempts per worker")
    endpoint_max_in_flight: int = _setting(
        _positive_int, "concurrent attempts to one endpoint per worker"
    )
    transport: str = _setting(
        _transport,
        "HTTP client for deliveries: asyncio, the only one (curl and aiohttp are accepted "
        "but ignored, with a warning, and will be removed)",
    )
    processes: int = _setting(
        _positive_int, "serve: processes sharing the port, each with the API and a worker"
    )
    breaker_threshold: int = _setting(
        _positive_int, "failures in a row that open an endpoint's circuit breaker"
    )
    breaker_cooldown: float = _setting(
        _positive_float, "seconds an open breaker holds deliveries before one probe"
    )
    auto_disable_after: float = _setting(
        _positive_float,
        "seconds an endpoint may fail without a success before it is disabled (5 days)",
    )
    breaker_failure_ratio: float = _setting(
        _ratio, "failed share of the attempts in the window that opens a circuit breaker"
    )
    breaker_window: float = _setting(
        _positive_float, "seconds over which the breaker's failure ratio is measured"
    )
    breaker_min_attempts: int = _setting(
        _positive_int, "attempts the breaker's window must hold before its ratio is judged"
    )
    breaker_throttle_seconds: float = _setting(
        _positive_float,
        "seconds of nothing but 429/503 with Retry-After before they open a circuit breaker",
    )
    db_pool_size: int = _setting(_positive_int, "PostgreSQL connections per process")
    heartbeat_interval: float = _setting(_positive_float, "seconds between worker heartbeats")
    stall_timeout: float = _setting(
        _positive_float, "seconds without a heartbeat before a worker's deliveries are taken over"
    )
    signature_headers: HeaderStyle = _setting(
        _header_style,
        "names of the id/timestamp/signature headers: webhook (Standard Webhooks), svix, or both",
    )
    retention: timedelta | None = _setting(
        parse_retention,
        "how long messages, deliveries and attempts are kept (90d, 12h, 30s; off keeps all)",
    )
    backlog_sample_interval: float = _setting(
        _positive_float,
        "seconds between each process's samples of the due backlog (gauges, /api/v1/backlog)",
    )
    anomaly_detection: bool = _setting(
        _bool,
        "judge every endpoint's and application's traffic against its baseline each minute "
        "(operational webhooks hookline.anomaly.*, GET /api/v1/anomalies)",
    )
    anomaly_interval: float = _setting(
        _positive_float, "seconds between anomaly detection passes (one worker at a time)"
    )
    prune_interval: float = _setting(
        _positive_float, "seconds between pruning passes of rows past the retention horizon"
    )
    tls_cert: str | None = _setting(
        _path, "PEM certificate (chain) file: serve answers over https (with --tls-key)"
    )
    tls_key: str | None = _setting(_path, "PEM private key file of --tls-cert (unencrypted)")
    endpoint_https_only: bool = _setting(
        _bool, "refuse http:// endpoint URLs (422) and deliveries to them"
    )
    outbound_proxy: str | None = _setting(
        _proxy_url,
        "http://[user:password@]host:port proxy every delivery goes through (CONNECT tunnel "
        "to the vetted address)",
        secret=True,
    )
    outbound_allow_ports: tuple[PortRange, ...] = _setting(
        _ports, "destination ports deliveries may reach: 443,8000-8999 (empty: any)"
    )
    outbound_deny_ports: tuple[PortRange, ...] = _setting(
        _ports, "destination ports deliveries may never reach: 22,25 (wins over the allow list)"
    )
    dev: bool = _setting(_bool, "allow loopback/private destinations and log every attempt")
    log_format: str = _setting(
        _log_format, "log lines as text, or json: one JSON object a line (docs/observability.md)"
    )
    tracing: str = _setting(
        _tracing,
        "off, or otlp: OpenTelemetry traces exported over OTLP/HTTP, configured by the "
        "standard OTEL_* variables; needs hookline[otel] (docs/observability.md)",
    )
    encryption_keys: KeyRing | None = _setting(
        parse_key_ring,
        "ID:KEY[,ID:KEY…], 32-byte URL-safe base64 keys that encrypt secrets at rest; the "
        "first encrypts, all decrypt (hookline keygen prints one)",
        secret=True,
    )
    allow_plaintext_secrets: bool = _setting(
        _bool, "let serve and worker start without HOOKLINE_ENCRYPTION_KEYS outside --dev"
    )
    public_url: str | None = _setting(str, "external base URL used in portal links")
    portal_frame_ancestors: str = _setting(
        _frame_ancestors, "origins that may embed the portal in a frame (CSP frame-ancestors)"
    )
    cors_origins: tuple[str, ...] = _setting(
        _origins, "browser origins whose pages may call the API with a token (CORS; '*': any)"
    )
    api_allow_networks: tuple[IPv4Network | IPv6Network, ...] = _setting(
        _networks, "comma-separated CIDRs allowed to use the API with a token (empty: all)"
    )
    trusted_proxies: tuple[IPv4Network | IPv6Network, ...] = _setting(
        _networks, "comma-separated CIDRs of proxies whose X-Forwarded-For names the client"
    )
    api_token_rate: float = _setting(
        _rate, "API requests per second per application-scoped token, per process (0: off)"
    )
    api_admin_rate: float = _setting(
        _rate, "API requests per second per admin token, per process (0: off)"
    )
    api_address_rate: float = _setting(
        _rate, "API requests per second per client address, per process (0: off)"
    )
    api_auth_failure_rate: float = _setting(
        _rate, "failed authentications per second per client address, per process (0: off)"
    )
    api_burst_seconds: float = _setting(
        _positive_float, "how many seconds of its rate a client may spend at once"
    )
    header_timeout: float = _setting(
        _positive_float, "seconds a client has to send a request's line and headers"
    )
    body_timeout: float = _setting(
        _positive_float, "seconds a client has to send a request's body once its headers are in"
    )
    max_connections: int = _setting(
        _positive_int, "open API connections per process; past it the longest idle is closed"
    )
    max_url_bytes: int = _setting(_positive_int, "longest request target (path and query)")
    max_header_count: int = _setting(_positive_int, "most header fields in one request")
    max_header_bytes: int = _setting(
        _positive_int, "largest request line and header section of one request"
    )
    metrics: bool = _setting(_bool, "count Prometheus metrics and serve them on GET /metrics")
    metrics_dir: str | None = _setting(
        _path, "directory where a serve or worker process tree keeps its metrics (emptied at start)"
    )
    metrics_port: int | None = _setting(
        _port, "port on which `hookline worker` serves /metrics (none unless set)"
    )
    metrics_applications: tuple[str, ...] = _setting(
        _applications,
        "comma-separated application ids or uids whose attempts get series of their own",
    )

    def __repr__(self) -> str:
        shown = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.metadata.get("secret") and value is not None:
                value = "***"
            shown.append(f"{f.name}={value!r}")
        return f"Settings({', '.join(shown)})"

    @property
    def base_url(self) -> str:
        scheme = "https" if self.tls_cert is not None else "http"
        return self.public_url or f"{scheme}://{self.host}:{self.port}"


DEFAULTS: dict[str, str] = {
    "database_url": "sqlite:///./hookline.db",
    "host": "127.0.0.1",
    "port": "8071",
    "allow_networks": "",
    "retry_schedule": DEFAULT_SCHEDULE,
    "retry_max_age": "0",
    "request_timeout": "15",
    "max_payload_bytes": "1048576",
    "max_endpoints_per_app": "100",
    "poll_interval": "0.25",
    "max_in_flight": "256",
    "endpoint_max_in_flight": "32",
    "transport": "asyncio",
    "processes": "1",
    "breaker_threshold": "20",
    "breaker_cooldown": "5",
    "auto_disable_after": "432000",
    "breaker_failure_ratio": "0.9",
    "breaker_window": "60",
    "breaker_min_attempts": "20",
    "breaker_throttle_seconds": "60",
    "db_pool_size": "10",
    "heartbeat_interval": "5",
    "stall_timeout": "20",
    "signature_headers": "webhook",
    "retention": DEFAULT_RETENTION,
    "prune_interval": "60",
    "backlog_sample_interval": "15",
    "anomaly_detection": "true",
    "anomaly_interval": "60",
    "endpoint_https_only": "false",
    "outbound_allow_ports": "",
    "outbound_deny_ports": "",
    "dev": "false",
    "log_format": "text",
    "tracing": "off",
    "api_allow_networks": "",
    "trusted_proxies": "",
    "api_token_rate": "1000",
    "api_admin_rate": "0",
    "api_address_rate": "0",
    "api_auth_failure_rate": "1",
    "api_burst_seconds": "10",
    "header_timeout": "10",
    "body_timeout": "30",
    "max_connections": "1000",
    "max_url_bytes": "8192",
    "max_header_count": "100",
    "max_header_bytes": "32768",
    "allow_plaintext_secrets": "false",
    "portal_frame_ancestors": "'self'",
    "cors_origins": "",
    "metrics": "true",
    "metrics_applications": "",
}


def setting_names() -> list[str]:
    return [f.name for f in fields(Settings)]


def setting_help(name: str) -> str:
    for f in fields(Settings):
        if f.name == name:
            return str(f.metadata["help"])
    raise KeyError(name)


def load_settings(
    overrides: Mapping[str, str | None] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Build settings from defaults < environment < explicit overrides (CLI flags)."""
    env = os.environ if environ is None else environ
    raw: dict[str, str | None] = {}
    for name in setting_names():
        value: str | None = DEFAULTS.get(name)
        env_value = env.get(ENV_PREFIX + name.upper())
        if env_value is not None:
            value = env_value
        if overrides and overrides.get(name) is not None:
            value = overrides[name]
        raw[name] = value
    parsed: dict[str, Any] = {}
    for f in fields(Settings):
        text = raw[f.name]
        if text is None:
            parsed[f.name] = None
            continue
        try:
            parsed[f.name] = f.metadata["parse"](text)
        except ValueError as exc:
            # A secret setting (a proxy URL with a password) is not echoed back.
            shown = "***" if f.metadata.get("secret") else repr(text)
            raise ConfigError(f"{ENV_PREFIX}{f.name.upper()}={shown}: {exc}") from exc
    if parsed["lease_seconds"] is None:
        parsed["lease_seconds"] = parsed["request_timeout"] + 15.0
    settings = Settings(**parsed)
    if settings.stall_timeout <= 2 * settings.heartbeat_interval:
        raise ConfigError(
            f"{ENV_PREFIX}STALL_TIMEOUT ({settings.stall_timeout}) must exceed twice "
            f"{ENV_PREFIX}HEARTBEAT_INTERVAL ({settings.heartbeat_interval}), or live workers "
            "would be taken for dead"
        )
    if settings.lease_seconds <= settings.request_timeout:
        raise ConfigError(
            f"{ENV_PREFIX}LEASE_SECONDS ({settings.lease_seconds}) must exceed "
            f"{ENV_PREFIX}REQUEST_TIMEOUT ({settings.request_timeout}), or a slow attempt "
            "would be handed to a second worker while still in flight"
        )
    if (settings.tls_cert is None) != (settings.tls_key is None):
        raise ConfigError(
            f"{ENV_PREFIX}TLS_CERT and {ENV_PREFIX}TLS_KEY go together: set both to serve "
            "https, or neither"
        )
    return settings
