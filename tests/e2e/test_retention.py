"""Retention in a real ``hookline serve``: delivered messages past the horizon are pruned by
the process's own pruning job, while one whose delivery is still being retried is kept."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.harness import (
    ADMIN_TOKEN,
    HooklineProcess,
    Receiver,
    free_port,
    sqlite_url,
    wait_until,
)

HEADERS = {"authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    r.status_for["/down"] = lambda _: 500
    yield r
    r.stop()


def test_serve_prunes_delivered_messages_and_keeps_one_still_being_retried(
    tmp_path: Path, receiver: Receiver
) -> None:
    """With a 2 s horizon, a delivered message disappears from the API (404) within a few
    pruning passes; a message whose endpoint keeps failing, with retries still due, stays."""
    proc = HooklineProcess(
        sqlite_url(tmp_path),
        free_port(),
        {
            "HOOKLINE_RETENTION": "2s",
            "HOOKLINE_PRUNE_INTERVAL": "0.2",
            "HOOKLINE_RETRY_SCHEDULE": "3600",
        },
        tmp_path,
    ).start("--dev")
    try:
        with httpx.Client(base_url=proc.url, headers=HEADERS) as client:
            client.post("/api/v1/app", json={"name": "R", "uid": "r"}).raise_for_status()
            for uid, path in (("up", "/up"), ("down", "/down")):
                client.post(
                    "/api/v1/event-type", json={"name": uid, "description": uid}
                ).raise_for_status()
                client.post(
                    "/api/v1/app/r/endpoint",
                    json={"url": f"{receiver.url}{path}", "uid": uid, "filterTypes": [uid]},
                ).raise_for_status()
            delivered = client.post("/api/v1/app/r/msg", json={"eventType": "up", "payload": {}})
            retried = client.post("/api/v1/app/r/msg", json={"eventType": "down", "payload": {}})
            delivered_id, retried_id = delivered.json()["id"], retried.json()["id"]
            wait_until(lambda: len(receiver.received("/down")) == 1, 10, "the failed attempt")

            def gone(msg_id: str) -> bool:
                return client.get(f"/api/v1/app/r/msg/{msg_id}").status_code == 404

            wait_until(lambda: gone(delivered_id), 15, "the delivered message to be pruned")
            assert not gone(retried_id)
            attempts = client.get(f"/api/v1/app/r/attempt/msg/{retried_id}").json()["data"]
            assert [a["responseStatusCode"] for a in attempts] == [500]
    finally:
        assert proc.terminate() == 0, proc.output()
