"""The SQL of a deliveries search (``Store.search_deliveries``, ``domain/search.py``),
built from named blocks: ``search_deliveries`` (the page's head, in ``queries.sql``) and
each dialect's fragments for payload terms (``search_words_in_window``,
``search_text_holds``, ``search_path_is``), its windows (``search_window``) and the word
index's probe (``search_probe``). The repository (``_search_rows``) runs the plans:

- *the first window*: the newest ``FIRST_WINDOW`` messages asked of the word index with
  the other filters; a common word fills the page there;
- *few matches*: if the page is still short, a probe reads at most ``PROBE_LIMIT`` + 1
  matching message ids; if it came back short, the page is read from those messages'
  deliveries by key, so a rare value (a customer id, an email) costs the same in a million
  messages as in a thousand;
- *many matches*: else further windows (``Window``), each twice as large as the last,
  each statement asking the word index about one window only, until the page is full. A
  window bounds what a statement may read: asked row by row without one, SQLite's FTS5
  reads through a common word's whole doclist for every row (seconds a page at a million
  messages), and PostgreSQL, whose estimate for a word is a flat 0.5 % of rows, reads every
  match of a common word and sorts them, or scans the table.

Either way the words are then checked against the payload text itself
(``search_text_holds``). Both word indexes split words alike, at every run of characters
other than letters and digits (FTS5's ``unicode61``; on PostgreSQL a ``regexp_replace``
before the ``simple`` configuration), so the two backends find the same messages.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hookline.domain import ids
from hookline.domain.search import DeliverySearch, PathMatch
from hookline.storage import rows
from hookline.storage.sql import SQLITE, Dialect

EARLIEST_ID_MS = 1_400_000_000_000
"""KSUID's epoch (2014-05-13T16:53:20Z): the earliest time an id can spell."""
PROBE_LIMIT = 2_000
"""The most message ids a probe reads to pick the few-matches plan (0.2 % of a million).
Small, because on PostgreSQL the probe of a common word reads heap rows whose tsvector it
recomputes (a bitmap too large for ``work_mem`` is lossy): 20,000 cost seconds."""
FIRST_WINDOW = 4096
"""Messages in the first window of payload words; each next one is twice the last, so a
page whose matches are sparse still needs only a few statements."""


def _fragment(name: str, queries: Mapping[str, str]) -> str:
    return queries[name]


def match_params(dialect: Dialect, phrases: Sequence[str]) -> tuple[str, dict[str, Any]]:
    """The word index's query for ``phrases`` (all must be there, each as a run of words)
    and its parameters: an FTS5 query string on SQLite, a ``tsquery`` expression on
    PostgreSQL (its ``{match}`` in the named fragments)."""
    if dialect is SQLITE:
        quoted = " ".join('"' + phrase.replace('"', '""') + '"' for phrase in phrases)
        return ":match", {"match": quoted}
    expression = " && ".join(
        f"phraseto_tsquery('simple', regexp_replace(:phrase_{i}, '(\\W|_)+', ' ', 'g'))"
        for i in range(len(phrases))
    )
    return expression, {f"phrase_{i}": phrase for i, phrase in enumerate(phrases)}


def probe_sql(
    dialect: Dialect, queries: Mapping[str, str], phrases: Sequence[str]
) -> tuple[str, dict[str, Any]]:
    match, params = match_params(dialect, phrases)
    text = _fragment("search_probe", queries).format(match=match)
    return text, {**params, "probe": PROBE_LIMIT + 1}


@dataclass(frozen=True, slots=True)
class Window:
    """A run of messages, by id, that one statement of the many-matches plan asks the word
    index about: on SQLite with the range of their keys in ``message_search_docs``, so FTS5
    reads that range of the index once."""

    low: str | None
    """The oldest message id in the window; None when it reaches the oldest message."""
    high: str | None
    """The newest message id it may hold (the cursor's); None from the newest on."""
    doc_low: int
    doc_high: int
    """The range of the window's keys in the SQLite index (0 on PostgreSQL)."""


def window_sql(high: str | None, inclusive: bool, size: int) -> tuple[str, dict[str, Any]]:
    """The statement reading the next window below ``high`` (at ``high`` too if
    ``inclusive``): its oldest message id, its doc range and how many messages it holds."""
    name = "search_window"
    return name, {"high": high or "~", "inclusive": int(inclusive), "size": size}


def window_from(row: Any, size: int, high: str | None) -> Window | None:
    if not row["found"]:
        return None
    low = row["low"] if row["found"] >= size else None
    return Window(low, high, row["doc_low"], row["doc_high"])


def page_sql(
    dialect: Dialect,
    queries: Mapping[str, str],
    search: DeliverySearch,
    candidates: Sequence[str] | None,
    window: Window | None = None,
) -> tuple[str, dict[str, Any]]:
    """The page's statement. ``candidates`` are the message ids the probe found when it
    found few; ``window`` the run of messages the many-matches plan asks the word index
    about; neither when there are no words."""
    key = walk_key(search)
    where, params = _filters(dialect, search, key)
    terms = search.terms
    if candidates is not None:
        where.append(dialect.in_list.format(expr="d.msg_id", param="candidates"))
        params["candidates"] = dialect.list_param(candidates)
    elif window is not None:
        match, match_args = match_params(dialect, terms.phrases)
        where.append(_fragment("search_words_in_window", queries).format(match=match))
        params.update(match_args, doc_low=window.doc_low, doc_high=window.doc_high)
        # Bounds on the message's id as well as the walk's key: PostgreSQL does not carry
        # a range across the join's equality, and would read every match of a common word.
        if window.low is not None:
            where.append(f"{key} >= :window_low AND m.id >= :window_low")
            params["window_low"] = window.low
        if window.high is not None:
            where.append("m.id <= :window_high")
            params["window_high"] = window.high
    for i, word in enumerate(terms.words):
        where.append(_fragment("search_text_holds", queries).format(word=f"word_{i}"))
        params[f"word_{i}"] = word
    for i, path in enumerate(terms.paths):
        where.append(
            _fragment("search_path_is", queries).format(path=f"path_{i}", value=f"value_{i}")
        )
        params[f"path_{i}"] = _path_param(dialect, path)
        params[f"value_{i}"] = path.value
    if search.cursor is not None:
        # Plain bounds first, on the message's id too: PostgreSQL reads an index range from
        # them, not from the OR, and does not carry one across the join's equality.
        where.append(
            f"{key} <= :after_msg AND m.id <= :after_msg "
            f"AND ({key} < :after_msg OR d.endpoint_id < :after_ep)"
        )
        params.update(after_msg=search.cursor.msg_id, after_ep=search.cursor.endpoint_id)
    params["limit"] = search.limit + 1
    head = "search_deliveries"
    text = (
        f"{_fragment(head, queries)} WHERE {' AND '.join(where) or '1 = 1'} "
        f"ORDER BY {key} DESC, d.endpoint_id DESC LIMIT :limit"
    )
    return text, params


_OF_MESSAGE = "SELECT {column} FROM messages AS mm WHERE mm.id = d.msg_id"
"""A test of the delivery's message is read through the delivery (``mm``, by primary key),
never as a condition on the joined ``m``: SQLite would answer a condition on ``m`` alone
with a Bloom filter built by scanning every message before the walk starts (seconds at a
million messages, for a page the walk finds in a few thousand rows)."""


def walk_key(search: DeliverySearch) -> str:
    """The column the page walks by, newest first: the message id, as the joined message's
    (``m.id``) when an application is the narrowest filter, so the walk goes through that
    application's messages only (``messages_app``); else as the delivery's (``d.msg_id``:
    the endpoint's deliveries through ``deliveries_endpoint``, or all through the unique
    index). The two are equal; only the index that can serve the order differs."""
    return "m.id" if search.app_id is not None and search.endpoint_id is None else "d.msg_id"


def _filters(
    dialect: Dialect, search: DeliverySearch, key: str
) -> tuple[list[str], dict[str, Any]]:
    """The conditions that need no index of their own: each is either the walk's key (the
    endpoint, the message-id range of a time window) or a test of a row the walk reached."""
    where: list[str] = []
    params: dict[str, Any] = {}
    if search.app_id is not None:
        where.append(f"{'m' if key == 'm.id' else 'd'}.app_id = :app_id")
        params["app_id"] = search.app_id
    if search.endpoint_id is not None:
        where.append("d.endpoint_id = :endpoint_id")
        params["endpoint_id"] = search.endpoint_id
    if search.event_types:
        expr = f"({_OF_MESSAGE.format(column='mm.event_type')})"
        where.append(dialect.in_list.format(expr=expr, param="event_types"))
        params["event_types"] = dialect.list_param(search.event_types)
    if search.status is not None:
        # "+ 0" keeps the walk in (message, endpoint) order: the partial index of failed
        # rows (deliveries_dead) is in delivery-id order, and a plan through it would sort
        # every failed delivery before returning the first page.
        where.append("d.status + 0 = :status")
        params["status"] = int(search.status)
    if search.status_code is not None or search.status_code_class is not None:
        low, high = _code_range(search)
        where.append(
            "EXISTS (SELECT 1 FROM attempts AS a WHERE a.msg_id = d.msg_id "
            "AND a.endpoint_id = d.endpoint_id "
            "AND a.response_status_code >= :code_lo AND a.response_status_code < :code_hi)"
        )
        params.update(code_lo=low, code_hi=high)
    # Message ids lead with their creation time, so a time window is a key range of the
    # walk (ids.first_id_at), as the other lists' before/after are.
    if search.before is not None:
        where.append(f"{key} < :before_id")
        params["before_id"] = _first_id_at(rows.dt_to_ms(search.before))
    if search.after is not None:
        where.append(f"{key} >= :after_id")
        params["after_id"] = _first_id_at(rows.dt_to_ms(search.after) + 1)
    if search.terms.message_id is not None:
        where.append(f"{key} = :msg_id")
        params["msg_id"] = search.terms.message_id
    if search.terms.trace_id is not None:
        where.append(
            f"({_OF_MESSAGE.format(column='substr(mm.trace_context, 4, 32)')}) = :trace_id"
        )
        params["trace_id"] = search.terms.trace_id
    return where, params


def _first_id_at(unix_ms: int) -> str:
    """The smallest message id of ``unix_ms`` or later. An id cannot spell a time before
    KSUID's epoch (``EARLIEST_ID_MS``), and any message is later than that, so an earlier
    bound is the epoch's."""
    return ids.first_id_at(ids.MESSAGE, max(unix_ms, EARLIEST_ID_MS))


def _code_range(search: DeliverySearch) -> tuple[int, int]:
    """The status codes an attempt may have got: one code, or a class (0 alone for no
    answer), or where both are given the code if it is of the class, else none."""
    if search.status_code is not None:
        low, high = search.status_code, search.status_code + 1
        if search.status_code_class is not None and low // 100 * 100 != search.status_code_class:
            return 0, 0
        return low, high
    klass = search.status_code_class or 0
    return klass, klass + 100 if klass else 1


def _path_param(dialect: Dialect, path: PathMatch) -> Any:
    """SQLite's JSON path text (``$."data"."items"[0]``), PostgreSQL's ``text[]``."""
    if dialect is SQLITE:
        return "$" + "".join(f"[{s}]" if s.isdigit() else f'."{s}"' for s in path.path)
    return list(path.path)
