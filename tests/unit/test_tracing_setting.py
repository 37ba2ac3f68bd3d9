"""``HOOKLINE_TRACING``: off by default, and then OpenTelemetry is never imported; ``otlp``
on request; anything else, or ``otlp`` without the ``hookline[otel]`` extra, stops the start
with a message that says what to do."""

from __future__ import annotations

import subprocess
import sys

import pytest

from hookline.cli import build_parser
from hookline.config import ConfigError, load_settings
from hookline.instrumentation import load_tracing
from hookline.server import check_tracing, tracing_for


def test_tracing_is_off_by_default_and_otlp_on_request_from_env_or_flag() -> None:
    """Off unless ``HOOKLINE_TRACING=otlp`` or ``--tracing otlp`` (serve and worker)."""
    assert load_settings(environ={}).tracing == "off"
    assert tracing_for(load_settings(environ={})) is None
    assert load_settings(environ={"HOOKLINE_TRACING": "OTLP"}).tracing == "otlp"
    for command in ("serve", "worker"):
        args = build_parser().parse_args([command, "--tracing", "otlp"])
        assert load_settings({"tracing": args.tracing}, environ={}).tracing == "otlp"


def test_an_unknown_tracing_value_stops_the_start_naming_the_setting() -> None:
    """Only off and otlp are known."""
    with pytest.raises(ConfigError, match="HOOKLINE_TRACING='zipkin': must be off or otlp"):
        load_settings(environ={"HOOKLINE_TRACING": "zipkin"})


def test_asking_for_traces_without_the_extra_stops_the_start_naming_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without OpenTelemetry installed, ``otlp`` is a start-up error naming
    ``hookline[otel]``, never a traceback on the first request."""
    monkeypatch.setattr("hookline.server.tracing_installed", lambda: False)
    settings = load_settings(environ={"HOOKLINE_TRACING": "otlp"})
    with pytest.raises(SystemExit, match=r"pip install 'hookline\[otel\]'"):
        check_tracing(settings)
    with pytest.raises(SystemExit, match=r"hookline\[otel\]"):
        tracing_for(settings)


def test_with_tracing_off_opentelemetry_is_never_imported() -> None:
    """A fresh interpreter that builds the API, a worker and their settings with tracing off
    has no ``opentelemetry`` module loaded: the off path costs nothing, not even an import."""
    script = (
        "import sys\n"
        "from hookline import cli, server\n"
        "from hookline.api.routes import create_app\n"
        "from hookline.delivery.worker import Worker\n"
        "from hookline.instrumentation import load_tracing\n"
        "assert load_tracing('off', '0') is None\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))\n"
    )
    found = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert found.stdout.strip() == "[]"


def test_otlp_tracing_loads_the_sdk_with_the_service_named_hookline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With the extra installed, ``otlp`` builds a tracer; its spans name the service
    ``hookline`` unless ``OTEL_SERVICE_NAME`` says otherwise."""
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)
    tracing = load_tracing("otlp", "9.9")
    assert tracing is not None
    try:
        provider = tracing._provider  # type: ignore[attr-defined]
        assert provider.resource.attributes["service.name"] == "hookline"
        assert provider.resource.attributes["service.version"] == "9.9"
    finally:
        tracing.shutdown()
    monkeypatch.setenv("OTEL_SERVICE_NAME", "webhooks-eu")
    named = load_tracing("otlp", "9.9")
    assert named is not None
    try:
        assert named._provider.resource.attributes["service.name"] == "webhooks-eu"  # type: ignore[attr-defined]
    finally:
        named.shutdown()
