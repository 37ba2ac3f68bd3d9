"""SQL building shared by the backends: filters and cursor pages, written once.

Queries use ``:name`` parameters; a ``Dialect`` supplies the few fragments that differ
(membership in a list parameter, membership in a JSON array column), and the PostgreSQL
backend turns ``:name`` into ``$n`` with ``to_positional``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, TypeVar

import orjson

from hookline.domain.audit import AuditFilter
from hookline.domain.models import Page
from hookline.storage import rows
from hookline.storage.base import AttemptFilter, ListQuery, MessageFilter

T = TypeVar("T")


@dataclass(frozen=True)
class Dialect:
    in_list: str
    """``{expr}`` is in the list parameter ``:{param}``."""
    json_has: str
    """The JSON-array column ``{col}`` contains the string parameter ``:{param}``."""
    list_as_json: bool
    """SQLite takes lists as JSON text; PostgreSQL as arrays."""

    def list_param(self, values: Sequence[str] | Sequence[int]) -> Any:
        return orjson.dumps(list(values)).decode() if self.list_as_json else list(values)


SQLITE = Dialect(
    in_list="{expr} IN (SELECT value FROM json_each(:{param}))",
    json_has="EXISTS (SELECT 1 FROM json_each({col}) WHERE value = :{param})",
    list_as_json=True,
)
POSTGRES = Dialect(
    in_list="{expr} = ANY(:{param})",
    json_has="({col})::jsonb ? :{param}",
    list_as_json=False,
)


def message_where(
    dialect: Dialect, alias: str, filters: MessageFilter
) -> tuple[list[str], dict[str, Any]]:
    where: list[str] = []
    params: dict[str, Any] = {}
    if filters.event_types:
        where.append(dialect.in_list.format(expr=f"{alias}.event_type", param="event_types"))
        params["event_types"] = dialect.list_param(filters.event_types)
    if filters.channel is not None:
        where.append(dialect.json_has.format(col=f"{alias}.channels", param="channel"))
        params["channel"] = filters.channel
    if filters.tag is not None:
        where.append(dialect.json_has.format(col=f"{alias}.tags", param="tag"))
        params["tag"] = filters.tag
    if filters.before is not None:
        where.append(f"{alias}.created_at < :before")
        params["before"] = rows.to_ms(filters.before)
    if filters.after is not None:
        where.append(f"{alias}.created_at > :after")
        params["after"] = rows.to_ms(filters.after)
    return where, params


def attempt_query(
    dialect: Dialect, app_id: str, filters: AttemptFilter, msg_id: str | None
) -> tuple[str, list[str], dict[str, Any]]:
    """The named head (``page_attempts``, or with its messages joined), WHERE clauses and
    parameters of an attempt list."""
    where = ["a.app_id = :app_id"]
    params: dict[str, Any] = {"app_id": app_id}
    if msg_id is not None:
        where.append("a.msg_id = :msg_id")
        params["msg_id"] = msg_id
    if filters.endpoint_id is not None:
        where.append("a.endpoint_id = :endpoint_id")
        params["endpoint_id"] = filters.endpoint_id
    if filters.status is not None:
        where.append("a.status = :status")
        params["status"] = int(filters.status)
    if filters.status_code_class is not None:
        low = filters.status_code_class
        where.append("a.response_status_code >= :code_lo AND a.response_status_code < :code_hi")
        params.update(code_lo=low, code_hi=low + 100 if low else 1)
    if filters.before is not None:
        where.append("a.created_at < :before")
        params["before"] = rows.to_ms(filters.before)
    if filters.after is not None:
        where.append("a.created_at > :after")
        params["after"] = rows.to_ms(filters.after)
    head = "page_attempts"
    if filters.event_types or filters.channel or filters.tag:
        head = "page_attempts_with_messages"
        of_message = MessageFilter(
            event_types=filters.event_types, channel=filters.channel, tag=filters.tag
        )
        more, more_params = message_where(dialect, "m", of_message)
        where += more
        params.update(more_params)
    return head, where, params


def audit_where(filters: AuditFilter) -> tuple[list[str], dict[str, Any]]:
    """The WHERE clauses of an audit-log page. An action filter finds the action itself and
    every action under it (``domain.audit.action_matches``), compared by ``substr`` so that
    no character of it acts as a ``LIKE`` wildcard."""
    where: list[str] = []
    params: dict[str, Any] = {}
    if filters.app_id is not None:
        where.append("al.app_id = :app_id")
        params["app_id"] = filters.app_id
    if filters.actor is not None:
        where.append("al.actor = :actor")
        params["actor"] = filters.actor
    if filters.action is not None:
        stem = filters.action.rstrip(".")
        where.append("(al.action = :action OR substr(al.action, 1, :action_len) = :action_dot)")
        params.update(action=stem, action_dot=stem + ".", action_len=len(stem) + 1)
    if filters.since is not None:
        where.append("al.created_at >= :since")
        params["since"] = rows.to_ms(filters.since)
    if filters.until is not None:
        where.append("al.created_at < :until")
        params["until"] = rows.to_ms(filters.until)
    return where, params


def page_sql(
    select: str, where: list[str], params: dict[str, Any], key: str, query: ListQuery
) -> tuple[str, dict[str, Any]]:
    """One more row than the page holds is fetched, to tell whether another page follows."""
    iterator = query.iterator
    backwards = iterator is not None and iterator.startswith("-")
    fetch_desc = query.descending != backwards
    clauses = list(where)
    params = dict(params)
    if iterator:
        clauses.append(f"{key} {'<' if fetch_desc else '>'} :_cursor")
        params["_cursor"] = iterator.removeprefix("-")
    params["_limit"] = query.limit + 1
    sql = (
        f"{select} WHERE {' AND '.join(clauses) or '1 = 1'} "
        f"ORDER BY {key} {'DESC' if fetch_desc else 'ASC'} LIMIT :_limit"
    )
    return sql, params


def shape_page(
    fetched: Sequence[Any],
    query: ListQuery,
    convert: Callable[[Any], T],
    item_key: Callable[[T], str],
) -> Page[T]:
    backwards = query.iterator is not None and query.iterator.startswith("-")
    found = list(fetched[: query.limit])
    if backwards:
        found.reverse()
    items = [convert(r) for r in found]
    return Page(
        data=items,
        iterator=item_key(items[-1]) if items else query.iterator,
        prev_iterator=f"-{item_key(items[0])}" if items else None,
        done=False if backwards else len(fetched) <= query.limit,
    )


HAS_ENDPOINTS = "EXISTS (SELECT 1 FROM endpoints AS e WHERE e.app_id = a.id)"
_PARAM = re.compile(r"(?<![:\w]):(\w+)")


@lru_cache(maxsize=1024)
def compile_positional(sql: str) -> tuple[str, tuple[str, ...]]:
    """``:name`` to ``$n``; returns the text and the parameter names in ``$n`` order."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in names:
            names.append(name)
        return f"${names.index(name) + 1}"

    return _PARAM.sub(number, sql), tuple(names)


def to_positional(sql: str, params: dict[str, Any]) -> tuple[str, list[Any]]:
    """``:name`` parameters to ``$n`` with the argument list, as asyncpg expects."""
    text, names = compile_positional(sql)
    return text, [params[name] for name in names]
