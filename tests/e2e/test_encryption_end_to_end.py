"""Secrets at rest with the real process: a signing secret, its rotated-out predecessor and a
header credential reach the receiver intact while the database files never hold them in
plaintext; without a key, production refuses to start and ``--dev`` starts with a warning."""

from __future__ import annotations

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

FIRST = "whsec_" + "Zmlyc3Qtc2lnbmluZy1zZWNyZXQtZTJlLXRlc3Q="
SECOND = "whsec_" + "c2Vjb25kLXNpZ25pbmctc2VjcmV0LWUyZS10ZXN0"
BEARER = "Bearer receiver-credential-e2e-never-stored-plain"
HEADERS = {"authorization": f"Bearer {ADMIN_TOKEN}"}


def _files(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(folder.glob("hookline.db*")))


def test_secrets_are_delivered_but_never_stored_in_plaintext(
    tmp_path: Path, receiver: Receiver
) -> None:
    """Create an endpoint with a secret, rotate it (idempotently: the kept answer holds the
    new secret), set an Authorization header, publish: the receiver gets the header and a
    signature under the new secret, and neither secret nor the header value is in the
    SQLite file, its WAL or the process's log."""
    proc = HooklineProcess(sqlite_url(tmp_path), free_port(), {}, tmp_path).start("--dev")
    try:
        with httpx.Client(base_url=f"{proc.url}/api/v1", headers=HEADERS) as api:
            app = api.post("/app", json={"name": "Acme"}).json()["id"]
            endpoint = api.post(
                f"/app/{app}/endpoint", json={"url": f"{receiver.url}/hook", "secret": FIRST}
            ).json()["id"]
            # With an idempotency key the answer, which carries the new secret, is kept.
            for _ in range(2):
                rotated = api.post(
                    f"/app/{app}/endpoint/{endpoint}/secret/rotate",
                    json={"key": SECOND},
                    headers={"idempotency-key": "rotate-once"},
                )
                assert rotated.status_code == 200 and rotated.json()["key"] == SECOND
            put = api.put(
                f"/app/{app}/endpoint/{endpoint}/headers",
                json={"headers": {"authorization": BEARER}},
            )
            assert put.status_code == 204
            sent = api.post(f"/app/{app}/msg", json={"eventType": "a.b", "payload": {"n": 1}})
            assert sent.status_code == 202
            wait_until(lambda: len(receiver.received("/hook")) == 1, 20, "the delivery")
            assert api.get(f"/app/{app}/endpoint/{endpoint}/secret").json()["key"] == SECOND
        (got,) = receiver.received("/hook")
        headers = {name.lower(): value for name, value in got.headers.items()}
        assert headers["authorization"] == BEARER
        Webhook(SECOND).verify(got.body, headers)
        stored = _files(tmp_path)
        for secret in (FIRST, SECOND, BEARER):
            assert secret.encode() not in stored
            assert secret not in proc.output()
    finally:
        assert proc.terminate() == 0
    stored = _files(tmp_path)
    assert stored and all(s.encode() not in stored for s in (FIRST, SECOND, BEARER))


def test_production_without_a_key_refuses_to_start(tmp_path: Path) -> None:
    """No HOOKLINE_ENCRYPTION_KEYS and no --dev: serve exits at once, saying what to set,
    and creates no database."""
    proc = HooklineProcess(
        sqlite_url(tmp_path), free_port(), {"HOOKLINE_ENCRYPTION_KEYS": ""}, tmp_path
    )
    output = proc.run_refused("serve")
    assert "HOOKLINE_ENCRYPTION_KEYS is not set" in output
    assert not (tmp_path / "hookline.db").exists()


def test_dev_without_a_key_starts_and_warns(tmp_path: Path) -> None:
    """``--dev`` (what ``make run`` uses) starts without a key and says, loudly, that the
    secrets are stored in plaintext."""
    env = {"HOOKLINE_ENCRYPTION_KEYS": ""}
    proc = HooklineProcess(sqlite_url(tmp_path), free_port(), env, tmp_path).start("--dev")
    try:
        assert "SECRETS ARE STORED IN PLAINTEXT" in proc.output()
    finally:
        assert proc.terminate() == 0
