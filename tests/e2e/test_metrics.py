"""``GET /metrics`` on a real ``hookline serve``: one process, two processes on one port,
and a separate ``hookline worker`` serving its own."""

from __future__ import annotations

import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.harness import (
    ADMIN_TOKEN,
    HooklineProcess,
    Receiver,
    free_port,
    sqlite_url,
    wait_until,
)

HEADERS = {"authorization": f"Bearer {ADMIN_TOKEN}"}
ACCEPTED = ("hookline_messages_accepted_total", ())
SUCCEEDED = ("hookline_attempts_total", (("outcome", "2xx"),))
DURATIONS = ("hookline_attempt_duration_seconds_count", ())
LATENCIES = ("hookline_delivery_latency_seconds_count", ())

ON = {"HOOKLINE_METRICS": "true"}
"""The default, said outright: these tests are about metrics being on."""

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(url: str) -> Samples:
    """A fresh connection per scrape, so with several processes any of them may answer."""
    response = httpx.get(f"{url}/metrics", timeout=5)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def endpoint_for(client: httpx.Client, receiver: Receiver, path: str) -> None:
    client.post("/api/v1/app", json={"name": "Metrics", "uid": "metrics"}).raise_for_status()
    client.post(
        "/api/v1/app/metrics/endpoint", json={"url": f"{receiver.url}{path}"}
    ).raise_for_status()


def publish(url: str, count: int) -> None:
    with httpx.Client(base_url=url, headers=HEADERS) as client:
        for i in range(count):
            client.post(
                "/api/v1/app/metrics/msg", json={"eventType": "e", "payload": {"i": i}}
            ).raise_for_status()


def test_a_server_counts_what_it_accepted_and_delivered(tmp_path: Path, receiver: Receiver) -> None:
    """After 20 publishes to one endpoint, /metrics (no token) reports 20 accepted messages,
    20 2xx attempts, 20 attempt durations and 20 end-to-end latencies, and the requests by
    route template and status class."""
    proc = HooklineProcess(sqlite_url(tmp_path), free_port(), ON, tmp_path).start("--dev")
    try:
        with httpx.Client(base_url=proc.url, headers=HEADERS) as client:
            endpoint_for(client, receiver, "/one")
        publish(proc.url, 20)
        wait_until(lambda: len(receiver.received("/one")) == 20, 20, "every delivery")
        wait_until(lambda: scrape(proc.url).get(SUCCEEDED) == 20, 10, "20 2xx attempts")
        samples = scrape(proc.url)
        assert samples[ACCEPTED] == 20
        assert samples[DURATIONS] == 20
        assert samples[LATENCIES] == 20
        published = (("method", "POST"), ("route", "/api/v1/app/{app_id}/msg"), ("status", "2xx"))
        assert samples[("hookline_api_requests_total", published)] == 20
    finally:
        assert proc.terminate() == 0, proc.output()


def test_an_application_the_operator_named_gets_series_of_its_own(
    tmp_path: Path, receiver: Receiver
) -> None:
    """With ``HOOKLINE_METRICS_APPLICATIONS`` naming a uid whose application is created
    after start, its attempts appear under that name once the look-up found it; the
    deployment's totals count them too."""
    named = {**ON, "HOOKLINE_METRICS_APPLICATIONS": "metrics"}
    proc = HooklineProcess(sqlite_url(tmp_path), free_port(), named, tmp_path).start("--dev")
    series = (
        "hookline_application_attempts_total",
        (("application", "metrics"), ("outcome", "2xx")),
    )
    try:
        assert scrape(proc.url)[series] == 0
        with httpx.Client(base_url=proc.url, headers=HEADERS) as client:
            endpoint_for(client, receiver, "/named")

        def counted_apart() -> bool:
            publish(proc.url, 1)
            return scrape(proc.url).get(series, 0) > 0

        wait_until(counted_apart, 30, "an attempt counted under the application's name")
        samples = scrape(proc.url)
        assert samples[SUCCEEDED] >= samples[series]
    finally:
        assert proc.terminate() == 0, proc.output()


def test_metrics_are_on_by_default_and_off_when_turned_off(tmp_path: Path) -> None:
    """Without a setting /metrics answers the exposition (no token); with
    HOOKLINE_METRICS=false it answers 404 with an error body."""
    proc = HooklineProcess(sqlite_url(tmp_path), free_port(), {}, tmp_path).start("--dev")
    try:
        assert "hookline_build_info" in httpx.get(f"{proc.url}/metrics").text
    finally:
        assert proc.terminate() == 0, proc.output()
    off, folder = {"HOOKLINE_METRICS": "false"}, tmp_path / "off"
    folder.mkdir()
    proc = HooklineProcess(sqlite_url(folder), free_port(), off, folder).start("--dev")
    try:
        response = httpx.get(f"{proc.url}/metrics")
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"
    finally:
        assert proc.terminate() == 0, proc.output()


def successes(counter_file: Path) -> float:
    """The 2xx attempts one process wrote to its file."""
    merged = MultiProcessCollector.merge([str(counter_file)])  # type: ignore[no-untyped-call]
    return sum(
        float(sample.value)
        for family in merged
        for sample in family.samples
        if sample.name == SUCCEEDED[0] and sample.labels == dict(SUCCEEDED[1])
    )


def worker_pids(db: Path) -> set[int]:
    with sqlite3.connect(db) as conn:
        return {pid for (pid,) in conn.execute("SELECT pid FROM workers")}


def test_two_processes_on_one_port_report_one_sum(tmp_path: Path, receiver: Receiver) -> None:
    """With ``serve --processes 2``, deliveries made by both processes are counted, and every
    scrape, whichever process answers it, reports the sum of both."""
    metrics_dir = tmp_path / "metrics"
    env = {**ON, "HOOKLINE_METRICS_DIR": str(metrics_dir)}
    proc = HooklineProcess(sqlite_url(tmp_path), free_port(), env, tmp_path).start(
        "--dev", "--processes", "2"
    )
    try:
        wait_until(lambda: len(worker_pids(tmp_path / "hookline.db")) == 2, 10, "two workers")
        children = worker_pids(tmp_path / "hookline.db")
        with httpx.Client(base_url=proc.url, headers=HEADERS) as client:
            endpoint_for(client, receiver, "/two")
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda _: publish(proc.url, 25), range(8)))
        wait_until(lambda: len(receiver.received("/two")) == 200, 30, "every delivery")
        wait_until(lambda: scrape(proc.url).get(SUCCEEDED) == 200, 10, "200 2xx attempts")
        # Each process delivered some and wrote its own counts: the sum is not one process's.
        delivered_by = {
            int(path.name.split("_")[1]): successes(path)
            for path in metrics_dir.glob("counter_*.db")
        }
        assert set(delivered_by) == children
        assert all(count > 0 for count in delivered_by.values()), delivered_by
        for _ in range(6):
            samples = scrape(proc.url)
            assert samples[ACCEPTED] == 200
            assert samples[SUCCEEDED] >= 200
    finally:
        assert proc.terminate() == 0, proc.output()


def test_a_separate_worker_serves_its_own_metrics(tmp_path: Path, receiver: Receiver) -> None:
    """``serve --no-worker`` counts what it accepted; ``worker --metrics-port`` counts what it
    delivered, on its own port."""
    api = HooklineProcess(sqlite_url(tmp_path), free_port(), ON, tmp_path).start(
        "--dev", "--no-worker"
    )
    metrics_port = free_port()
    worker = HooklineProcess(sqlite_url(tmp_path), free_port(), ON, tmp_path).start_worker(
        "--dev", "--metrics-port", str(metrics_port)
    )
    worker_url = f"http://127.0.0.1:{metrics_port}"
    try:
        with httpx.Client(base_url=api.url, headers=HEADERS) as client:
            endpoint_for(client, receiver, "/apart")
        publish(api.url, 10)
        wait_until(lambda: len(receiver.received("/apart")) == 10, 30, "every delivery")

        def delivered() -> float | None:
            try:
                return scrape(worker_url).get(SUCCEEDED)
            except httpx.HTTPError:
                return None

        wait_until(lambda: delivered() == 10, 10, "the worker's 10 2xx attempts")
        assert scrape(api.url)[ACCEPTED] == 10
        assert scrape(worker_url).get(ACCEPTED, 0) == 0
    finally:
        assert worker.terminate() == 0, worker.output()
        assert api.terminate() == 0, api.output()


def test_backlog_gauges_follow_a_queue_that_builds_and_drains(
    tmp_path: Path, receiver: Receiver
) -> None:
    """An endpoint paced to 10 deliveries a second gets 60 messages at once: the worker's
    background sample shows a due backlog with an oldest due age and one live worker, and,
    once everything arrived, a backlog of 0; first attempts record their lag."""
    env = {**ON, "HOOKLINE_BACKLOG_SAMPLE_INTERVAL": "0.2"}
    proc = HooklineProcess(sqlite_url(tmp_path), free_port(), env, tmp_path).start("--dev")
    try:
        with httpx.Client(base_url=proc.url, headers=HEADERS) as client:
            client.post("/api/v1/app", json={"name": "Metrics", "uid": "metrics"})
            paced = {"url": f"{receiver.url}/paced", "rateLimit": 10}
            client.post("/api/v1/app/metrics/endpoint", json=paced).raise_for_status()
        publish(proc.url, 60)
        backlog = ("hookline_due_backlog", ())
        wait_until(lambda: scrape(proc.url).get(backlog, 0) >= 10, 10, "a due backlog")
        samples = scrape(proc.url)
        assert samples[("hookline_oldest_due_age_seconds", ())] > 0
        assert samples[("hookline_live_workers", ())] == 1
        wait_until(lambda: len(receiver.received("/paced")) == 60, 30, "every delivery")
        wait_until(lambda: scrape(proc.url).get(backlog) == 0, 10, "an empty backlog")
        samples = scrape(proc.url)
        assert samples[("hookline_oldest_due_age_seconds", ())] == 0
        assert samples[("hookline_delivery_lag_seconds_count", ())] == 60
        assert samples[("hookline_delivery_lag_seconds_sum", ())] > 0
    finally:
        assert proc.terminate() == 0, proc.output()
