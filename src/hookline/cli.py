"""``hookline`` command line: every setting is a ``--flag`` mirroring ``HOOKLINE_<NAME>``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

import hookline
from hookline.config import ConfigError, Settings, load_settings, setting_help, setting_names
from hookline.storage.migrations import SchemaAhead, SchemaBehind


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
    token = commands.add_parser("token", help="create a new admin token and print it")
    token.add_argument("--app", default=None, help="scope the token to this application id")
    for sub in (serve, commands.choices["worker"], commands.choices["migrate"], token):
        _add_settings(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    overrides = {name: getattr(args, name, None) for name in setting_names()}
    try:
        settings = load_settings(overrides)
    except ConfigError as exc:
        sys.exit(f"hookline: invalid setting: {exc}")
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
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
        _run(_token(settings, args.app))


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


async def _token(settings: Settings, app_key: str | None) -> None:
    from hookline.domain.errors import NotFound
    from hookline.operations import tokens
    from hookline.operations.context import Operations
    from hookline.operations.principal import SYSTEM
    from hookline.server import open_store

    store = open_store(settings)
    await store.open()
    try:
        token = await tokens.create_token(Operations(store), SYSTEM, app_key)
    except NotFound:
        sys.exit(f"hookline: no application {app_key!r}")
    finally:
        await store.close()
    print(token)


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
