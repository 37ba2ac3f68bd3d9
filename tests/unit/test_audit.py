"""The audit log's pure rules: summaries name fields, never values; what a tenant sees."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from hookline.domain import audit as a
from hookline.domain.models import SigningKey
from tests.conftest import make_app, make_endpoint

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _entry(actor: str, actor_app_id: str | None) -> a.AuditEntry:
    return a.AuditEntry(
        id="audit_1",
        created_at=NOW,
        actor=actor,
        address="198.51.100.7",
        action="endpoint.updated",
        app_id="app_1",
        target_id="ep_1",
        summary={"fields": ["url"]},
        actor_app_id=actor_app_id,
    )


def test_changed_fields_names_what_differs_and_ignores_versions_and_times() -> None:
    """Only the fields a change made differ are named, sorted; the version and update time,
    which move with every write, are not."""
    endpoint = make_endpoint(make_app())
    later = replace(
        endpoint,
        url="https://example.com/new",
        description="new",
        version=endpoint.version + 1,
        updated_at=NOW,
    )
    assert a.changed_fields(endpoint, later) == ["description", "url"]
    assert a.changed_fields(endpoint, endpoint) == []


def test_changed_fields_names_keys_and_headers_without_their_values() -> None:
    """A rotation or a header change is named ``keys`` / ``headers``: the summary is built
    from names only, so no secret or header value can reach it."""
    endpoint = make_endpoint(make_app())
    secret = "whsec_" + "A" * 32
    rotated = replace(endpoint, keys=(SigningKey(secret),), headers={"Authorization": "Bearer x"})
    named = a.changed_fields(endpoint, rotated)
    assert named == ["headers", "keys"]
    assert secret not in str(named) and "Bearer" not in str(named)


def test_header_names_lists_set_and_removed_names_case_insensitively() -> None:
    """Headers added or changed are ``set``, dropped ones ``removed``, unchanged ones are not
    listed, names are compared as HTTP does (in any case), and no value appears."""
    before = {"X-Keep": "1", "X-Change": "old", "X-Drop": "gone"}
    after = {"x-keep": "1", "X-Change": "s3cr3t", "Authorization": "Bearer t0k3n"}
    names = a.header_names(before, after)
    assert names == {"set": ["authorization", "x-change"], "removed": ["x-drop"]}
    assert "s3cr3t" not in str(names) and "t0k3n" not in str(names)


def test_action_filter_matches_the_action_and_whole_segments_under_it() -> None:
    """``endpoint`` and ``endpoint.`` find every ``endpoint.*`` action and ``endpoint``
    itself, never an action that merely starts with the same letters."""
    assert a.action_matches("endpoint", "endpoint.updated")
    assert a.action_matches("endpoint.", "endpoint.secret_rotated")
    assert a.action_matches("endpoint.updated", "endpoint.updated")
    assert not a.action_matches("endpoint", "endpoints_x.updated")
    assert not a.action_matches("endpoint.up", "endpoint.updated")


def test_summary_drops_the_items_that_are_none() -> None:
    """A summary carries only what applies, so entries stay small."""
    assert a.summary(expired=2, sessions=None) == {"expired": 2}


def test_a_tenant_sees_its_own_tokens_entries_whole() -> None:
    """An entry made by one of the application's own tokens is shown as recorded."""
    entry = _entry("tok_mine", "app_1")
    assert a.seen_by(entry, "app_1") == entry
    assert a.seen_by(entry, None) == entry


def test_a_tenant_sees_an_admin_as_admin_without_its_address() -> None:
    """An admin token's id and the operator's address are not shown to an application's
    token; the CLI and the process keep their names, without an address."""
    shown = a.seen_by(_entry("tok_admin", None), "app_1")
    assert (shown.actor, shown.address) == ("admin", None)
    cli = a.seen_by(_entry("cli", None), "app_1")
    assert (cli.actor, cli.address) == ("cli", None)
    assert a.seen_by(_entry("tok_admin", None), None).actor == "tok_admin"
