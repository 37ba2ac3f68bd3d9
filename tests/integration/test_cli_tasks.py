"""``hookline recover | replay | redrive``: the same operations as the API, run to the end
in the command's process, counts printed; ``--dry-run`` changes nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from hookline import cli
from hookline.domain.models import MessageStatus
from hookline.storage.sqlite import SqliteStore
from tests.conftest import failed_outcome, make_app, make_endpoint, make_message, utcnow

SINCE = "2020-01-01T00:00:00+00:00"


def _with_failures(path: Path, count: int) -> tuple[str, list[str]]:
    """acme with endpoint ``ep`` and ``count`` failed deliveries; the endpoint id and msgs."""

    async def build() -> tuple[str, list[str]]:
        store = SqliteStore(str(path))
        await store.open()
        app = make_app(uid="acme")
        await store.create_application(app)
        endpoint = make_endpoint(app, uid="ep")
        await store.create_endpoint(endpoint)
        msgs = [make_message(app) for _ in range(count)]
        await store.publish(msgs, utcnow())
        now = utcnow()
        claimed = await store.claim_due(count, now, now, "w1")
        await store.complete([failed_outcome(c) for c in claimed])
        await store.close()
        return endpoint.id, [m.id for m in msgs]

    return asyncio.run(build())


def _statuses(path: Path, endpoint_id: str, msg_ids: list[str]) -> list[MessageStatus | None]:
    async def read() -> list[MessageStatus | None]:
        store = SqliteStore(str(path))
        await store.open()
        found = [await store.get_delivery(m, endpoint_id) for m in msg_ids]
        await store.close()
        return [None if d is None else d.status for d in found]

    return asyncio.run(read())


def test_recover_dry_run_counts_then_recover_sends(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--dry-run prints the count and leaves the failures failed; without it, they are
    pending again and the printed task says how many it sent."""
    db = tmp_path / "cli.db"
    url = f"sqlite:///{db}"
    endpoint_id, msg_ids = _with_failures(db, 3)
    cli.main(["recover", "acme", "ep", "--since", SINCE, "--dry-run", "--database-url", url])
    assert "would send 3 message(s)" in capsys.readouterr().out
    assert _statuses(db, endpoint_id, msg_ids) == [MessageStatus.FAIL] * 3
    cli.main(["recover", "acme", "ep", "--since", SINCE, "--database-url", url])
    out = capsys.readouterr().out
    assert "endpoint.recover" in out and "finished: sent 3 message(s)" in out
    assert _statuses(db, endpoint_id, msg_ids) == [MessageStatus.PENDING] * 3


def test_replay_and_redrive_take_their_filters(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A replay limited to another event type sends nothing; a redrive of 5xx sends all."""
    db = tmp_path / "cli.db"
    url = f"sqlite:///{db}"
    endpoint_id, msg_ids = _with_failures(db, 2)
    only_other = ["--event-types", "other.type"]
    cli.main(["replay", "acme", "ep", "--since", SINCE, *only_other, "--database-url", url])
    assert "sent 0 message(s)" in capsys.readouterr().out
    cli.main(["replay", "acme", "ep", "--since", SINCE, "--missing", "--database-url", url])
    assert "endpoint.replay" in capsys.readouterr().out
    cli.main(["redrive", "acme", "--status-code-class", "500", "--database-url", url])
    assert "sent 2 message(s)" in capsys.readouterr().out
    assert _statuses(db, endpoint_id, msg_ids) == [MessageStatus.PENDING] * 2


def test_an_unknown_application_or_bad_time_exits_with_a_message(tmp_path: Path) -> None:
    """No application of that key, or a since that is not a date: exit with the reason."""
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    _with_failures(tmp_path / "cli.db", 0)
    with pytest.raises(SystemExit, match="not found"):
        cli.main(["recover", "nope", "ep", "--since", SINCE, "--database-url", url])
    with pytest.raises(SystemExit, match="ISO 8601"):
        cli.main(["recover", "acme", "ep", "--since", "yesterday", "--database-url", url])
