"""A real Prometheus (Debian's ``prometheus``, which ``make test`` installs) scrapes a real
``hookline serve`` every second with the shipped rules loaded."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.e2e.harness import (
    ADMIN_TOKEN,
    HooklineProcess,
    Receiver,
    free_port,
    sqlite_url,
    wait_until,
)

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "hookline.json"
HEADERS = {"authorization": f"Bearer {ADMIN_TOKEN}"}
PUBLISHED = 12
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$job": "hookline"}
"""What Grafana puts in place of the dashboard's variables before it sends a query."""


def prometheus_config(hookline_port: int) -> dict[str, Any]:
    return {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(RULES)],
        "scrape_configs": [
            {
                "job_name": "hookline",
                "static_configs": [{"targets": [f"127.0.0.1:{hookline_port}"]}],
            }
        ],
    }


@pytest.fixture
def prometheus(tmp_path: Path, hookline: HooklineProcess) -> Iterator[str]:
    """Prometheus on a free loopback port, its configuration and storage in ``tmp_path``;
    yields its URL."""
    binary = shutil.which("prometheus")
    assert binary is not None, "prometheus is missing: `make test` installs Debian's package"
    config = tmp_path / "prometheus.yml"
    config.write_text(yaml.safe_dump(prometheus_config(hookline.port)))
    port = free_port()
    log = (tmp_path / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        if process.poll() is not None:
            raise AssertionError((tmp_path / "prometheus.log").read_text())
        try:
            return httpx.get(f"{url}/-/ready", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(ready, 30, "Prometheus to be ready")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        log.close()


@pytest.fixture
def hookline(tmp_path: Path) -> Iterator[HooklineProcess]:
    env = {"HOOKLINE_METRICS": "true"}
    proc = HooklineProcess(sqlite_url(tmp_path), free_port(), env, tmp_path).start("--dev")
    try:
        yield proc
    finally:
        assert proc.terminate() == 0, proc.output()


def api(prometheus: str, path: str, **params: str) -> Any:
    response = httpx.get(f"{prometheus}/api/v1/{path}", params=params, timeout=5)
    body = response.json()
    assert body["status"] == "success", body
    return body["data"]


def accepted(prometheus: str) -> float | None:
    result = api(prometheus, "query", query='hookline_messages_accepted_total{job="hookline"}')
    return float(result["result"][0]["value"][1]) if result["result"] else None


def rule_health(prometheus: str) -> dict[str, str]:
    """Each loaded rule's name (an alert's name is shared by its severities) and health."""
    groups = api(prometheus, "rules")["groups"]
    return {
        f"{rule['name']}/{rule.get('labels', {}).get('severity', '')}": rule["health"]
        for group in groups
        for rule in group["rules"]
    }


def shipped_rule_names() -> set[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {
        f"{rule.get('alert') or rule['record']}/{rule.get('labels', {}).get('severity', '')}"
        for group in groups
        for rule in group["rules"]
    }


def test_prometheus_scrapes_hookline_and_evaluates_the_shipped_rules(
    hookline: HooklineProcess, prometheus: str, receiver: Receiver
) -> None:
    """Prometheus scraping ``hookline serve`` every second reports as many accepted messages
    as were published, evaluates every shipped rule with health "ok", and accepts every
    query of the shipped dashboard."""
    with httpx.Client(base_url=hookline.url, headers=HEADERS) as client:
        client.post("/api/v1/app", json={"name": "Kit", "uid": "kit"}).raise_for_status()
        client.post(
            "/api/v1/app/kit/endpoint", json={"url": f"{receiver.url}/kit"}
        ).raise_for_status()
        for i in range(PUBLISHED):
            client.post(
                "/api/v1/app/kit/msg", json={"eventType": "e", "payload": {"i": i}}
            ).raise_for_status()
    wait_until(lambda: len(receiver.received("/kit")) == PUBLISHED, 30, "every delivery")
    wait_until(
        lambda: accepted(prometheus) == PUBLISHED, 60, f"Prometheus to see {PUBLISHED} accepted"
    )

    expected = shipped_rule_names()

    def every_rule_evaluated() -> bool:
        health = rule_health(prometheus)
        assert "err" not in health.values(), health
        return set(health) == expected and set(health.values()) == {"ok"}

    wait_until(every_rule_evaluated, 30, "every shipped rule evaluated with health ok")

    board = json.loads(DASHBOARD.read_text())
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            query = target["expr"]
            for variable, value in GRAFANA_VARIABLES.items():
                query = query.replace(variable, value)
            api(prometheus, "query", query=query)
