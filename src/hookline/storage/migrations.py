"""Versioned schema migrations, one ``NNNN_name.sql`` file each, per dialect.

``schema.sql`` beside them is the current schema in one piece; a test builds one database
from it and one from every migration in order and checks they are the same. Migrations
are additive by default (new tables, columns with defaults, new indexes) so that a
running older version survives them during a rolling upgrade (docs/upgrading.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

from hookline.domain.errors import HooklineError

_FILE = re.compile(r"^(\d{4})_(\w+)\.sql$")


class SchemaBehind(HooklineError):
    """The database schema is older than this hookline version needs."""

    code = "schema_behind"


class SchemaAhead(HooklineError):
    """The database schema is newer than this hookline version knows."""

    code = "schema_ahead"


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def load_migrations(package: str) -> list[Migration]:
    folder = resources.files(package).joinpath("migrations")
    found: list[Migration] = []
    for entry in folder.iterdir():
        match = _FILE.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), entry.read_text()))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(f"migrations of {package} are not numbered 1..n: {versions}")
    return found


def check_version(current: int, latest: int, url_hint: str) -> None:
    """Refuse to run on a schema this code does not match, saying what to do."""
    if current < latest:
        raise SchemaBehind(
            f"the database schema is at version {current} but this hookline needs {latest}; "
            f"run `hookline migrate` (with the same HOOKLINE_DATABASE_URL: {url_hint})"
        )
    if current > latest:
        raise SchemaAhead(
            f"the database schema is at version {current}, newer than this hookline "
            f"knows ({latest}); upgrade hookline on this machine"
        )
