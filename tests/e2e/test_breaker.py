"""The circuit breaker and fallback destinations, end to end: real ``hookline`` processes, a
real receiver on loopback, the API showing what holds a delivery.

On SQLite, one ``serve`` process: a down endpoint's circuit opens, shows in the API, one
probe closes it, and what the primary exhausts reaches its fallback signed with the
fallback's secret. On PostgreSQL, an API process and two worker processes: one probe across
both workers, and every held delivery goes out once it succeeds.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from standardwebhooks import Webhook

from tests.conftest import POSTGRES_URL, database_url
from tests.e2e.harness import (
    ADMIN_TOKEN,
    HooklineProcess,
    Receiver,
    free_port,
    sqlite_url,
    wait_until,
)

ENV = {
    "HOOKLINE_RETRY_SCHEDULE": "0.2,0.2,0.2,0.2,0.2,0.2,0.2,0.2,0.2,0.2",
    "HOOKLINE_REQUEST_TIMEOUT": "5",
    "HOOKLINE_BREAKER_THRESHOLD": "2",
    "HOOKLINE_BREAKER_COOLDOWN": "1",
    "HOOKLINE_HEARTBEAT_INTERVAL": "0.2",
    "HOOKLINE_POLL_INTERVAL": "0.1",
}


def _client(proc: HooklineProcess) -> httpx.Client:
    return httpx.Client(
        base_url=proc.url, headers={"authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10
    )


def _endpoint(client: httpx.Client, app_id: str, body: dict[str, Any]) -> dict[str, Any]:
    created = client.post(f"/api/v1/app/{app_id}/endpoint", json=body)
    assert created.status_code == 201, created.text
    return dict(created.json())


def _circuit(client: httpx.Client, app_id: str, endpoint_id: str) -> dict[str, Any]:
    shown = client.get(f"/api/v1/app/{app_id}/endpoint/{endpoint_id}")
    return dict(shown.json()["circuit"])


def _statuses(client: httpx.Client, app_id: str, endpoint_id: str) -> dict[str, int]:
    stats = client.get(f"/api/v1/app/{app_id}/endpoint/{endpoint_id}/stats").json()
    return {k: v for k, v in stats.items() if k != "circuit"}


def _circuit_events(receiver: Receiver, secret: str) -> dict[str, dict[str, Any]]:
    """The circuit operational webhooks received so far, by type in order of arrival, each
    verified against ``secret``; a type heard twice fails the test."""
    heard: dict[str, dict[str, Any]] = {}
    for request in receiver.received("/ops"):
        Webhook(secret).verify(request.body, request.headers)
        body = json.loads(request.body)
        if body["type"].startswith("endpoint.circuit."):
            assert body["type"] not in heard, f"{body['type']} sent twice"
            heard[body["type"]] = body["data"]
    return heard


def test_a_down_endpoint_opens_shows_and_closes_and_its_fallback_takes_what_it_exhausted(
    tmp_path: Path, receiver: Receiver
) -> None:
    """On SQLite: 503s open the endpoint's circuit, which the endpoint and its stats show;
    once the receiver answers again one probe closes it and every held message arrives. An
    operator's operational-webhook endpoint hears, signed, one ``endpoint.circuit.opened``
    (whatever the failed probes) and one ``endpoint.circuit.closed``.
    Another endpoint (its breaker set not to open) that exhausts its retries hands the
    message to its fallback,
    which receives it signed with its own secret, and the attempt log names the endpoint it
    stood in for."""
    down = {"on": True}
    receiver.status_for["/down"] = lambda _: 503 if down["on"] else 200
    receiver.status_for["/gone-wrong"] = lambda _: 500
    proc = HooklineProcess(sqlite_url(tmp_path), free_port(), ENV, tmp_path).start("--dev")
    try:
        with _client(proc) as client:
            ops = client.post(
                "/api/v1/operational-webhook/endpoint", json={"url": f"{receiver.url}/ops"}
            )
            assert ops.status_code == 201, ops.text
            app = client.post("/api/v1/app", json={"name": "Breaker"}).json()["id"]
            flaky = _endpoint(client, app, {"url": f"{receiver.url}/down", "filterTypes": None})
            backup = _endpoint(client, app, {"url": f"{receiver.url}/backup", "channels": ["x"]})
            primary = _endpoint(
                client,
                app,
                {
                    "url": f"{receiver.url}/gone-wrong",
                    "channels": ["p"],
                    "policy": {
                        "breaker": {"threshold": 100},
                        "fallback": {"endpointId": backup["id"]},
                    },
                },
            )
            for n in range(5):
                sent = client.post(
                    f"/api/v1/app/{app}/msg", json={"eventType": "e", "payload": {"n": n}}
                )
                assert sent.status_code == 202, sent.text
            wait_until(
                lambda: _circuit(client, app, flaky["id"])["state"] != "closed",
                15,
                "the down endpoint's circuit to open",
            )
            shown = _circuit(client, app, flaky["id"])
            assert shown["consecutiveFailures"] >= 2 and shown["nextProbeAt"] is not None
            stats = client.get(f"/api/v1/app/{app}/endpoint/{flaky['id']}/stats").json()
            assert stats["circuit"]["state"] in ("open", "halfOpen")
            down["on"] = False
            wait_until(
                lambda: _statuses(client, app, flaky["id"])["success"] == 5,
                20,
                "every held message to reach the endpoint once it answers",
            )
            assert _circuit(client, app, flaky["id"])["state"] == "closed"
            ops_secret = client.get(
                f"/api/v1/operational-webhook/endpoint/{ops.json()['id']}/secret"
            ).json()["key"]
            wait_until(
                lambda: "endpoint.circuit.closed" in _circuit_events(receiver, ops_secret),
                15,
                "the operational webhook saying the circuit closed",
            )
            heard = _circuit_events(receiver, ops_secret)
            assert list(heard) == ["endpoint.circuit.opened", "endpoint.circuit.closed"]
            opened = heard["endpoint.circuit.opened"]
            assert (opened["appId"], opened["endpointId"]) == (app, flaky["id"])
            assert opened["consecutiveFailures"] >= 2 and opened["probeAt"] is not None
            assert heard["endpoint.circuit.closed"]["endpointId"] == flaky["id"]

            sent = client.post(
                f"/api/v1/app/{app}/msg",
                json={"eventType": "e", "payload": {"to": "primary"}, "channels": ["p"]},
            )
            msg_id = sent.json()["id"]
            wait_until(lambda: bool(receiver.received("/backup")), 15, "the fallback")
            (request,) = receiver.received("/backup")
            secret = client.get(f"/api/v1/app/{app}/endpoint/{backup['id']}/secret").json()
            Webhook(secret["key"]).verify(request.body, request.headers)

            def stood_in() -> dict[str, str | None]:
                path = f"/api/v1/app/{app}/attempt/msg/{msg_id}"
                attempts = client.get(path).json()["data"]
                wanted = (primary["id"], backup["id"])
                return {
                    a["endpointId"]: a["fallbackFor"] for a in attempts if a["endpointId"] in wanted
                }

            wait_until(lambda: backup["id"] in stood_in(), 10, "the fallback's attempt")
            assert stood_in() == {primary["id"]: None, backup["id"]: primary["id"]}
    finally:
        assert proc.terminate() == 0, proc.output()


@pytest.fixture
async def database() -> AsyncIterator[str]:
    name = f"hookline_breaker_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(POSTGRES_URL)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.mark.skipif(POSTGRES_URL is None, reason="needs HOOKLINE_TEST_POSTGRES_URL (CI sets it)")
async def test_two_worker_processes_send_one_probe_and_both_resume_on_its_success(
    database: str, tmp_path: Path, receiver: Receiver
) -> None:
    """On PostgreSQL with two worker processes that both know the circuit is open: while the
    one probe is held at the receiver no other request reaches the endpoint (the API shows it
    half-open with the probe out); once the probe succeeds every held delivery is
    delivered."""
    url = database_url(database)
    down = {"on": True}
    receiver.status_for["/down"] = lambda _: 503 if down["on"] else 200
    HooklineProcess(url, 0, ENV, tmp_path).run_command("migrate")
    api = HooklineProcess(url, free_port(), ENV, tmp_path).start("--no-worker", "--dev")
    workers = [HooklineProcess(url, 0, ENV, tmp_path).start_worker("--dev") for _ in range(2)]
    try:
        with _client(api) as client:
            app = client.post("/api/v1/app", json={"name": "Breaker"}).json()["id"]
            flaky = _endpoint(client, app, {"url": f"{receiver.url}/down"})
            for n in range(20):
                sent = client.post(
                    f"/api/v1/app/{app}/msg", json={"eventType": "e", "payload": {"n": n}}
                )
                assert sent.status_code == 202, sent.text
            wait_until(
                lambda: _circuit(client, app, flaky["id"])["state"] == "open",
                20,
                "the circuit to open",
            )
            # A worker learns of a circuit another opened at its next heartbeat, and may send
            # meanwhile; once a probe has failed and re-opened the circuit, both know it.
            first_probe = _circuit(client, app, flaky["id"])["nextProbeAt"]

            def reopened() -> bool:
                circuit = _circuit(client, app, flaky["id"])
                return circuit["state"] == "open" and circuit["nextProbeAt"] != first_probe

            wait_until(reopened, 20, "a failed probe to re-open the circuit")
            before = len(receiver.received("/down"))
            receiver.hold_after = len(receiver.requests)
            down["on"] = False
            wait_until(lambda: len(receiver.received("/down")) == before + 1, 20, "the one probe")
            wait_until(
                lambda: _circuit(client, app, flaky["id"])["probing"],
                5,
                "the API to show the probe out",
            )
            # Five heartbeats and past the cooldown of both workers, with the probe held:
            # a second probe would have arrived by now.
            _sleep_while_holding(receiver, 1.5)
            assert len(receiver.received("/down")) == before + 1, "one probe across workers"
            assert _circuit(client, app, flaky["id"])["state"] == "halfOpen"
            receiver.hold.set()
            wait_until(
                lambda: _statuses(client, app, flaky["id"])["success"] == 20,
                30,
                "every held delivery after the probe's success",
            )
            assert _circuit(client, app, flaky["id"])["state"] == "closed"
    finally:
        receiver.hold.set()
        for proc in [*workers, api]:
            assert proc.terminate() == 0, proc.output()


def _sleep_while_holding(receiver: Receiver, seconds: float) -> None:
    """Let time pass with the probe held at the receiver (nothing to wait for: the test
    checks that nothing else arrives meanwhile)."""
    assert not receiver.hold.wait(seconds)
