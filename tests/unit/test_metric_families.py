"""``EXPORTED_FAMILIES``, the list the shipped alerts and dashboard are checked against, is
what a scrape really shows: every family, with its type, and no other."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from hookline.instrumentation import (
    AttemptFinished,
    BatchCommitted,
    BreakerOpened,
    DeliveryExhausted,
    EndpointDisabled,
    Event,
    MessageAccepted,
    MetricsHook,
    RequestServed,
)
from hookline.instrumentation._metrics import EXPORTED_FAMILIES


def exposed_families(hook: MetricsHook) -> dict[str, str]:
    text = hook.exposition().decode()
    return {family.name: family.type for family in text_string_to_metric_families(text)}


def test_the_exported_families_are_what_a_scrape_shows_once_every_event_was_seen(
    tmp_path: Path,
) -> None:
    """After one event of every kind the hook listens to, the scrape's families and their types
    are exactly ``EXPORTED_FAMILIES``."""
    hook = MetricsHook(str(tmp_path), "1")
    now = datetime.now(UTC)
    events: list[Event] = [
        MessageAccepted("app_1", "msg_1", "e", 10, 1),
        AttemptFinished(
            "app_1", "msg_1", "ep_1", "atmpt_1", 200, None, 5, 1, False, "success", now
        ),
        DeliveryExhausted("app_1", "msg_1", "ep_1", 8),
        BreakerOpened("ep_1", 20, 5.0),
        EndpointDisabled("app_1", "ep_1", "410 Gone"),
        RequestServed("POST", "/api/v1/app/{app_id}/msg", 202, 0.002),
        BatchCommitted("sqlite", publishes=1, messages=1, records=1, duration_s=0.002),
    ]
    assert {type(event) for event in events} == hook.events
    for event in events:
        hook(event)
    assert exposed_families(hook) == EXPORTED_FAMILIES


def test_a_fresh_scrape_shows_only_exported_families(tmp_path: Path) -> None:
    """Before any event, every family a scrape shows is one of ``EXPORTED_FAMILIES``, with the
    type listed there."""
    exposed = exposed_families(MetricsHook(str(tmp_path), "1"))
    assert exposed
    assert exposed.items() <= EXPORTED_FAMILIES.items()
