"""``hookline`` command line: every setting is a ``--flag`` mirroring ``HOOKLINE_<NAME>``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any

import hookline
from hookline.config import ConfigError, Settings, load_settings, setting_help, setting_names
from hookline.instrumentation import configure_logging
from hookline.storage.migrations import SchemaAhead, SchemaBehind

if TYPE_CHECKING:
    from datetime import datetime


APP_TOKEN_LIFETIME = "90d"
"""How long an application token made by ``hookline token --app`` lasts unless
``--expires-in`` says otherwise (``never`` for no end): such tokens are handed to a
customer's systems, where one forgotten would otherwise work for ever."""


def _add_settings(parser: argparse.ArgumentParser) -> None:
    for name in setting_names():
        flag = "--" + name.replace("_", "-")
        env = f"HOOKLINE_{name.upper()}"
        if name == "dev":
            parser.add_argument(
                flag,
                action="store_const",
                const="true",
                default=None,
                help=f"{setting_help(name)} [{env}]",
            )
        else:
            parser.add_argument(
                flag,
                dest=name,
                default=None,
                metavar=name.upper(),
                help=f"{setting_help(name)} [{env}]",
            )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hookline", description=hookline.__doc__)
    parser.add_argument("--version", action="version", version=f"hookline {hookline.__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the API, the delivery worker and maintenance")
    serve.add_argument("--no-worker", action="store_true", help="run the API only")
    commands.add_parser("worker", help="run the delivery worker only")
    commands.add_parser("migrate", help="create or upgrade the database schema")
    token = commands.add_parser(
        "token",
        help="create a token and print it once (default), list tokens, revoke one, or set "
        "the networks one may be used from",
    )
    _add_token_arguments(token)
    prune = commands.add_parser(
        "prune", help="remove messages, deliveries and attempts past the retention horizon now"
    )
    prune.add_argument(
        "--older-than",
        default=None,
        metavar="DURATION",
        help="this horizon instead of HOOKLINE_RETENTION (90d, 12h, 30m, 45s)",
    )
    prune.add_argument("--dry-run", action="store_true", help="count what would go; change nothing")
    prune.add_argument(
        "--vacuum",
        action="store_true",
        help="then reclaim the space: SQLite rebuilds the file (and switches an older one to "
        "incremental auto-vacuum), PostgreSQL runs VACUUM on the pruned tables",
    )
    for sub in (serve, commands.choices["worker"], commands.choices["migrate"], token, prune):
        _add_settings(sub)
    _add_task_commands(commands)
    _add_encryption_commands(commands)
    _add_audit_command(commands)
    return parser


def _add_audit_command(commands: Any) -> None:
    """``audit``: the audit log, newest first, as ``GET /api/v1/audit`` lists it."""
    audit = commands.add_parser("audit", help="list the audit log, newest first")
    audit.add_argument("--app", default=None, help="one application's entries (id or uid)")
    audit.add_argument("--actor", default=None, help="a token id, cli or system")
    audit.add_argument("--action", default=None, help="an action or a prefix (endpoint)")
    audit.add_argument("--since", default=None, help="recorded from (ISO 8601)")
    audit.add_argument("--until", default=None, help="recorded before (ISO 8601)")
    audit.add_argument("--limit", type=int, default=50, help="entries shown (1-250)")
    _add_settings(audit)


def _add_encryption_commands(commands: Any) -> None:
    """``keygen`` and ``rekey``: rotating the key that encrypts secrets at rest
    (docs/security.md, "Encryption at rest")."""
    keygen = commands.add_parser(
        "keygen", help="print a new ID:KEY entry for HOOKLINE_ENCRYPTION_KEYS"
    )
    keygen.add_argument(
        "--id", default=None, help="the key's id (default: k and the UTC date and time)"
    )
    rekey = commands.add_parser(
        "rekey",
        help="re-encrypt stored secrets under the first key of HOOKLINE_ENCRYPTION_KEYS, "
        "online, in batches",
    )
    rekey.add_argument("--batch-size", type=int, default=500, help="endpoints per batch")
    rekey.add_argument("--dry-run", action="store_true", help="count only; change nothing")
    _add_settings(rekey)


def _add_token_arguments(token: argparse.ArgumentParser) -> None:
    token.add_argument(
        "action", nargs="?", default="create", choices=("create", "list", "revoke", "networks")
    )
    token.add_argument(
        "token_id", nargs="?", default=None, help="the token to revoke or set networks of"
    )
    token.add_argument(
        "--app", default=None, help="scope the token to this application (id or uid)"
    )
    token.add_argument("--name", default=None, help="a label shown by `hookline token list`")
    token.add_argument(
        "--expires-in",
        default=None,
        metavar="DURATION",
        help=f"90d, 12h, 30m or never (default: {APP_TOKEN_LIFETIME} with --app, else never)",
    )
    token.add_argument(
        "--capability",
        action="append",
        default=None,
        help="with --app: what the token may do (repeatable; default: everything), e.g. "
        "ViewBase, ViewEndpointSecret, ManageEndpoint, CreateAttempts, PublishMessages",
    )
    token.add_argument(
        "--read-only", action="store_true", help="with --app: the token changes nothing"
    )
    token.add_argument(
        "--allow-network",
        action="append",
        default=None,
        metavar="CIDR",
        help="the token may be used only from this network (repeatable; a bare address is "
        "one host; default: any address); with `networks <id>`, replaces the token's list",
    )
    token.add_argument(
        "--any-network",
        action="store_true",
        help="with `networks <id>`: the token may be used from any address again",
    )


def _add_task_commands(commands: Any) -> None:
    """``recover``, ``replay`` and ``redrive``: the background tasks of the API, started
    and run to the end through the same operations (docs/delivery.md)."""
    recover = commands.add_parser("recover", help="send an endpoint's failed deliveries again")
    replay = commands.add_parser(
        "replay",
        help="send an endpoint's deliveries again by filter, or (--missing) the "
        "messages it never got",
    )
    redrive = commands.add_parser("redrive", help="send an application's dead letters again")
    for sub in (recover, replay, redrive):
        sub.add_argument("app", help="the application's id or uid")
    for sub in (recover, replay):
        sub.add_argument("endpoint", help="the endpoint's id or uid")
    redrive.add_argument("--endpoint", default=None, help="only this endpoint's dead letters")
    for sub in (recover, replay, redrive):
        required = sub is not redrive
        sub.add_argument("--since", required=required, help="messages created from (ISO 8601)")
        sub.add_argument("--until", default=None, help="messages created before (default: now)")
        sub.add_argument(
            "--dry-run", action="store_true", help="print the count only; change nothing"
        )
    for sub in (replay, redrive):
        sub.add_argument("--event-types", default=None, help="comma-separated event types")
        sub.add_argument(
            "--status-code-class", type=int, default=None, choices=(0, 100, 200, 300, 400, 500)
        )
    replay.add_argument("--missing", action="store_true", help="replay-missing instead")
    replay.add_argument("--channel", default=None)
    replay.add_argument("--tag", default=None)
    replay.add_argument("--status", type=int, default=None, choices=(0, 2), help="0 or 2")
    for sub in (recover, replay, redrive):
        _add_settings(sub)


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.command == "keygen":
        return _keygen(args.id)
    overrides = {name: getattr(args, name, None) for name in setting_names()}
    try:
        settings = load_settings(overrides)
    except ConfigError as exc:
        sys.exit(f"hookline: invalid setting: {exc}")
    configure_logging(settings.log_format)
    if args.command in ("serve", "worker"):
        _refuse_plaintext_secrets(settings)
    if args.command == "serve" and settings.processes > 1:
        from hookline.processes import serve_processes

        sys.exit(serve_processes(settings, worker=not args.no_worker, runner=_run))
    elif args.command == "serve":
        _run(_serve(settings, worker=not args.no_worker))
    elif args.command == "worker":
        _run(_serve(settings, api=False))
    elif args.command == "migrate":
        _run(_migrate(settings))
    elif args.command == "token":
        _run(_token(settings, args))
    elif args.command in ("recover", "replay", "redrive"):
        _run(_background_task(settings, args))
    elif args.command == "prune":
        _run(_prune(settings, args.older_than, dry_run=args.dry_run, vacuum=args.vacuum))
    elif args.command == "rekey":
        _run(_rekey(settings, args.batch_size, dry_run=args.dry_run))
    elif args.command == "audit":
        _run(_audit(settings, args))


PLAINTEXT_REFUSED = (
    "hookline: HOOKLINE_ENCRYPTION_KEYS is not set, so endpoint signing secrets and custom "
    "header values would be stored in plaintext. Set it (`hookline keygen` prints a key), "
    "or set HOOKLINE_ALLOW_PLAINTEXT_SECRETS=true to accept plaintext, or use --dev on a "
    "laptop."
)


def _refuse_plaintext_secrets(settings: Settings) -> None:
    """Production refuses to run without keys unless told; ``--dev`` and the allowance warn
    at every start, loudly, since the secrets are then readable in the database files."""
    if settings.encryption_keys is not None:
        return
    if not (settings.dev or settings.allow_plaintext_secrets):
        sys.exit(PLAINTEXT_REFUSED)
    logging.getLogger("hookline").warning(
        "*** SECRETS ARE STORED IN PLAINTEXT: HOOKLINE_ENCRYPTION_KEYS is not set, so "
        "endpoint signing secrets and custom header values are readable by anyone who can "
        "read the database or its backups. Set it before production (hookline keygen). ***"
    )


def _keygen(key_id: str | None) -> None:
    from datetime import UTC, datetime

    from hookline.domain.keyring import new_key_entry

    try:
        entry = new_key_entry(key_id or datetime.now(UTC).strftime("k%Y%m%d%H%M%S"))
    except ValueError as exc:
        sys.exit(f"hookline: invalid --id: {exc}")
    print(entry)
    print(
        "hookline: add this entry to HOOKLINE_ENCRYPTION_KEYS last and restart every "
        "process; then move it first and restart again (one process: first at once); then "
        "run `hookline rekey`, and only then drop the old key (docs/security.md).",
        file=sys.stderr,
    )


async def _rekey(settings: Settings, batch_size: int, *, dry_run: bool) -> None:
    from hookline.domain.errors import HooklineError
    from hookline.operations import encryption
    from hookline.operations.context import Operations
    from hookline.operations.principal import CLI
    from hookline.server import open_store

    keys = settings.encryption_keys
    if keys is None:
        sys.exit("hookline: rekey needs HOOKLINE_ENCRYPTION_KEYS (hookline keygen prints a key)")
    store = open_store(settings)
    await store.open()
    try:
        report = await encryption.rekey(
            Operations(store), CLI, batch_size=batch_size, dry_run=dry_run
        )
    except HooklineError as exc:
        sys.exit(f"hookline: {exc.detail}")
    finally:
        await store.close()
    verb = "would re-encrypt" if dry_run else "re-encrypted"
    print(
        f"hookline: {verb} the secrets of {report.rekeyed} of {report.scanned} endpoint(s) "
        f"under key {keys.current_id!r}"
        + (f"; {report.raced} changed meanwhile, run rekey again" if report.raced else "")
    )
    if report.raced:
        sys.exit(1)


async def _serve(settings: Settings, *, api: bool = True, worker: bool = True) -> None:
    from hookline.server import run

    await run(settings, api=api, worker=worker)


async def _migrate(settings: Settings) -> None:
    from hookline.server import open_store

    store = open_store(settings)
    try:
        applied = await store.migrate()
    finally:
        await store.close()
    done = ", ".join(str(v) for v in applied) if applied else "none needed"
    print(f"hookline: migrations applied: {done}")


async def _token(settings: Settings, args: argparse.Namespace) -> None:
    """``hookline token``: the same operations as ``/api/v1/token``, run as the operator."""
    from hookline.domain.errors import HooklineError
    from hookline.operations.context import Operations
    from hookline.server import open_store

    store = open_store(settings)
    await store.open()
    try:
        ops = Operations(store)
        if args.action == "list":
            await _token_list(ops, args.app)
        elif args.action == "revoke":
            await _token_revoke(ops, args.token_id)
        elif args.action == "networks":
            await _token_networks(ops, args)
        else:
            await _token_create(ops, args)
    except HooklineError as exc:
        sys.exit(f"hookline: {exc.detail}")
    finally:
        await store.close()


async def _token_create(ops: Any, args: argparse.Namespace) -> None:
    from hookline.domain import capabilities
    from hookline.domain.errors import NotFound
    from hookline.domain.retention import parse_retention
    from hookline.operations import tokens
    from hookline.operations.principal import CLI

    lifetime = args.expires_in or (APP_TOKEN_LIFETIME if args.app is not None else "never")
    try:
        expires_in = None if lifetime.strip().lower() == "never" else parse_retention(lifetime)
        wanted = None if args.capability is None else capabilities.parse(args.capability)
    except ValueError as exc:
        sys.exit(f"hookline: {exc}")
    request = tokens.TokenRequest(
        app_key=args.app,
        name=args.name,
        expires_in=expires_in,
        capabilities=wanted,
        read_only=args.read_only,
        allowed_networks=args.allow_network,
    )
    try:
        issued = await tokens.create_token(ops, CLI, request)
    except NotFound:
        sys.exit(f"hookline: no application {args.app!r}")
    print(issued.token)


async def _token_list(ops: Any, app_key: str | None) -> None:
    from hookline.operations import tokens
    from hookline.operations.principal import CLI

    for t in await tokens.list_tokens(ops, CLI, app_key):
        scope = t.app_id or "admin"
        caps = "all" if t.app_id is None else ",".join(sorted(c.value for c in t.capabilities))
        configured = " (HOOKLINE_ADMIN_TOKEN)" if t.configured else ""
        print(
            f"{t.id}\t{scope}\t{t.name or '-'}{configured}\t{caps}\t"
            f"expires={_when(t.expires_at)}\tlast_used={_when(t.last_used_at)}\t"
            f"networks={_networks_shown(t.allowed_networks)}"
        )


def _networks_shown(networks: Any) -> str:
    return "any" if networks is None else ",".join(str(n) for n in networks)


def _when(moment: Any) -> str:
    return "-" if moment is None else str(moment.isoformat(timespec="seconds"))


async def _token_revoke(ops: Any, token_id: str | None) -> None:
    from hookline.operations import tokens
    from hookline.operations.principal import CLI

    if token_id is None:
        sys.exit("hookline: name the token to revoke: hookline token revoke <token id>")
    await tokens.revoke_token(ops, CLI, token_id)
    print(f"hookline: revoked {token_id}")


async def _token_networks(ops: Any, args: argparse.Namespace) -> None:
    from hookline.operations import tokens
    from hookline.operations.principal import CLI

    if args.token_id is None:
        sys.exit("hookline: name the token: hookline token networks <token id> --allow-network …")
    if args.any_network == (args.allow_network is not None):
        sys.exit(
            "hookline: give --allow-network CIDR (repeatable) to limit the token, or "
            "--any-network to lift its limit"
        )
    found = await tokens.set_allowed_networks(ops, CLI, args.token_id, args.allow_network)
    print(f"hookline: {found.id} may be used from {_networks_shown(found.allowed_networks)}")


async def _audit(settings: Settings, args: argparse.Namespace) -> None:
    """``hookline audit``: one line per entry, tab-separated, newest first."""
    import orjson

    from hookline.domain.audit import AuditFilter
    from hookline.domain.errors import HooklineError
    from hookline.operations import audit_log
    from hookline.operations.context import Operations
    from hookline.operations.principal import CLI
    from hookline.server import open_store
    from hookline.storage.base import MAX_LIST_LIMIT, ListQuery

    if not 1 <= args.limit <= MAX_LIST_LIMIT:
        sys.exit(f"hookline: --limit must be between 1 and {MAX_LIST_LIMIT}")
    filters = AuditFilter(
        app_id=args.app,
        actor=args.actor,
        action=args.action,
        since=_when_given(args.since),
        until=_when_given(args.until),
    )
    store = open_store(settings)
    await store.open()
    try:
        query = ListQuery(limit=args.limit, descending=True)
        page = await audit_log.list_entries(Operations(store), CLI, query, filters)
    except HooklineError as exc:
        sys.exit(f"hookline: {exc.detail}")
    finally:
        await store.close()
    for e in page.data:
        summary = orjson.dumps(dict(e.summary), option=orjson.OPT_SORT_KEYS).decode()
        print(
            f"{_when(e.created_at)}\t{e.actor}\t{e.address or '-'}\t{e.action}\t"
            f"{e.app_id or '-'}\t{e.target_id or '-'}\t{summary}"
        )


def _when_given(text: str | None) -> datetime | None:
    """An ISO 8601 date-time option (UTC when it names no offset), or None."""
    from datetime import UTC, datetime

    if text is None:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        sys.exit(f"hookline: not an ISO 8601 date-time: {text!r}")
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _task_request(args: argparse.Namespace) -> Any:
    from hookline.domain.models import MessageStatus
    from hookline.domain.tasks import TaskKind
    from hookline.operations.tasks import TaskRequest

    when = _when_given

    kind = {"recover": TaskKind.RECOVER, "redrive": TaskKind.REDRIVE}.get(args.command)
    if kind is None:
        kind = TaskKind.REPLAY_MISSING if args.missing else TaskKind.BULK_REPLAY
    types = getattr(args, "event_types", None)
    status = getattr(args, "status", None)
    return TaskRequest(
        kind,
        when(args.since),
        when(args.until),
        args.endpoint,
        event_types=tuple(t for t in types.split(",") if t) if types else None,
        channel=getattr(args, "channel", None),
        tag=getattr(args, "tag", None),
        status=None if status is None else MessageStatus(status),
        status_code_class=getattr(args, "status_code_class", None),
    )


async def _background_task(settings: Settings, args: argparse.Namespace) -> None:
    from hookline.domain.errors import HooklineError
    from hookline.operations import tasks
    from hookline.operations.context import Operations
    from hookline.operations.principal import CLI
    from hookline.server import open_store

    store = open_store(settings)
    await store.open()
    ops = Operations(store)
    try:
        request = _task_request(args)
        if args.dry_run:
            count = await tasks.count(ops, CLI, args.app, request)
            print(f"hookline: {request.kind.value} would send {count} message(s) (dry run)")
            return
        done = await tasks.run_to_end(ops, CLI, args.app, request)
    except HooklineError as exc:
        sys.exit(f"hookline: {exc.detail}")
    finally:
        await store.close()
    print(
        f"hookline: {done.kind.value} {done.id} {done.status.value}: sent {done.queued} "
        f"message(s), scanned {done.scanned}"
    )


async def _prune(
    settings: Settings, older_than: str | None, *, dry_run: bool, vacuum: bool
) -> None:
    from datetime import UTC, datetime, timedelta

    from hookline.delivery.retention import prune
    from hookline.domain.retention import cutoff, format_retention, parse_retention
    from hookline.domain.rollups import MINUTE_ROLLUP_HOURS, minute_cutoff
    from hookline.server import open_store

    try:
        horizon = settings.retention if older_than is None else parse_retention(older_than)
    except ValueError as exc:
        sys.exit(f"hookline: invalid --older-than {older_than!r}: {exc}")
    if horizon is None:
        sys.exit("hookline: retention is off; give a horizon with --older-than (e.g. 90d)")
    store = open_store(settings)
    await store.open()
    try:
        now = datetime.now(UTC)
        report = await prune(
            store,
            cutoff(now, horizon),
            dry_run=dry_run,
            minutes_before=minute_cutoff(now, horizon),
        )
        compacted = vacuum and not dry_run and await store.compact()
    finally:
        await store.close()
    verb = "would remove" if dry_run else "removed"
    print(
        f"hookline: {verb} {report.messages} messages, {report.deliveries} deliveries and "
        f"{report.attempts} attempts older than {format_retention(horizon)}, and "
        f"{report.tasks} background tasks that ended before then"
    )
    print(f"hookline: {verb} {report.audit} audit-log entries recorded before then")
    print(f"hookline: {verb} {report.anomalies} anomalies resolved before then")
    print(f"hookline: {verb} {report.failure_groups} failure groups resolved before then")
    print(
        f"hookline: {verb} {report.rollups} attempt rollups (minute rollups after "
        f"{format_retention(min(horizon, timedelta(hours=MINUTE_ROLLUP_HOURS)))})"
    )
    if report.held:
        print(
            f"hookline: kept {report.held} older messages with a delivery still pending or "
            "sending (enable or delete their endpoints to let them go)"
        )
    if report.reclaimed_pages:
        print(f"hookline: gave {report.reclaimed_pages} free pages back to the file system")
    if compacted:
        print("hookline: vacuumed the database, so the space pruning freed is reused")


def _run(coro: Coroutine[Any, Any, None]) -> None:
    """Run on uvloop where it is installed (everywhere but Windows): it is markedly faster."""
    try:
        import uvloop

        runner: Callable[[Coroutine[Any, Any, None]], None] = uvloop.run
    except ImportError:  # pragma: no cover - uvloop is absent on Windows only
        runner = asyncio.run
    try:
        runner(coro)
    except (SchemaBehind, SchemaAhead) as exc:
        sys.exit(f"hookline: {exc.detail}")
