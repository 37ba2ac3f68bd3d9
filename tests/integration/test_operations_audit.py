"""The audit log below the API, on every backend: the actor of the CLI and of the process
itself, the start-up token setting, auto-disable and the worker's 410 disables, pruning by
``hookline prune``, and a store that fails between the change and its entry."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from hookline import cli
from hookline.delivery.worker import Worker
from hookline.domain.audit import AuditEntry, AuditFilter
from hookline.domain.errors import Forbidden, Unavailable
from hookline.instrumentation import EndpointDisabled, Instrumentation
from hookline.operations import applications, audit_log, endpoints, tokens
from hookline.operations.applications import ApplicationPatch, NewApplication
from hookline.operations.audit import WorkerDisables
from hookline.operations.context import Operations
from hookline.operations.principal import CLI, SYSTEM, Principal
from hookline.storage.base import ListQuery, Store
from hookline.storage.sqlite import SqliteStore
from tests.conftest import make_endpoint, utcnow
from tests.integration.conftest import Ops
from tests.integration.test_worker import FakeTransport, _one_endpoint, config, eventually, status

CONFIGURED = "hl_admin_a-configured-token-of-enough-length-0001"
CHANGED = "hl_admin_a-configured-token-of-enough-length-0002"


async def _log(store: Store, **filters: Any) -> list[AuditEntry]:
    return (await store.list_audit(ListQuery(limit=250), AuditFilter(**filters))).data


async def test_an_operation_records_its_principals_token_and_address(ops: Ops) -> None:
    """The entry carries the calling token's id, the address the API resolved, the action,
    and, for an update, the fields it changed: on each backend."""
    caller = Principal(token_id="tok_caller", app_id=None, address="2001:db8::7")
    app, _ = await applications.create(ops.ops, caller, NewApplication(name="A", uid="acme"))
    await applications.patch(ops.ops, caller, "acme", ApplicationPatch(name="B"))
    created, patched = await _log(ops.store, app_id=app.id)
    assert (created.actor, created.address, created.action) == (
        "tok_caller",
        "2001:db8::7",
        "application.created",
    )
    assert (patched.action, patched.summary) == ("application.updated", {"fields": ["name"]})
    listed = await audit_log.list_entries(
        ops.ops, SYSTEM, ListQuery(), AuditFilter(actor="tok_caller", action="application")
    )
    assert [e.id for e in listed.data] == [created.id, patched.id]


async def test_only_an_admin_lists_the_whole_log(ops: Ops) -> None:
    """An application-scoped principal is refused the deployment-wide log."""
    scoped = Principal(token_id="tok_s", app_id="app_x")
    with pytest.raises(Forbidden):
        await audit_log.list_entries(ops.ops, scoped, ListQuery(), AuditFilter())


async def test_auto_disable_is_recorded_as_the_system(ops: Ops) -> None:
    """An endpoint the worker disables after failing for the whole period is one entry by
    ``system``, trigger ``automatic``; a second check finds it disabled and records none."""
    app, _ = await applications.create(ops.ops, SYSTEM, NewApplication(name="A"))
    endpoint = make_endpoint(app)
    await ops.store.create_endpoint(endpoint)
    start = utcnow().replace(microsecond=0)
    await ops.store.mark_endpoints_failing([endpoint.id], start)
    (failure,) = await ops.store.failing_endpoints(utcnow())
    assert await endpoints.disable_failing(ops.ops, failure) is not None
    assert await endpoints.disable_failing(ops.ops, failure) is None
    (entry,) = await _log(ops.store, action="endpoint")
    assert (entry.actor, entry.action, entry.target_id, entry.app_id) == (
        "system",
        "endpoint.disabled",
        endpoint.id,
        app.id,
    )
    assert entry.summary == {"fields": ["disabled"], "trigger": "automatic"}


async def test_the_configured_admin_token_is_recorded_when_it_changes_only(ops: Ops) -> None:
    """Storing ``HOOKLINE_ADMIN_TOKEN`` is one ``token.configured`` entry by ``system``;
    a restart with the same setting records nothing; a changed setting records the
    replacement."""
    await tokens.ensure_admin_token(ops.ops, SYSTEM, CONFIGURED)
    await tokens.ensure_admin_token(ops.ops, SYSTEM, CONFIGURED)
    await tokens.ensure_admin_token(ops.ops, SYSTEM, CHANGED)
    first, changed = await _log(ops.store, action="token")
    assert (first.actor, first.action, first.summary) == (
        "system",
        "token.configured",
        {"replaced": 0},
    )
    assert changed.summary == {"replaced": 1} and changed.target_id != first.target_id
    text = str([first, changed])
    assert CONFIGURED not in text and CHANGED not in text


async def test_a_generated_first_admin_token_is_recorded_without_its_value(ops: Ops) -> None:
    """With no token configured, the token generated at first start is one entry."""
    token = await tokens.ensure_admin_token(ops.ops, SYSTEM, None)
    assert token is not None
    (entry,) = await _log(ops.store)
    assert entry.action == "token.created" and entry.summary["generated"] is True
    assert token not in str(entry)


class _AuditDown:
    """A store whose audit insert fails as a dropped connection would; all else works."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def append_audit(self, entry: AuditEntry) -> None:
        raise Unavailable("the database connection dropped")


async def test_a_lost_entry_is_logged_and_the_change_still_answers(
    ops: Ops, caplog: pytest.LogCaptureFixture
) -> None:
    """When the entry cannot be written after the change was, the change is kept and
    answered (a client told it failed would repeat it), and the loss is logged at ERROR
    without any secret."""
    down = Operations(_AuditDown(ops.store))
    with caplog.at_level(logging.ERROR, logger="hookline.audit"):
        app, _ = await applications.create(down, SYSTEM, NewApplication(name="A"))
    assert await ops.store.get_application(app.id) is not None
    (lost,) = [r for r in caplog.records if r.name == "hookline.audit"]
    assert lost.levelno == logging.ERROR and "application.created" in lost.getMessage()


def test_cli_changes_are_recorded_with_the_cli_as_actor(tmp_path: Path) -> None:
    """``hookline token`` acts as ``cli`` (no token id, no address)."""
    db = tmp_path / "cli.db"
    cli.main(["token", "--database-url", f"sqlite:///{db}", "--name", "ops"])

    async def read() -> list[AuditEntry]:
        store = SqliteStore(str(db))
        await store.open()
        try:
            return await _log(store, action="token.created")
        finally:
            await store.close()

    (entry,) = asyncio.run(read())
    assert (entry.actor, entry.address, entry.summary["name"]) == ("cli", None, "ops")
    assert CLI.actor == "cli" and SYSTEM.actor == "system"


def test_hookline_prune_removes_audit_entries_past_the_horizon(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``hookline prune`` counts (dry run), then removes, the entries older than the horizon,
    keeping the newer ones, and says how many."""
    db = tmp_path / "prune.db"
    url = f"sqlite:///{db}"

    async def seed() -> None:
        store = SqliteStore(str(db))
        await store.open()
        ops = Operations(store, clock=lambda: utcnow() - timedelta(days=30))
        await applications.create(ops, CLI, NewApplication(name="Old"))
        await applications.create(Operations(store), CLI, NewApplication(name="New"))
        await store.close()

    async def left() -> list[AuditEntry]:
        store = SqliteStore(str(db))
        await store.open()
        try:
            return await _log(store)
        finally:
            await store.close()

    asyncio.run(seed())
    cli.main(["prune", "--database-url", url, "--older-than", "7d", "--dry-run"])
    assert "would remove 1 audit-log entries recorded before then" in capsys.readouterr().out
    assert len(asyncio.run(left())) == 2
    cli.main(["prune", "--database-url", url, "--older-than", "7d"])
    assert "removed 1 audit-log entries recorded before then" in capsys.readouterr().out
    (kept,) = asyncio.run(left())
    assert kept.created_at > utcnow() - timedelta(days=1)


async def test_the_workers_own_disables_are_recorded_once_per_endpoint(ops: Ops) -> None:
    """``WorkerDisables`` records a 410 Gone disable as ``system``, trigger ``gone``, once
    per endpoint however many in-flight deliveries heard 410; a disable after the failing
    period (recorded by its operation) and a manual one (by the update) are left alone."""
    hook = WorkerDisables()
    app, _ = await applications.create(ops.ops, SYSTEM, NewApplication(name="A"))
    gone = EndpointDisabled(app.id, "ep_gone", "it answered 410 Gone")
    for event in (
        gone,
        gone,
        EndpointDisabled(app.id, "ep_failing", "failed", "automatic", utcnow()),
        EndpointDisabled(app.id, "ep_manual", "by an update", "manual"),
    ):
        hook(event)
    assert await hook.flush(ops.ops) == 1
    (entry,) = await _log(ops.store, action="endpoint")
    assert (entry.actor, entry.action, entry.app_id, entry.target_id) == (
        "system",
        "endpoint.disabled",
        app.id,
        "ep_gone",
    )
    assert entry.summary == {"fields": ["disabled"], "trigger": "gone"}
    assert await hook.flush(ops.ops) == 0


async def test_a_410_answer_to_the_worker_is_in_the_audit_log(ops: Ops) -> None:
    """End to end: the worker hears 410 Gone, disables the endpoint, and the hook's task
    records it while the worker runs."""
    hook = WorkerDisables()
    transport = FakeTransport(script={"https://rx.example/h": [status(410)]})
    worker = Worker(ops.store, transport, config(), instrumentation=Instrumentation([hook]))
    stop = asyncio.Event()
    running = [asyncio.create_task(worker.run()), asyncio.create_task(hook.run(ops.ops, stop))]
    try:
        app_id, ep_id, _ = await _one_endpoint(ops.store)

        async def recorded() -> list[AuditEntry]:
            return await _log(ops.store, action="endpoint.disabled")

        await eventually(recorded)
        (entry,) = await recorded()
        assert (entry.app_id, entry.target_id, entry.actor) == (app_id, ep_id, "system")
    finally:
        worker.stop()
        stop.set()
        await asyncio.wait_for(asyncio.gather(*running), 10)


def test_hookline_audit_prints_the_log_newest_first_with_filters(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``hookline audit`` prints one line per entry, newest first, filtered as the API's
    list is; a bad option exits with a message."""
    db = tmp_path / "audit.db"
    url = f"sqlite:///{db}"
    cli.main(["token", "--database-url", url, "--name", "first"])
    cli.main(["token", "--database-url", url, "--name", "second"])
    capsys.readouterr()
    cli.main(["audit", "--database-url", url, "--actor", "cli", "--action", "token"])
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    fields = [line.split("\t") for line in lines]
    assert [f[1:4] for f in fields] == [["cli", "-", "token.created"]] * 2
    assert '"name":"second"' in fields[0][6] and '"name":"first"' in fields[1][6]
    cli.main(["audit", "--database-url", url, "--action", "endpoint", "--limit", "5"])
    assert capsys.readouterr().out == ""
    with pytest.raises(SystemExit, match="limit"):
        cli.main(["audit", "--database-url", url, "--limit", "0"])
    with pytest.raises(SystemExit, match="ISO 8601"):
        cli.main(["audit", "--database-url", url, "--since", "yesterday"])
