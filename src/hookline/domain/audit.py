"""The audit log's rules: what an entry holds, what its summary may say, who may see what.

Pure: the operations build entries (``operations/audit.py``) and the store keeps them
append-only. An entry names who acted (a token id, or ``cli``/``system`` when no token
did), from where, what they did (a stable dotted action), to which object, and a small
summary of what changed. A summary holds field *names* and harmless facts (a count, a
task kind, a grace period), never a value that could be a secret: no signing secret, no
header value, no token, no URL (its userinfo or query may carry credentials).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from datetime import datetime
from typing import Any

from hookline.domain.operational import OPERATIONAL_APP_ID

# Actions: ``<object>.<verb>``; the list is documented in docs/security.md ("Audit log").
APPLICATION_CREATED = "application.created"
APPLICATION_UPDATED = "application.updated"
APPLICATION_DELETED = "application.deleted"
EVENT_TYPE_CREATED = "event_type.created"
EVENT_TYPE_UPDATED = "event_type.updated"
EVENT_TYPE_ARCHIVED = "event_type.archived"
EVENT_TYPE_DELETED = "event_type.deleted"
ENDPOINT = "endpoint"
OPERATIONAL_ENDPOINT = "operational_endpoint"
"""The prefix of the operator's operational-webhook endpoints' actions (no application)."""
CREATED = "created"
UPDATED = "updated"
ENABLED = "enabled"
DISABLED = "disabled"
DELETED = "deleted"
SECRET_ROTATED = "secret_rotated"
HEADERS_REPLACED = "headers_replaced"
HEADERS_UPDATED = "headers_updated"
AUTH_CHANGED = "auth_changed"
"""An endpoint's credentials (HTTP Basic, OAuth, mutual TLS) set or removed."""
TOKEN_CREATED = "token.created"
TOKEN_REVOKED = "token.revoked"
TOKEN_NETWORKS_CHANGED = "token.networks_changed"
TOKEN_LOGGED_OUT = "token.logged_out"
TOKENS_EXPIRED = "token.expired_all"
TOKEN_CONFIGURED = "token.configured"
MESSAGE_RESENT = "message.resent"
MESSAGE_SKIPPED = "message.skipped"
MESSAGE_CONTENT_EXPUNGED = "message.content_expunged"
EXAMPLE_SENT = "message.example_sent"
TASK_STARTED = "background_task.started"
TASK_CANCELED = "background_task.canceled"
FAILURE_GROUP_ACKNOWLEDGED = "failure_group.acknowledged"
FAILURE_GROUP_RESOLVED = "failure_group.resolved"
SECRETS_REKEYED = "encryption.rekeyed"
PORTAL_BRANDING_SET = "portal_branding.set"
PORTAL_BRANDING_CLEARED = "portal_branding.cleared"

CLI_ACTOR = "cli"
"""The actor of a ``hookline …`` command: the operator at the shell, who holds no token."""
SYSTEM_ACTOR = "system"
"""The actor of the process itself: first start, auto-disable."""
ADMIN_ACTOR = "admin"
"""How an admin token's id is shown to an application-scoped reader."""

UNCOMPARED = frozenset({"version", "updated_at", "created_at", "failing_since"})
"""Fields that move with every write, or are never written by an update: not a change."""
ACTION_PATTERN = r"^[a-z_]+(\.[a-z_]+)*\.?$"
"""What an ``action`` filter may be: a whole action or a dotted prefix of one."""
MAX_ACTION_LENGTH = 128
ACTOR_PATTERN = r"^[a-zA-Z0-9_]+$"
"""What an ``actor`` filter may be: a token id (``tok_…``) or ``cli``, ``system``."""


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One recorded change. Never updated; removed only by retention."""

    id: str
    created_at: datetime
    actor: str
    """The token id that acted, or ``cli`` / ``system``: never a token itself."""
    address: str | None
    """The API client's address (after ``HOOKLINE_TRUSTED_PROXIES``); None off the API."""
    action: str
    app_id: str | None
    """The application the change belongs to; None for event types, admin tokens, the
    operational webhooks and other deployment-wide changes."""
    target_id: str | None
    """The object changed: an application, endpoint, message, token or task id, or an
    event type's name."""
    summary: Mapping[str, Any]
    actor_app_id: str | None = None
    """The application the acting token is scoped to; None for an admin, the CLI, the
    process. Decides what an application-scoped reader is shown (``seen_by``)."""


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """What ``GET /api/v1/audit`` narrows the log to; every field optional."""

    app_id: str | None = None
    actor: str | None = None
    action: str | None = None
    """An action, or a prefix of one ending at a dot (``endpoint`` finds ``endpoint.*``)."""
    since: datetime | None = None
    until: datetime | None = None


def action_matches(prefix: str, action: str) -> bool:
    """The ``action`` filter's rule, as the store applies it: the action itself, or every
    action under it (``endpoint`` and ``endpoint.`` both find ``endpoint.updated``, never
    ``endpoints_x``)."""
    stem = prefix.rstrip(".")
    return action == stem or action.startswith(stem + ".")


def endpoint_action(app_id: str, verb: str) -> tuple[str, str | None]:
    """The action of an endpoint change and the application it is recorded under: the
    operator's operational-webhook endpoints belong to no customer's application."""
    if app_id == OPERATIONAL_APP_ID:
        return f"{OPERATIONAL_ENDPOINT}.{verb}", None
    return f"{ENDPOINT}.{verb}", app_id


def changed_fields(before: object, after: object) -> list[str]:
    """The names of the dataclass fields that differ between two versions of an object,
    sorted; ``keys`` and ``headers`` are named, never shown."""
    names = [
        f.name
        for f in fields(before)  # type: ignore[arg-type]
        if f.name not in UNCOMPARED and getattr(before, f.name) != getattr(after, f.name)
    ]
    return sorted(names)


def header_names(before: Mapping[str, str], after: Mapping[str, str]) -> dict[str, list[str]]:
    """Which custom headers a change set and which it removed, by name only (names are not
    secret; values may be credentials). Names compare case-insensitively, as HTTP's do."""
    old = {k.lower(): v for k, v in before.items()}
    new = {k.lower(): v for k, v in after.items()}
    return {
        "set": sorted(name for name, value in new.items() if old.get(name) != value),
        "removed": sorted(name for name in old if name not in new),
    }


def summary(**items: Any) -> dict[str, Any]:
    """A summary without the items that are None, so entries stay small."""
    return {k: v for k, v in items.items() if v is not None}


def seen_by(entry: AuditEntry, app_id: str | None) -> AuditEntry:
    """The entry as a reader scoped to ``app_id`` (None: an admin) may see it: an actor from
    outside the application (an admin token) is shown as ``admin``, without its address,
    since the operator's tokens and networks are not the tenant's to know."""
    if app_id is None or entry.actor_app_id == app_id:
        return entry
    if entry.actor in (CLI_ACTOR, SYSTEM_ACTOR):
        return replace(entry, address=None)
    return replace(entry, actor=ADMIN_ACTOR, address=None)
