"""``--log-format json``: every line a real ``hookline serve`` writes is one JSON object,
and an attempt line carries its ids and status code as fields (docs/observability.md,
"Logs")."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.e2e.harness import (
    ADMIN_TOKEN,
    HooklineProcess,
    Receiver,
    free_port,
    json_lines,
    sqlite_url,
    wait_until,
)

SETTINGS = {"HOOKLINE_POLL_INTERVAL": "0.05"}
WAIT_SECONDS = 20.0


def test_serve_with_json_logs_writes_only_json_lines_with_attempt_fields(
    tmp_path: Path, receiver: Receiver
) -> None:
    """``serve --dev --log-format json`` publishing to a loopback receiver: every line of its
    output parses as a JSON object with time, level, logger and message; the attempt line
    names the message id, endpoint id, attempt id and status code as fields, the publish line
    names the message id and the caller's ``x-request-id`` (which the 202 echoes), and
    uvicorn's access line is JSON too."""
    server = HooklineProcess(sqlite_url(tmp_path), free_port(), dict(SETTINGS), tmp_path).start(
        "--dev", "--log-format", "json"
    )
    try:
        with httpx.Client(
            base_url=server.url, headers={"authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10
        ) as client:
            app = client.post("/api/v1/app", json={"name": "Logs"}).json()
            endpoint = client.post(
                f"/api/v1/app/{app['id']}/endpoint", json={"url": f"{receiver.url}/in"}
            ).json()
            published = client.post(
                f"/api/v1/app/{app['id']}/msg",
                json={"eventType": "e.x", "payload": {"n": 1}},
                headers={"x-request-id": "e2e-publish-1"},
            )
            message = published.json()
            wait_until(lambda: len(receiver.received("/in")) == 1, WAIT_SECONDS, "the delivery")
            wait_until(
                lambda: f'"msg_id": "{message["id"]}"' in server.output(),
                WAIT_SECONDS,
                "the attempt line",
            )
    finally:
        assert server.terminate() == 0, server.output()
    lines = json_lines(server.output())
    assert all({"time", "level", "logger", "message"} <= line.keys() for line in lines)
    assert published.headers["x-request-id"] == "e2e-publish-1"
    published_lines = [line for line in lines if line.get("request_id") == "e2e-publish-1"]
    (accepted,) = [line for line in published_lines if line["logger"] == "hookline.events"]
    assert accepted["msg_id"] == message["id"] and accepted["app_id"] == app["id"]
    assert {line["logger"] for line in published_lines} == {"hookline.events", "uvicorn.access"}
    (attempt,) = [
        line for line in lines if line.get("msg_id") == message["id"] and "attempt_id" in line
    ]
    assert attempt["logger"] == "hookline.events" and attempt["level"] == "INFO"
    assert attempt["endpoint_id"] == endpoint["id"]
    assert attempt["attempt_id"].startswith("atmpt_")
    assert attempt["status_code"] == 200
    assert any(
        line["logger"] == "uvicorn.access" and "POST /api/v1/app/" in line["message"]
        for line in lines
    )
