"""``MetricsHook``: events in, Prometheus samples out, summed over the processes of a tree."""

from __future__ import annotations

import math
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from hookline.domain.anomaly import KINDS as ANOMALY_KINDS
from hookline.domain.backlog import BacklogState
from hookline.instrumentation import (
    AnomaliesEvaluated,
    AttemptFinished,
    BacklogSampled,
    BatchCommitted,
    BreakerOpened,
    DeliveryHeld,
    EndpointDisabled,
    MetricsHook,
    prepare_directory,
)
from hookline.instrumentation._metrics import (
    attempt_outcome,
    exported_families,
    process_exited,
)

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(hook: MetricsHook) -> Samples:
    text = hook.exposition().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def attempt(status: int, error: str | None = None, **fields: object) -> AttemptFinished:
    values: dict[str, object] = {
        "app_id": "app_secretive",
        "msg_id": "msg_1",
        "endpoint_id": "ep_secretive",
        "attempt_id": "atmpt_1",
        "status_code": status,
        "error": error,
        "duration_ms": 120,
        "attempt_number": 1,
        "manual": False,
        "outcome": "success" if 200 <= status < 300 else "retry",
        "started_at": datetime.now(UTC),
        "msg_created_at": datetime.now(UTC),
    }
    values.update(fields)
    return AttemptFinished(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("status", "error", "outcome"),
    [
        (200, None, "2xx"),
        (204, None, "2xx"),
        (301, None, "3xx"),
        (410, None, "4xx"),
        (429, None, "rate_limited"),
        (503, None, "5xx"),
        (101, None, "other"),
        (0, "timeout after 15.0s", "timeout"),
        (0, "connection refused", "connection"),
        (0, "connection failed: Network is unreachable", "connection"),
        (0, "server disconnected without a response", "connection"),
        (0, "DNS resolution failed: [Errno -2] Name or service not known", "dns"),
        (0, "TLS certificate error: self-signed certificate", "tls"),
        (0, "TLS error: wrong version number", "tls"),
        (0, "blocked by SSRF guard: loopback (resolved from localhost)", "ssrf_blocked"),
        (0, "blocked by destination policy: port 25 is denied", "ssrf_blocked"),
        (0, "invalid URL: 127.1 is not a canonical IP address", "ssrf_blocked"),
        (0, "message content was expunged", "other"),
        (0, None, "other"),
    ],
)
def test_an_attempt_is_labelled_by_status_class_or_by_why_it_had_no_answer(
    status: int, error: str | None, outcome: str
) -> None:
    """The outcome label is one of a fixed set, whatever the transport's reason says."""
    assert attempt_outcome(status, error) == outcome


def test_each_event_moves_its_metric(tmp_path: Path) -> None:
    """Accepts (what each commit accepted), attempts, give-ups, breakers, disables,
    requests and commits each show in the scrape with their counts, histogram counts and
    sums; the build's version is reported."""
    hook = MetricsHook(str(tmp_path), "1.2.3")
    hook(
        BatchCommitted(
            "sqlite", 2, 3, 0, 0.001, accepted=2, deliveries=4, payload_bytes=(700, 2000)
        )
    )
    hook(attempt(200, duration_ms=250))
    hook(attempt(0, "timeout after 15.0s", duration_ms=15000))
    hook(attempt(500, outcome="fail", attempt_number=8))
    hook(attempt(410, outcome="gone", attempt_number=2))
    hook(DeliveryHeld("app_1", "ep_1"))
    hook(BreakerOpened("ep_1", 20, 5.0))
    hook(EndpointDisabled("app_1", "ep_1", "410 Gone"))
    hook.count_request("POST", "/api/v1/app/{app_id}/msg", 202)
    hook.count_request("BREW", "(no route)", 404)
    hook(BatchCommitted("sqlite", publishes=5, messages=5, records=3, duration_s=0.002))
    got = scrape(hook)
    assert value(got, "hookline_messages_accepted_total") == 2
    assert value(got, "hookline_deliveries_created_total") == 4
    assert value(got, "hookline_message_payload_bytes_count") == 2
    assert value(got, "hookline_message_payload_bytes_sum") == 2700
    assert value(got, "hookline_message_payload_bytes_bucket", le="1024.0") == 1
    assert value(got, "hookline_attempts_total", outcome="2xx") == 1
    assert value(got, "hookline_attempts_total", outcome="timeout") == 1
    assert value(got, "hookline_attempts_total", outcome="5xx") == 1
    assert value(got, "hookline_attempts_total", outcome="breaker_held") == 1
    assert value(got, "hookline_attempts_total", outcome="rate_limited") == 0
    assert value(got, "hookline_attempt_duration_seconds_count") == 4
    assert value(got, "hookline_attempt_duration_seconds_sum") == pytest.approx(15.49)
    assert value(got, "hookline_delivery_latency_seconds_count") == 1
    assert value(got, "hookline_deliveries_given_up_total", reason="exhausted") == 1
    assert value(got, "hookline_deliveries_given_up_total", reason="gone") == 1
    assert value(got, "hookline_retries_total", attempt="8") == 1
    assert value(got, "hookline_retries_total", attempt="2") == 1
    assert value(got, "hookline_breakers_opened_total", reason="consecutiveFailures") == 1
    assert value(got, "hookline_endpoints_disabled_total", trigger="automatic") == 1
    published = {"method": "POST", "route": "/api/v1/app/{app_id}/msg", "status": "2xx"}
    assert value(got, "hookline_api_requests_total", **published) == 1
    unknown = {"method": "other", "route": "(no route)", "status": "4xx"}
    assert value(got, "hookline_api_requests_total", **unknown) == 1
    assert value(got, "hookline_store_commit_seconds_count", backend="sqlite") == 2
    assert value(got, "hookline_store_batch_size_sum", backend="sqlite") == 10
    assert value(got, "hookline_build_info", version="1.2.3") == 1


def test_latency_runs_from_the_message_creation_to_the_first_success(tmp_path: Path) -> None:
    """End-to-end latency runs from the message's creation; only a scheduled success counts:
    failures and manual resends do not."""
    hook = MetricsHook(str(tmp_path), "1")
    hook(attempt(200, msg_created_at=datetime.now(UTC) - timedelta(minutes=1)))
    hook(attempt(200, manual=True))
    hook(attempt(500))
    got = scrape(hook)
    assert value(got, "hookline_delivery_latency_seconds_count") == 1
    assert 60 <= value(got, "hookline_delivery_latency_seconds_sum") < 70
    assert value(got, "hookline_delivery_latency_seconds_bucket", le="30.0") == 0
    assert value(got, "hookline_delivery_latency_seconds_bucket", le="300.0") == 1


def test_processes_sharing_a_directory_are_summed(tmp_path: Path) -> None:
    """Two hooks (two processes of one serve tree) writing to one directory scrape as one
    sum from either of them, histograms included."""
    first, second = MetricsHook(str(tmp_path), "1"), MetricsHook(str(tmp_path), "1")
    for hook, count in ((first, 3), (second, 4)):
        for _ in range(count):
            hook(attempt(200))
    second.flush()
    for hook in (first, second):
        got = scrape(hook)
        assert value(got, "hookline_attempts_total", outcome="2xx") == 7
        assert value(got, "hookline_attempt_duration_seconds_count") == 7


def test_no_id_reaches_a_label(tmp_path: Path) -> None:
    """Application, endpoint, message and attempt ids stay out of the exposition."""
    hook = MetricsHook(str(tmp_path), "1")
    hook(attempt(200))
    hook(EndpointDisabled("app_secretive", "ep_secretive", "410 Gone"))
    hook(BatchCommitted("sqlite", 1, 1, 0, 0.001, accepted=1, deliveries=1, payload_bytes=(10,)))
    text = hook.exposition().decode()
    assert "secretive" not in text
    assert "msg_" not in text


def test_a_new_tree_starts_from_zero(tmp_path: Path) -> None:
    """Preparing the directory removes a previous run's files, so counts restart at 0."""
    old = MetricsHook(str(tmp_path), "1")
    old(BatchCommitted("sqlite", 1, 1, 0, 0.001, accepted=1, deliveries=1, payload_bytes=(10,)))
    old.close()
    prepare_directory(str(tmp_path))
    got = scrape(MetricsHook(str(tmp_path), "1"))
    assert value(got, "hookline_messages_accepted_total") == 0


def test_a_directory_holding_other_files_is_refused_not_emptied(tmp_path: Path) -> None:
    """A metrics directory that holds a database file is refused, and the file is kept."""
    (tmp_path / "hookline.db").write_bytes(b"SQLite format 3")
    with pytest.raises(ValueError, match=r"hookline\.db"):
        prepare_directory(str(tmp_path))
    assert (tmp_path / "hookline.db").exists()


def test_retries_are_counted_by_attempt_number_and_long_schedules_share_one_label(
    tmp_path: Path,
) -> None:
    """A retry counts under its attempt number, from the tenth on under ``10+``; first
    attempts and manual resends are not retries, and a manual failure is no give-up."""
    hook = MetricsHook(str(tmp_path), "1")
    for number in (1, 2, 2, 9, 10, 17):
        hook(attempt(500, attempt_number=number))
    hook(attempt(500, attempt_number=3, manual=True, outcome="fail"))
    got = scrape(hook)
    counted = {label: value(got, "hookline_retries_total", attempt=label) for label in ("2", "9")}
    assert counted == {"2": 2, "9": 1}
    assert value(got, "hookline_retries_total", attempt="10+") == 2
    assert value(got, "hookline_retries_total", attempt="3") == 0
    assert value(got, "hookline_deliveries_given_up_total", reason="exhausted") == 0


def test_lag_runs_from_when_the_message_fell_due_to_its_first_attempt(tmp_path: Path) -> None:
    """Lag is measured on first scheduled attempts only, from the message's due time (its
    ``deliverAt`` when scheduled) to the attempt's start; a retry's wait is not lag."""
    hook = MetricsHook(str(tmp_path), "1")
    started = datetime.now(UTC)
    hook(attempt(200, started_at=started, msg_due_at=started - timedelta(seconds=3)))
    hook(attempt(200, attempt_number=2, msg_due_at=started - timedelta(hours=1)))
    got = scrape(hook)
    assert value(got, "hookline_delivery_lag_seconds_count") == 1
    assert value(got, "hookline_delivery_lag_seconds_sum") == pytest.approx(3.0)
    assert value(got, "hookline_delivery_lag_seconds_bucket", le="2.5") == 0
    assert value(got, "hookline_delivery_lag_seconds_bucket", le="5.0") == 1


def sampled(
    at: datetime, due: int, oldest: datetime | None, drain: float | None = None
) -> BacklogSampled:
    return BacklogSampled(BacklogState(at, due, oldest, 2, 3, 1, drain))


def test_backlog_gauges_show_the_newest_sample_of_the_tree(tmp_path: Path) -> None:
    """The sampled gauges show the newest sample any live process of the tree took, the
    oldest due delivery's age as of that sample; a process that exits takes its sample
    with it; before any sample there is none to show."""
    first, second = MetricsHook(str(tmp_path), "1"), MetricsHook(str(tmp_path), "1")
    assert ("hookline_due_backlog", frozenset()) not in scrape(first)
    now = datetime.now(UTC)
    first(sampled(now - timedelta(seconds=10), 500, now - timedelta(seconds=70), 600.0))
    second(sampled(now, 40, now - timedelta(seconds=25), math.inf))
    first.flush()
    got = scrape(second)
    assert value(got, "hookline_due_backlog") == 40
    assert value(got, "hookline_oldest_due_age_seconds") == pytest.approx(25.0)
    assert value(got, "hookline_live_workers") == 2
    assert value(got, "hookline_disabled_endpoints") == 3
    assert value(got, "hookline_open_breakers") == 1
    assert value(got, "hookline_backlog_sampled_timestamp_seconds") == now.timestamp()
    assert value(got, "hookline_backlog_drain_seconds") == math.inf
    second.close()
    process_exited(str(tmp_path), os.getpid())
    assert ("hookline_due_backlog", frozenset()) not in scrape(MetricsHook(str(tmp_path), "1"))


def test_process_cpu_and_memory_are_reported(tmp_path: Path) -> None:
    """The tree's CPU seconds and resident memory appear, as this process's own."""
    got = scrape(MetricsHook(str(tmp_path), "1"))
    assert value(got, "hookline_process_cpu_seconds_total") > 0
    assert value(got, "hookline_process_resident_memory_bytes") > 1_000_000


def test_every_exported_family_appears_in_a_scrape_with_its_type(tmp_path: Path) -> None:
    """``exported_families`` (what the shipped rules and dashboard may name) is what a
    scrape shows once every kind of event was heard, each with the type it declares."""
    hook = MetricsHook(str(tmp_path), "1", ("acme",))
    hook(BatchCommitted("sqlite", publishes=1, messages=1, records=0, duration_s=0.001))
    hook(BreakerOpened("ep_1", 20, 5.0))
    hook(EndpointDisabled("app_1", "ep_1", "410 Gone"))
    hook.count_request("GET", "/api/v1/app", 200)
    hook(sampled(datetime.now(UTC), 0, None, 0.0))
    hook(AnomaliesEvaluated(dict.fromkeys(ANOMALY_KINDS, 0)))
    text = hook.exposition().decode()
    shown = {family.name: family.type for family in text_string_to_metric_families(text)}
    assert shown == exported_families()


def test_labelled_counters_start_at_zero_so_the_first_event_is_counted(tmp_path: Path) -> None:
    """Every bounded label value shows from the start at 0: a series that appeared with its
    first event would hide that event from PromQL's increase()."""
    got = scrape(MetricsHook(str(tmp_path), "1"))
    for reason in ("consecutiveFailures", "failureRatio", "throttled"):
        assert value(got, "hookline_breakers_opened_total", reason=reason) == 0
    for trigger in ("automatic", "manual"):
        assert value(got, "hookline_endpoints_disabled_total", trigger=trigger) == 0
    assert value(got, "hookline_deliveries_given_up_total", reason="exhausted") == 0
    assert value(got, "hookline_retries_total", attempt="10+") == 0


def test_named_applications_get_attempt_series_under_the_name_the_operator_gave(
    tmp_path: Path,
) -> None:
    """Attempts and held deliveries of a named application count in the totals and in its
    own series, labelled with the configured name (uid or id); an application nobody named
    counts in the totals only, and its id never reaches a label."""
    hook = MetricsHook(str(tmp_path), "1", ("acme", "app_2"))
    hook.label_applications({"app_1": "acme", "app_2": "app_2"})
    hook(attempt(200, app_id="app_1"))
    hook(attempt(503, app_id="app_1"))
    hook(DeliveryHeld("app_1", "ep_1"))
    hook(attempt(200, app_id="app_2"))
    hook(attempt(200, app_id="app_secretive"))
    got = scrape(hook)
    assert value(got, "hookline_attempts_total", outcome="2xx") == 3
    assert value(got, "hookline_application_attempts_total", application="acme", outcome="2xx") == 1
    assert value(got, "hookline_application_attempts_total", application="acme", outcome="5xx") == 1
    held = value(
        got, "hookline_application_attempts_total", application="acme", outcome="breaker_held"
    )
    assert held == 1
    assert (
        value(got, "hookline_application_attempts_total", application="app_2", outcome="2xx") == 1
    )
    assert "secretive" not in hook.exposition().decode()


def test_a_named_application_shows_at_zero_until_its_id_is_known(tmp_path: Path) -> None:
    """Before the look-up finds a name's application its series show 0 (so the first
    attempt after it is seen by increase()), and its attempts count in the totals alone."""
    hook = MetricsHook(str(tmp_path), "1", ("acme",))
    hook(attempt(200, app_id="app_1"))
    got = scrape(hook)
    assert value(got, "hookline_application_attempts_total", application="acme", outcome="2xx") == 0
    assert value(got, "hookline_attempts_total", outcome="2xx") == 1


def test_only_configured_names_can_become_labels(tmp_path: Path) -> None:
    """A mapping naming an application the operator did not list is ignored: the set of
    label values is fixed at start."""
    hook = MetricsHook(str(tmp_path), "1", ("acme",))
    hook.label_applications({"app_1": "intruder"})
    hook(attempt(200, app_id="app_1"))
    assert "intruder" not in hook.exposition().decode()
