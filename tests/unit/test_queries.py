"""Named SQL: one shared file with per-dialect overrides (storage/queries.py), and every
name the store code uses exists in each dialect that runs it."""

from __future__ import annotations

import re
import tokenize
from pathlib import Path

import pytest

from hookline.storage import queries
from hookline.storage.postgres.connector import QUERIES as POSTGRES
from hookline.storage.sqlite.connector import QUERIES as SQLITE

STORAGE = Path(queries.__file__).parent
DIALECTS = {"sqlite": SQLITE, "postgres": POSTGRES}
_USED = re.compile(
    r"""(?:\.(?:query|execute|execute_many|execute_arrays|script|write_returning)|_one|_versioned|_page|_fragment)"""
    r"""\(\s*"([a-z_]+)"|QUERIES\["([a-z_]+)"\]|(?:head|name) = "([a-z_]+)\""""
)


def _names_used(paths: list[Path]) -> set[str]:
    found: set[str] = set()
    for path in paths:
        for match in _USED.finditer(path.read_text()):
            found.update(name for name in match.groups() if name)
    return found


def test_a_dialect_query_wins_over_the_shared_one_of_its_name() -> None:
    """The merge keeps every shared query and lets the dialect's own text replace one."""
    merged = queries.merge_queries(
        {"a": "SELECT 1", "b": "SELECT 2"}, {"b": "SELECT 'two'", "c": "SELECT 3"}, "test"
    )
    assert merged == {"a": "SELECT 1", "b": "SELECT 'two'", "c": "SELECT 3"}


def test_a_dialect_repeating_a_shared_query_verbatim_is_refused() -> None:
    """A copy of a shared block in a dialect file fails the load, so copies cannot drift."""
    with pytest.raises(ValueError, match="'b' repeats the shared one verbatim"):
        queries.merge_queries({"b": "SELECT 2"}, {"b": "SELECT 2"}, "test")


@pytest.mark.parametrize("dialect", DIALECTS)
def test_no_dialect_file_repeats_a_shared_block(dialect: str) -> None:
    """Each dialect's queries.sql holds only what differs from storage/queries.sql."""
    shared = queries.load_queries("hookline.storage", "queries.sql")
    own = queries.load_queries(f"hookline.storage.{dialect}", "queries.sql")
    assert own
    assert [name for name, text in own.items() if shared.get(name) == text] == []


@pytest.mark.parametrize("dialect", DIALECTS)
def test_every_query_the_repository_names_exists_in_both_dialects(dialect: str) -> None:
    """A name the shared repository uses resolves in each dialect's merged queries."""
    used = _names_used([STORAGE / "repository.py", STORAGE / "sql.py", STORAGE / "search.py"])
    assert len(used) > 30
    assert sorted(used - DIALECTS[dialect].keys()) == []


@pytest.mark.parametrize("dialect", DIALECTS)
def test_every_query_a_dialects_parts_name_exists_in_that_dialect(dialect: str) -> None:
    """The connector, batch writer and claimer of a dialect use only names it defines."""
    used = _names_used(sorted((STORAGE / dialect).rglob("*.py")))
    assert len(used) > 5
    assert sorted(used - DIALECTS[dialect].keys()) == []


def test_a_query_named_twice_in_one_file_is_refused(tmp_path: Path) -> None:
    """Two blocks of one name in a file are an error, not a silent override."""
    package = tmp_path / "twice_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "queries.sql").write_text("-- name: a\nSELECT 1\n\n-- name: a\nSELECT 2\n")
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(tmp_path))
        with pytest.raises(ValueError, match="'a' is defined twice"):
            queries.load_queries("twice_pkg", "queries.sql")


@pytest.mark.parametrize("dialect", DIALECTS)
def test_every_query_of_a_dialect_is_used(dialect: str) -> None:
    """No named query is left behind when the code that ran it goes."""
    used = _names_used(
        [
            STORAGE / "repository.py",
            STORAGE / "sql.py",
            STORAGE / "search.py",
            *sorted((STORAGE / dialect).rglob("*.py")),
        ]
    )
    assert sorted(DIALECTS[dialect].keys() - used) == []


_SQL = re.compile(r"\b(SELECT|INSERT INTO|UPDATE \w+ SET|DELETE FROM|CREATE (TABLE|INDEX))\b")


def test_no_sql_in_python_strings_outside_storage() -> None:
    """Only storage/ speaks SQL: every other module goes through the store."""
    offenders: list[str] = []
    for path in sorted(STORAGE.parent.rglob("*.py")):
        if STORAGE in path.parents:
            continue
        with path.open("rb") as source:
            for token in tokenize.tokenize(source.readline):
                if token.type == tokenize.STRING and _SQL.search(token.string):
                    offenders.append(f"{path.name}:{token.start[0]}")
    assert offenders == []
