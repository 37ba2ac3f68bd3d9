"""Schemathesis against a real ``hookline serve`` on loopback (issue 14, "attacked in CI").

The fuzzer reads the server's own OpenAPI document and sends every operation schema-valid
and schema-violating requests (coverage, fuzzing and stateful phases), with the admin token,
and without it or with a broken one. It fails on any 5xx, on an answer whose status, content
type, headers or body the document does not declare, on a request that breaks the document
and is accepted anyway, on a method a path does not have that is not a 405 with ``Allow``,
and on a route that ignores its token.

One check is left out, ``positive_data_acceptance`` (a request the document allows must
not get a 4xx): the server also refuses, with a 422 naming the field, requests that no JSON
Schema can describe, so it would fail for a correct server: an event type or operational
event type that does not exist, ``payloadRetentionPeriod`` with ``payloadRetentionHours``,
a policy field that is unknown, an integer sent as ``5.0``, a date-time outside 1970-2099
(ids cannot hold it), a header name that is not an HTTP token or is reserved, or a URL
whose host cannot be dialled. Its opposite,
``negative_data_rejection``, stays on: whatever the document forbids is refused.

One check is left out on two operations, ``ensure_resource_availability`` on ``GET
…/endpoint/{endpoint_id}/oauth`` and ``…/mtls``: the fuzzer infers a link from ``POST
…/endpoint`` to them and calls their 404 a created resource gone, but a new endpoint has no
OAuth or mTLS configuration until one is PUT, and that 404 is the documented answer (it
showed once the statistics routes changed which scenarios seed 1 draws).

Bounded for ``make test``: ``MAX_EXAMPLES`` cases per operation and phase with a fixed seed,
so a run is reproducible; it takes about 35 s on a 2-core machine, and the subprocess is
killed at ``RUN_TIMEOUT_SECONDS``. Set ``HOOKLINE_SCHEMATHESIS_SEED`` to explore other seeds
locally.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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

MAX_EXAMPLES = 10
SEED = os.environ.get("HOOKLINE_SCHEMATHESIS_SEED", "1")
RUN_TIMEOUT_SECONDS = 150.0
EXCLUDED_CHECKS = ("positive_data_acceptance",)
"""Why: the module's docstring."""
SERVER_ENV = {
    # The fuzzer sends missing and broken tokens on purpose (ignored_auth,
    # missing_required_header); the failed-authentication limit would otherwise answer
    # 429 to the rest of the run. 429 is documented; it would only hide the real answers.
    "HOOKLINE_API_AUTH_FAILURE_RATE": "0",
    # The fuzzer creates many endpoints in the applications it finds.
    "HOOKLINE_MAX_ENDPOINTS_PER_APP": "0",
}


SEED_ENV = {"HOOKLINE_RETRY_SCHEDULE": "", "HOOKLINE_POLL_INTERVAL": "0.05"}
"""The seeding run delivers once, to a receiver answering 500: an attempt, a dead letter."""
REJECTIONS = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429"]
"""What counts as refusing a request the document forbids: the fuzzer's own list, and 413."""
PROBABILITY = 0.5
"""How often a path parameter takes a seeded object's id rather than a generated value."""


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(status_for={"/": lambda _: 500}).start()
    yield r
    r.stop()


@pytest.mark.timeout(RUN_TIMEOUT_SECONDS + 60)
def test_schemathesis_finds_no_5xx_and_no_answer_outside_the_document(
    tmp_path: Path, receiver: Receiver
) -> None:
    """Every operation of /api/v1/openapi.json, fuzzed against the running server: no 5xx,
    every answer's status, content type, headers and body as documented, every request the
    document forbids refused, every token-guarded route refusing a missing or bad token.

    Real objects of every kind are made first (with the worker, in ``--dev``, delivering to a
    local receiver) and the fuzzer's path parameters take their ids half the time, so it
    reaches messages, attempts and tasks and not only 404s. It then runs against the same
    database without the worker (``--no-worker``): the fuzzer's endpoints point at random
    public host names, and nothing of the API depends on deliveries being tried.
    """
    server = HooklineProcess(sqlite_url(tmp_path), free_port(), dict(SEED_ENV), tmp_path)
    server.start("--dev")
    try:
        seeded = _seed(server.url, receiver)
    finally:
        assert server.terminate() == 0, server.output()
    (tmp_path / "schemathesis.toml").write_text(_config(seeded))
    server.env = dict(SERVER_ENV)
    server.start("--no-worker")
    try:
        run = subprocess.run(
            _command(server.url, tmp_path / "schemathesis.toml"),
            cwd=tmp_path,  # Schemathesis keeps its caches in the working directory
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_SECONDS,
            check=False,
        )
    finally:
        code = server.terminate()
    assert run.returncode == 0, f"{run.stdout[-30000:]}\n{run.stderr[-5000:]}"
    assert code == 0, server.output()


def _seed(url: str, receiver: Receiver) -> dict[str, list[str]]:
    """One object of every kind, by id and by uid where it has one: each path parameter's
    values for the fuzzer."""
    with httpx.Client(base_url=url, headers={"authorization": f"Bearer {ADMIN_TOKEN}"}) as c:

        def made(method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
            r = c.request(method, path, json=body)
            assert r.is_success, (path, r.text)
            return dict(r.json())

        app = made("POST", "/api/v1/app", {"name": "Seed", "uid": "seed"})
        made("POST", "/api/v1/event-type", {"name": "seed.created", "description": "d"})
        endpoint = made("POST", "/api/v1/app/seed/endpoint", {"url": receiver.url, "uid": "ep"})
        msg = made("POST", "/api/v1/app/seed/msg", {"eventType": "seed.created", "payload": {}})
        attempts = f"/api/v1/app/seed/attempt/msg/{msg['id']}"
        wait_until(lambda: bool(c.get(attempts).json()["data"]), 10, "the seeded attempt")
        attempt = c.get(attempts).json()["data"][0]
        since = {"since": "2020-01-01T00:00:00Z"}
        task = made("POST", "/api/v1/app/seed/endpoint/ep/recover", since)
        operational = made("POST", "/api/v1/operational-webhook/endpoint", {"url": receiver.url})
        token = made("POST", "/api/v1/token", {"name": "seed", "appId": "seed"})
    return {
        "app_id": [app["id"], "seed"],
        "endpoint_id": [endpoint["id"], "ep", operational["id"]],
        "msg_id": [msg["id"]],
        "attempt_id": [attempt["id"]],
        "task_id": [task["id"]],
        "event_type_name": ["seed.created"],
        "token_id": [token["id"]],
    }


def _config(seeded: dict[str, list[str]]) -> str:
    """A schemathesis.toml binding each path parameter to its seeded values."""
    lines = []
    for name, values in seeded.items():
        lines += [f"[dictionaries.{name}]", f"values = {json.dumps(values)}", ""]
    lines.append("[parameters]")
    for name in seeded:
        lines.append(f'"path.{name}" = {{ dictionary = "{name}", probability = {PROBABILITY} }}')
    lines += [
        "",
        # A body over HOOKLINE_MAX_PAYLOAD_BYTES is refused before it is read, with 413,
        # which the fuzzer's list of rejections lacks (a 6 MB string of surrogate pairs
        # reached it once); the rest of its list stands.
        "[checks.negative_data_rejection]",
        f"expected-statuses = {json.dumps(REJECTIONS)}",
        "",
        "[[operations]]",
        'include-path-regex = "/(oauth|mtls)$"',
        "phases.stateful.enabled = false",
    ]
    return "\n".join(lines) + "\n"


def _command(base_url: str, config: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(config),
        "run",
        f"{base_url}/api/v1/openapi.json",
        "--header",
        f"Authorization: Bearer {ADMIN_TOKEN}",
        "--checks",
        "all",
        "--exclude-checks",
        ",".join(EXCLUDED_CHECKS),
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        SEED,
        "--workers",
        "1",
        "--request-timeout",
        "10",
        "--generation-database",
        "none",
        "--no-color",
    ]
