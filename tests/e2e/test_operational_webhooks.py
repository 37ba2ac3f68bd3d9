"""Operational webhooks end to end: the real ``hookline serve`` process on SQLite, the svix
SDK's operational-webhook API, and a real receiver that verifies every operational webhook
with the public ``standardwebhooks`` package.

The auto-disable period is two seconds here (``HOOKLINE_AUTO_DISABLE_AFTER`` takes
seconds), so the warnings and the disable come within the test instead of after days.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks import Webhook
from svix.api import ApplicationIn, EndpointIn, MessageIn, Svix, SvixOptions
from svix.models import OperationalWebhookEndpointIn

from tests.e2e.harness import (
    ADMIN_TOKEN,
    HooklineProcess,
    Receiver,
    free_port,
    sqlite_url,
    wait_until,
)

SETTINGS = {
    # Five attempts: the fourth failure is "failing", the fifth "exhausted".
    "HOOKLINE_RETRY_SCHEDULE": "0.05,0.05,0.05,0.05",
    "HOOKLINE_REQUEST_TIMEOUT": "2",
    "HOOKLINE_LEASE_SECONDS": "3",
    "HOOKLINE_POLL_INTERVAL": "0.05",
    "HOOKLINE_BREAKER_THRESHOLD": "100",
    "HOOKLINE_AUTO_DISABLE_AFTER": "2",
}


@pytest.fixture
def hookline(tmp_path: Path) -> Iterator[HooklineProcess]:
    proc = HooklineProcess(sqlite_url(tmp_path), free_port(), dict(SETTINGS), tmp_path)
    proc.start("--dev")
    yield proc
    if proc.process is not None and proc.process.poll() is None:
        assert proc.terminate() == 0, proc.output()


def _events(receiver: Receiver, secret: str) -> list[dict[str, Any]]:
    """Every operational webhook received so far, each verified against ``secret``."""
    found = []
    for request in receiver.received("/ops"):
        headers = {k.lower(): v for k, v in request.headers.items()}
        Webhook(secret).verify(request.body, headers)
        found.append(json.loads(request.body))
    return found


def _types(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]


def test_a_failing_endpoint_is_reported_warned_about_and_disabled(
    hookline: HooklineProcess, receiver: Receiver
) -> None:
    """An operator subscribed through the SDK receives, signed: the endpoint's creation, its
    delivery failing at the fourth attempt and exhausted at the last, the warnings, and its
    automatic disable with the time it began failing; the endpoint then reads disabled."""
    svix = Svix(ADMIN_TOKEN, SvixOptions(server_url=hookline.url))
    ops_endpoint = svix.operational_webhook.endpoint.create(
        OperationalWebhookEndpointIn(url=f"{receiver.url}/ops")
    )
    secret = svix.operational_webhook.endpoint.get_secret(ops_endpoint.id).key
    receiver.status_for["/down"] = lambda _: 500
    app = svix.application.create(ApplicationIn(name="Acme", uid="acme"))
    down = svix.endpoint.create(app.id, EndpointIn(url=f"{receiver.url}/down", uid="down"))
    msg = svix.message.create(app.id, MessageIn(event_type="order.paid", payload={"n": 1}))

    wait_until(
        lambda: "endpoint.disabled" in _types(_events(receiver, secret)),
        15,
        "endpoint.disabled",
    )
    events = _events(receiver, secret)
    by_type = {e["type"]: e["data"] for e in events}
    assert by_type["endpoint.created"] == {
        "appId": app.id,
        "appUid": "acme",
        "endpointId": down.id,
        "endpointUid": "down",
    }
    failing, exhausted = by_type["message.attempt.failing"], by_type["message.attempt.exhausted"]
    for data in (failing, exhausted):
        assert (data["appId"], data["appUid"], data["msgId"], data["endpointId"]) == (
            app.id,
            "acme",
            msg.id,
            down.id,
        )
        assert data["lastAttempt"]["responseStatusCode"] == 500
        assert data["lastAttempt"]["id"].startswith("atmpt_")
    assert len(receiver.received("/down")) == 5
    disabled = by_type["endpoint.disabled"]
    assert disabled["trigger"] == "automatic"
    assert disabled["endpointId"] == down.id and disabled["failSince"]
    warnings = [e["data"] for e in events if e["type"] == "endpoint.failing"]
    assert warnings and all(w["disableAt"] > w["failSince"] for w in warnings)
    assert _types(events).index("endpoint.failing") < _types(events).index("endpoint.disabled")
    assert svix.endpoint.get(app.id, down.id).disabled is True
