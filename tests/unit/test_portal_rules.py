"""The portal's small pure rules: who receives an event type, how a payload is shown, the
rotation's overlap, the health figures and the headers every page answers with."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from hookline.domain.errors import InvalidRequest, NotFound, Unauthorized
from hookline.domain.models import Endpoint, SigningKey
from hookline.domain.rollups import COUNT_COLUMNS, RollupSummary
from hookline.web.pages import PageConfig, refusal_status, security_headers
from hookline.web.portal import Health, grace_hours, receives, shown_payload
from hookline.web.session import Refused

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _endpoint(
    event_types: tuple[str, ...] | None, channels: tuple[str, ...] | None = None
) -> Endpoint:
    return Endpoint(
        id="ep_1",
        app_id="app_1",
        url="https://e.com",
        uid=None,
        description="",
        throttle_rate=None,
        disabled=False,
        event_types=event_types,
        channels=channels,
        metadata={},
        headers={},
        keys=(SigningKey("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),),
        created_at=NOW,
        updated_at=NOW,
    )


def test_an_endpoint_without_a_filter_receives_every_event_type() -> None:
    assert receives(_endpoint(None), "a.b") and receives(_endpoint(("a.b",)), "a.b")
    assert not receives(_endpoint(("c.d",)), "a.b") and receives(_endpoint(("c.d",)), None)


def test_an_endpoint_without_channels_receives_every_channel() -> None:
    """The channel filter is the routing rule: no channels, or the channel among them."""
    assert receives(_endpoint(None), None, "eu")
    assert receives(_endpoint(None, ("eu", "us")), None, "eu")
    assert not receives(_endpoint(None, ("us",)), None, "eu")
    assert not receives(_endpoint(("a.b",), ("eu",)), "c.d", "eu")


def test_a_payload_is_indented_cut_when_large_and_absent_once_expunged() -> None:
    assert shown_payload(None) is None
    assert shown_payload(b'{"a":1}') == '{\n  "a": 1\n}'
    large = b'"' + b"x" * 70_000 + b'"'
    shown = shown_payload(large)
    assert shown is not None and shown.endswith(f"(cut at 65536 of {len(large)} bytes)")


@pytest.mark.parametrize(("given", "hours"), [(None, 24), ("", 24), ("0", 0), ("168", 168)])
def test_the_overlap_of_a_rotation_is_0_to_168_hours(given: str | None, hours: int) -> None:
    assert grace_hours(given) == hours


@pytest.mark.parametrize("given", ["169", "-1", "1.5", "soon"])
def test_an_overlap_outside_0_to_168_whole_hours_is_refused(given: str) -> None:
    with pytest.raises(InvalidRequest):
        grace_hours(given)


def test_health_shows_no_share_without_attempts() -> None:
    """No attempts is no success share, not 0 %: nothing failed either."""
    empty = RollupSummary((0,) * len(COUNT_COLUMNS))
    assert Health.of("24 h", empty) == Health("24 h", 0, None, None)


def test_health_is_the_share_of_attempts_that_succeeded() -> None:
    counts = [0] * len(COUNT_COLUMNS)
    counts[COUNT_COLUMNS.index("attempts")] = 4
    counts[COUNT_COLUMNS.index("success")] = 3
    found = Health.of("7 d", RollupSummary(tuple(counts)))
    assert found.attempts == 4 and found.success_percent == 75.0


def test_a_refusal_has_the_status_the_api_gives_the_same_error() -> None:
    assert refusal_status(Unauthorized()) == 401 and refusal_status(NotFound()) == 404
    assert refusal_status(InvalidRequest("x")) == 422
    assert refusal_status(Refused(429, "slow down", "3")) == 429


def test_every_page_may_be_framed_only_where_configured_and_is_never_cached() -> None:
    headers = security_headers(PageConfig(frame_ancestors="https://a.example"), "n0nce")
    policy = headers["content-security-policy"]
    assert policy.endswith("frame-ancestors https://a.example")
    assert "script-src 'self';" in policy and "'nonce-n0nce'" in policy
    assert "http://127.0.0.1" not in policy
    assert headers["cache-control"] == "no-store"
    dev = security_headers(PageConfig(dev=True))["content-security-policy"]
    assert "img-src 'self' https: http://127.0.0.1:*" in dev
