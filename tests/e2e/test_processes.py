"""``hookline serve --processes 2``: two servers on one port and one SQLite file."""

from __future__ import annotations

import os
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from standardwebhooks import Webhook

from tests.e2e.harness import (
    ADMIN_TOKEN,
    HooklineProcess,
    Receiver,
    free_port,
    sqlite_url,
    wait_until,
)

HEADERS = {"authorization": f"Bearer {ADMIN_TOKEN}"}


def worker_pids(db: Path) -> set[int]:
    with sqlite3.connect(db) as conn:
        return {pid for (pid,) in conn.execute("SELECT pid FROM workers")}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_two_processes_share_the_port_and_deliver_every_message(
    tmp_path: Path, receiver: Receiver
) -> None:
    """Both processes run a worker; 300 messages published over 12 connections all arrive,
    signed; SIGTERM stops both processes and the parent exits 0."""
    proc = HooklineProcess(sqlite_url(tmp_path), free_port(), {}, tmp_path).start(
        "--dev", "--processes", "2"
    )
    db = tmp_path / "hookline.db"
    try:
        wait_until(lambda: len(worker_pids(db)) == 2, 10, "two worker processes")
        children = worker_pids(db)
        assert proc.process is not None and proc.process.pid not in children
        with httpx.Client(base_url=proc.url, headers=HEADERS) as client:
            client.post("/api/v1/app", json={"name": "Multi", "uid": "multi"}).raise_for_status()
            endpoint = client.post(
                "/api/v1/app/multi/endpoint", json={"url": f"{receiver.url}/multi"}
            )
            endpoint.raise_for_status()
            secret = client.get(
                f"/api/v1/app/multi/endpoint/{endpoint.json()['id']}/secret"
            ).json()["key"]

        def publish(batch: int) -> list[str]:
            with httpx.Client(base_url=proc.url, headers=HEADERS) as client:
                return [
                    client.post(
                        "/api/v1/app/multi/msg", json={"eventType": "e", "payload": {"i": i}}
                    ).json()["id"]
                    for i in range(25)
                ]

        with ThreadPoolExecutor(12) as pool:
            sent = {msg_id for ids in pool.map(publish, range(12)) for msg_id in ids}
        assert len(sent) == 300
        wait_until(
            lambda: {r.headers["webhook-id"] for r in receiver.received("/multi")} >= sent,
            30,
            "every message to arrive",
        )
        for request in receiver.received("/multi"):
            Webhook(secret).verify(request.body, {k.lower(): v for k, v in request.headers.items()})
    finally:
        assert proc.terminate() == 0, proc.output()
    assert not any(alive(pid) for pid in children)


def test_a_process_that_dies_stops_the_others_and_the_parent_fails(tmp_path: Path) -> None:
    """kill -9 of one server process makes the parent stop the other and exit 1, so a
    process manager restarts hookline whole instead of running it at half strength."""
    proc = HooklineProcess(sqlite_url(tmp_path), free_port(), {}, tmp_path).start(
        "--processes", "2"
    )
    db = tmp_path / "hookline.db"
    wait_until(lambda: len(worker_pids(db)) == 2, 10, "two worker processes")
    victim, other = sorted(worker_pids(db))
    os.kill(victim, 9)
    assert proc.process is not None
    assert proc.process.wait(30) == 1, proc.output()
    wait_until(lambda: not alive(other), 10, "the other process to stop")


def test_killing_the_parent_leaves_no_server_behind(tmp_path: Path) -> None:
    """kill -9 of the parent takes its children with it (the kernel is asked to stop them),
    so no unsupervised server keeps answering on the port."""
    proc = HooklineProcess(sqlite_url(tmp_path), free_port(), {}, tmp_path).start(
        "--processes", "2"
    )
    db = tmp_path / "hookline.db"
    wait_until(lambda: len(worker_pids(db)) == 2, 10, "two worker processes")
    children = worker_pids(db)
    proc.kill()
    wait_until(lambda: not any(alive(pid) for pid in children), 10, "the children to stop")
