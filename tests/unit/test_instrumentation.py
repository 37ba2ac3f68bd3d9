"""The instrumentation seam: dispatch by kind, guarded hooks, and the logging consumer."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from hookline.instrumentation import (
    NO_INSTRUMENTATION,
    AttemptFinished,
    BackgroundTaskFinished,
    BreakerClosed,
    BreakerOpened,
    EndpointDisabled,
    Event,
    Instrumentation,
    LoggingHook,
    MessageAccepted,
)
from hookline.instrumentation._log_format import json_formatter


@dataclass
class Recorder:
    events: frozenset[type[Event]]
    seen: list[Event] = field(default_factory=list)

    def __call__(self, event: Event) -> None:
        self.seen.append(event)


class Exploding:
    events: frozenset[type[Event]] = frozenset({BreakerClosed})

    def __call__(self, event: Event) -> None:
        raise RuntimeError("consumer bug")


def attempt(status: int = 200, error: str | None = None) -> AttemptFinished:
    return AttemptFinished(
        app_id="app_1",
        msg_id="msg_1",
        endpoint_id="ep_1",
        attempt_id="atmpt_1",
        status_code=status,
        error=error,
        duration_ms=12,
        attempt_number=1,
        manual=False,
        outcome="success" if status == 200 else "retry",
        started_at=datetime(2026, 12, 7, tzinfo=UTC),
    )


def test_an_event_reaches_only_the_hooks_that_asked_for_its_kind() -> None:
    """A hook for breaker events never sees attempts, and one for attempts sees each once."""
    breakers = Recorder(frozenset({BreakerOpened, BreakerClosed}))
    attempts = Recorder(frozenset({AttemptFinished}))
    instrumentation = Instrumentation([breakers, attempts])
    instrumentation.emit(attempt())
    instrumentation.emit(BreakerClosed("ep_1"))
    assert attempts.seen == [attempt()]
    assert breakers.seen == [BreakerClosed("ep_1")]


def test_wants_tells_an_emitter_whether_building_an_event_is_worth_it() -> None:
    """With no hook for a kind, ``wants`` is false, so the emitter builds nothing."""
    instrumentation = Instrumentation([Recorder(frozenset({MessageAccepted}))])
    assert instrumentation.wants(MessageAccepted)
    assert not instrumentation.wants(AttemptFinished)
    assert not NO_INSTRUMENTATION.wants(AttemptFinished)


def test_a_failing_hook_is_logged_and_the_others_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A consumer's bug must not break delivery: the emitter returns, the next hook runs."""
    after = Recorder(frozenset({BreakerClosed}))
    instrumentation = Instrumentation([Exploding(), after])
    with caplog.at_level(logging.ERROR, logger="hookline.instrumentation"):
        instrumentation.emit(BreakerClosed("ep_1"))
    assert after.seen == [BreakerClosed("ep_1")]
    assert "BreakerClosed" in caplog.text


def test_the_logging_hook_logs_attempts_only_when_asked() -> None:
    """Every attempt is logged in dev mode only; state changes always are."""
    assert AttemptFinished not in LoggingHook().events
    assert AttemptFinished in LoggingHook(attempts=True).events
    assert {BreakerOpened, BreakerClosed, EndpointDisabled} <= LoggingHook().events


def test_the_logging_hook_names_ids_status_and_reason(caplog: pytest.LogCaptureFixture) -> None:
    """An attempt line carries the ids, the status and the failure reason."""
    with caplog.at_level(logging.INFO, logger="hookline.events"):
        Instrumentation([LoggingHook(attempts=True)]).emit(attempt(0, "connection refused"))
    line = caplog.records[-1].getMessage()
    assert "atmpt_1 msg_1 -> ep_1 status=0" in line
    assert "(connection refused)" in line


def test_the_logging_hook_says_why_a_breaker_opened(caplog: pytest.LogCaptureFixture) -> None:
    """An opened breaker is a warning with the failure count and the hold time."""
    with caplog.at_level(logging.INFO, logger="hookline.events"):
        Instrumentation([LoggingHook()]).emit(BreakerOpened("ep_9", 5, 10.0))
    record = caplog.records[-1]
    assert record.levelno == logging.WARNING
    assert (
        "ep_9 circuit opened (consecutiveFailures; 5 failures in a row); "
        "holding its deliveries for 10s" in record.getMessage()
    )


def test_the_logging_hook_says_how_a_background_task_ended(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A finished background task is logged with its type, status and counts."""
    data: dict[str, object] = {"messagesScanned": 7, "messagesSent": 3}
    ended = BackgroundTaskFinished("qtask_1", "app_1", "endpoint.recover", "finished", data)
    with caplog.at_level(logging.INFO, logger="hookline.events"):
        Instrumentation([LoggingHook()]).emit(ended)
    line = caplog.records[-1].getMessage()
    assert "qtask_1 (endpoint.recover) of app_1 ended finished" in line
    assert "messagesScanned=7, messagesSent=3" in line


def test_json_lines_carry_time_level_logger_message_and_the_lines_ids(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A JSON line of the logging hook is one object with time, level, logger, message and
    the line's ids as fields: an attempt line has its status code, a breaker line its
    endpoint id; no field repeats a message with terminal colours (uvicorn's extra)."""
    formatter = json_formatter()
    with caplog.at_level(logging.INFO, logger="hookline.events"):
        hooks = Instrumentation([LoggingHook(attempts=True)])
        hooks.emit(attempt(502, None))
        hooks.emit(BreakerOpened("ep_9", 5, 10.0))
    first, breaker = (json.loads(formatter.format(r)) for r in caplog.records[-2:])
    assert {"time", "level", "logger", "message"} <= first.keys()
    assert (first["level"], first["logger"]) == ("INFO", "hookline.events")
    ids = (first["msg_id"], first["endpoint_id"], first["attempt_id"], first["status_code"])
    assert ids == ("msg_1", "ep_1", "atmpt_1", 502)
    assert (breaker["level"], breaker["endpoint_id"]) == ("WARNING", "ep_9")
    record = logging.makeLogRecord({"msg": "x", "color_message": "\x1b[1mx"})
    assert "color_message" not in json.loads(formatter.format(record))
