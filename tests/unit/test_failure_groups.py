"""The pure rules of failure groups (``domain/failure_groups.py``)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hookline.domain import failure_groups as rules
from hookline.domain.failure_groups import (
    CATCH_UP,
    RESOLVE_QUIET,
    SAMPLE_CHARS,
    SETTLE,
    FailedAttempt,
    FailureGroup,
    GroupStatus,
    Sighting,
)
from hookline.domain.models import MessageStatus
from hookline.domain.tasks import TaskFilter, TaskKind, TaskRow, selects

T0 = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def _failed(
    msg: str, code: int, response: str = "", at: datetime = T0, endpoint: str = "ep_1"
) -> FailedAttempt:
    return FailedAttempt(
        f"atmpt_{msg}_{at.timestamp()}", "app_1", msg, endpoint, code, response, at
    )


def _group(status: GroupStatus = GroupStatus.OPEN, last_seen: datetime = T0) -> FailureGroup:
    return FailureGroup(
        id="fgrp_1",
        app_id="app_1",
        endpoint_id="ep_1",
        outcome="5xx",
        status_code=503,
        status=status,
        first_seen_at=T0 - timedelta(hours=1),
        opened_at=T0 - timedelta(hours=1),
        last_seen_at=last_seen,
        attempts=3,
        messages=2,
        sample="busy",
        acknowledged_at=None,
        resolved_at=None,
        resolved_by=None,
        reopened=0,
    )


def test_the_key_is_the_outcome_class_and_the_exact_status_code_or_zero_without_an_answer() -> None:
    """An HTTP answer keys on its class and exact code; no answer keys on why (the rollups'
    classes), with code 0."""
    assert rules.key_of(503, "Service Unavailable") == ("5xx", 503)
    assert rules.key_of(404, "") == ("4xx", 404)
    assert rules.key_of(301, "") == ("3xx", 301)
    assert rules.key_of(0, "timeout after 15 s") == ("timeout", 0)
    assert rules.key_of(0, "DNS lookup failed") == ("dns", 0)
    assert rules.key_of(0, "connection refused") == ("connection", 0)
    assert rules.key_of(0, "blocked by the SSRF guard") == ("ssrf_blocked", 0)
    assert rules.key_of(0, "message content was expunged") == ("other", 0)


def test_a_sample_is_one_printable_line_of_at_most_sample_chars() -> None:
    """Control characters become spaces and a long body is cut, so a list row stays one
    readable line."""
    assert rules.sample_of("  <h1>Bad\r\ngateway</h1>\t") == "<h1>Bad  gateway</h1>"
    assert len(rules.sample_of("x" * 5000)) == SAMPLE_CHARS


def test_gather_counts_each_key_once_with_distinct_messages_and_the_latest_error() -> None:
    """A pass's failed attempts become one sighting per (endpoint, class, code): attempts
    counted, messages counted once, first and last times, the latest attempt's error."""
    later = T0 + timedelta(seconds=30)
    found = rules.gather(
        [
            _failed("m1", 503, "first", T0),
            _failed("m1", 503, "second", later),
            _failed("m2", 503, "between", T0 + timedelta(seconds=10)),
            _failed("m2", 500, "other code", T0),
            _failed("m3", 503, "elsewhere", T0, endpoint="ep_2"),
        ]
    )
    by_key = {(s.endpoint_id, s.outcome, s.status_code): s for s in found}
    assert by_key[("ep_1", "5xx", 503)] == Sighting(
        "app_1", "ep_1", "5xx", 503, 3, 2, T0, later, "second"
    )
    assert by_key[("ep_1", "5xx", 500)].attempts == 1
    assert by_key[("ep_2", "5xx", 503)].messages == 1
    assert len(found) == 3
    assert rules.gather([]) == []


def test_a_pass_reads_from_the_last_end_to_settle_ago_and_at_most_catch_up_back() -> None:
    """The first pass reads the last ``CATCH_UP``; later ones continue where the last ended;
    a long stop is caught up for ``CATCH_UP`` only; nothing new is None."""
    end = T0 - SETTLE
    assert rules.scan_range(None, T0) == (end - CATCH_UP, end)
    last = T0 - timedelta(minutes=2)
    assert rules.scan_range(last, T0) == (last, end)
    assert rules.scan_range(T0 - timedelta(days=1), T0) == (end - CATCH_UP, end)
    assert rules.scan_range(end, T0) is None
    assert rules.scan_range(end + timedelta(seconds=1), T0) is None


def test_a_group_resolves_on_its_own_only_when_quiet_and_the_endpoint_delivered_since() -> None:
    """Quiet for ``RESOLVE_QUIET`` and a success since: resolved. Quiet without a success (a
    dead or disabled endpoint), recent, or already resolved: not."""
    now = T0 + RESOLVE_QUIET + timedelta(minutes=2)
    assert rules.resolves_on_its_own(_group(), 1, now)
    assert not rules.resolves_on_its_own(_group(), 0, now)
    assert not rules.resolves_on_its_own(_group(last_seen=now - timedelta(minutes=1)), 5, now)
    assert not rules.resolves_on_its_own(_group(GroupStatus.RESOLVED), 5, now)
    acknowledged = _group(GroupStatus.ACKNOWLEDGED)
    assert rules.resolves_on_its_own(acknowledged, 1, now)


def test_a_quiet_group_of_a_deleted_endpoint_resolves_without_a_success() -> None:
    """Nothing will deliver to a deleted endpoint: once quiet its group resolves; while a
    failure is recent it does not."""
    now = T0 + RESOLVE_QUIET + timedelta(minutes=2)
    assert rules.resolves_on_its_own(_group(), 0, now, endpoint_exists=False)
    recent = _group(last_seen=now - timedelta(minutes=1))
    assert not rules.resolves_on_its_own(recent, 0, now, endpoint_exists=False)


def test_quiet_before_is_a_minute_start_so_later_rollups_count_only_later_successes() -> None:
    """The cutoff is floored to the minute: every minute rollup from it on started after the
    last failure of a group quiet before it."""
    now = T0 + timedelta(minutes=20, seconds=42)
    assert rules.quiet_before(now) == T0 + timedelta(minutes=5)


def test_only_an_open_group_is_changed_by_acknowledging() -> None:
    assert rules.acknowledged(_group())
    assert not rules.acknowledged(_group(GroupStatus.ACKNOWLEDGED))
    assert not rules.acknowledged(_group(GroupStatus.RESOLVED))


def test_a_replay_selects_the_exact_code_or_every_delivery_that_got_no_answer() -> None:
    assert rules.replay_codes(_group()) == (503, None)
    timeouts = replace(_group(), outcome="timeout", status_code=0)
    assert rules.replay_codes(timeouts) == (None, 0)


def test_a_redrive_with_a_status_code_selects_that_code_only() -> None:
    """``TaskFilter.status_code`` (a group's replay) keeps dead letters whose last attempt
    got exactly that code: a 503 group's replay leaves the endpoint's 500s alone."""
    spec = TaskFilter(since=T0 - timedelta(days=1), until=T0, status_code=503)

    def row(code: int) -> TaskRow:
        return TaskRow(
            key="dlv_1",
            msg_id="msg_1",
            endpoint_id="ep_1",
            delivery_id="dlv_1",
            status=MessageStatus.FAIL,
            attempt_count=1,
            updated_at=T0 - timedelta(minutes=1),
            event_type="a.b",
            channels=None,
            tags=None,
            created_at=T0 - timedelta(hours=1),
            last_status_code=code,
        )

    assert selects(TaskKind.REDRIVE, spec, row(503))
    assert not selects(TaskKind.REDRIVE, spec, row(500))
    assert selects(TaskKind.REDRIVE, replace(spec, status_code=None), row(500))


def test_chunks_of_one_pass_merge_into_one_sighting_per_key() -> None:
    """Counts add, the earliest first and latest last time win, the latest chunk's sample
    is kept, and a key seen in one chunk only passes through."""
    early, late = T0, T0 + timedelta(minutes=1)
    held = [Sighting("app_1", "ep_1", "5xx", 503, 4, 2, early, early, "old")]
    more = [
        Sighting("app_1", "ep_1", "5xx", 503, 3, 3, late, late, "new"),
        Sighting("app_1", "ep_2", "timeout", 0, 1, 1, late, late, "timeout"),
    ]
    merged = {s.endpoint_id: s for s in rules.merge(held, more)}
    assert merged["ep_1"] == Sighting("app_1", "ep_1", "5xx", 503, 7, 5, early, late, "new")
    assert merged["ep_2"] == more[1]
    assert rules.merge([], []) == []


def test_a_group_was_opened_by_a_sighting_only_when_it_opened_at_that_sightings_first_failure() -> (
    None
):
    """Read back after a pass: a group whose episode began at the sighting's first failure
    (to the millisecond it is stored at) was opened or reopened by it; a group open since
    earlier only grew, and a group no sighting names was not touched."""
    first = T0 + timedelta(microseconds=400)
    seen = Sighting("app_1", "ep_1", "5xx", 503, 2, 2, first, first, "busy")
    new = replace(_group(), opened_at=T0)
    grown = replace(_group(), id="fgrp_2", opened_at=T0 - timedelta(minutes=3))
    other = replace(_group(), id="fgrp_3", status_code=500, opened_at=T0)
    assert rules.opened_by([new], [seen]) == [new]
    assert rules.opened_by([grown, other], [seen]) == []
