"""The pure rules of the operations: what a PUT, a PATCH and a publish make of their input."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from hookline.domain.errors import Forbidden, InvalidRequest
from hookline.domain.models import Application, Endpoint, EventType, SigningKey
from hookline.operations.applications import (
    ApplicationPatch,
    NewApplication,
    new_application,
    patch_application,
    replace_application,
)
from hookline.operations.endpoints import (
    EndpointFields,
    EndpointPatch,
    HeadersPatch,
    new_endpoint,
    patch_endpoint,
    patch_headers,
    replace_endpoint,
)
from hookline.operations.event_types import (
    EventTypeFields,
    EventTypePatch,
    patch_event_type,
    replace_event_type,
)
from hookline.operations.messages import NewMessage, build_message, example_payload, retention
from hookline.operations.principal import SYSTEM, Principal

THEN = datetime(2026, 11, 1, tzinfo=UTC)
NOW = datetime(2026, 12, 1, tzinfo=UTC)
APP = Application("app_1", "Acme", "acme", 5, {"k": "v"}, THEN, THEN)
ENDPOINT = Endpoint(
    id="ep_1",
    app_id="app_1",
    url="https://example.com/a",
    uid="ep",
    description="first",
    throttle_rate=None,
    disabled=False,
    event_types=("a.b",),
    channels=("eu",),
    metadata={"m": "1"},
    headers={"x-team": "core", "x-keep": "1"},
    keys=(SigningKey("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),),
    created_at=THEN,
    updated_at=THEN,
)
EVENT_TYPE = EventType("a.b", "desc", False, False, {"1": {}}, "g", ("f",), THEN, THEN)


def test_principal_scoped_to_an_application_sees_only_that_one() -> None:
    """Tenant isolation: a scoped principal sees its application; an admin sees all."""
    scoped = Principal(token_id="tok_1", app_id="app_1")
    other = Application("app_2", "Other", None, None, {}, THEN, THEN)
    assert scoped.sees(APP) and not scoped.sees(other)
    assert SYSTEM.sees(other) and SYSTEM.is_admin and not scoped.is_admin


def test_scoped_principal_is_refused_admin_work() -> None:
    """require_admin raises Forbidden (403) for a scoped principal and passes an admin."""
    SYSTEM.require_admin()
    with pytest.raises(Forbidden):
        Principal(token_id="tok_1", app_id="app_1").require_admin()


def test_new_application_takes_the_path_uid_only_when_the_body_has_none() -> None:
    """PUT's path names the uid of a created application unless the body sets one."""
    assert new_application(NewApplication("A"), NOW, uid="path").uid == "path"
    assert new_application(NewApplication("A", uid="body"), NOW, uid="path").uid == "body"


def test_replace_application_sets_every_field_and_keeps_an_omitted_uid() -> None:
    """PUT replaces name, throttle and metadata; it keeps id, creation time and the old uid."""
    updated = replace_application(APP, NewApplication("New"), NOW)
    assert (updated.name, updated.throttle_rate, updated.metadata) == ("New", None, {})
    assert (updated.id, updated.uid, updated.created_at, updated.updated_at) == (
        "app_1",
        "acme",
        THEN,
        NOW,
    )


def test_patch_application_changes_only_named_fields_and_never_nulls_required_ones() -> None:
    """PATCH with name None keeps the name; a None throttle clears it; unset fields stay."""
    updated = patch_application(APP, ApplicationPatch(name=None, throttle_rate=None), NOW)
    assert (updated.name, updated.throttle_rate, updated.metadata) == ("Acme", None, {"k": "v"})
    assert updated.updated_at == NOW
    renamed = patch_application(APP, ApplicationPatch(name="B", metadata={"x": "y"}), NOW)
    assert (renamed.name, renamed.metadata, renamed.uid) == ("B", {"x": "y"}, "acme")


def test_patch_endpoint_keeps_required_fields_and_normalizes_lists() -> None:
    """PATCH: a null url/disabled is ignored, an empty channel list clears the channels."""
    changes = EndpointPatch(url=None, disabled=None, channels=[], event_types=None)
    updated = patch_endpoint(ENDPOINT, changes, NOW)
    assert updated.url == ENDPOINT.url and updated.disabled is False
    assert updated.channels is None and updated.event_types is None
    assert updated.description == "first" and updated.updated_at == NOW
    moved = patch_endpoint(ENDPOINT, EndpointPatch(url="https://x.test/", channels=["a"]), NOW)
    assert moved.url == "https://x.test/" and moved.channels == ("a",)


def test_replace_endpoint_keeps_keys_and_headers() -> None:
    """PUT replaces the fields but never the signing keys or the custom headers."""
    updated = replace_endpoint(ENDPOINT, EndpointFields(url="https://b.test/"), None, NOW)
    assert updated.url == "https://b.test/" and updated.event_types is None
    assert updated.channels is None and updated.metadata == {} and updated.uid == "ep"
    assert updated.keys == ENDPOINT.keys and updated.headers == ENDPOINT.headers


def test_new_endpoint_generates_a_secret_and_normalizes_headers() -> None:
    """Without a secret one is generated; header names are lower-cased."""
    given = EndpointFields(url="https://a.test/", headers={"X-Team": "core"}, channels=["eu"])
    created = new_endpoint(APP, given, None, NOW, uid="path")
    assert created.current_key.secret.startswith("whsec_")
    assert created.headers == {"X-Team": "core"} and created.uid == "path"
    assert created.channels == ("eu",) and created.id.startswith("ep_")


def test_new_endpoint_refuses_a_bad_secret_or_header_with_its_field() -> None:
    """A malformed secret or a hop-by-hop header is a 422 naming the body field."""
    with pytest.raises(InvalidRequest) as bad_secret:
        new_endpoint(APP, EndpointFields(url="https://a.test/", secret="nope"), None, NOW)
    assert bad_secret.value.loc == ("body", "secret")
    fields = EndpointFields(url="https://a.test/", headers={"Connection": "close"})
    with pytest.raises(InvalidRequest) as bad_header:
        new_endpoint(APP, fields, None, NOW)
    assert bad_header.value.loc == ("body", "headers")


def test_patch_headers_merges_overwrites_and_deletes_case_insensitively() -> None:
    """New headers are added or replace old ones; named ones go, whatever their case."""
    changes = HeadersPatch(headers={"X-Team": "edge", "X-New": "1"}, delete=["X-KEEP"])
    updated = patch_headers(ENDPOINT, changes, NOW)
    assert updated.headers == {"X-Team": "edge", "X-New": "1"}


def test_event_type_put_keeps_creation_time_and_patch_keeps_required_fields() -> None:
    """PUT replaces every field but created_at and the version it read (which its write
    checks); PATCH ignores a null description."""
    replaced = replace_event_type(replace(EVENT_TYPE, version=4), EventTypeFields("new"), NOW)
    assert replaced.description == "new" and replaced.schemas is None and replaced.version == 4
    assert replaced.created_at == THEN and replaced.updated_at == NOW
    patched = patch_event_type(
        EVENT_TYPE, EventTypePatch(description=None, archived=True, feature_flags=["x"]), NOW
    )
    assert patched.description == "desc" and patched.archived is True
    assert patched.feature_flags == ("x",) and patched.group_name == "g"


def test_retention_defaults_to_ninety_days_and_refuses_both_units() -> None:
    """Payloads are kept 90 days unless days or hours are given, never both."""
    assert retention(NewMessage("a.b", {})) == timedelta(days=90)
    assert retention(NewMessage("a.b", {}, retention_days=3)) == timedelta(days=3)
    assert retention(NewMessage("a.b", {}, retention_hours=5)) == timedelta(hours=5)
    with pytest.raises(InvalidRequest) as both:
        retention(NewMessage("a.b", {}, retention_days=1, retention_hours=1))
    assert both.value.loc == ("body", "payloadRetentionHours")


def test_build_message_serializes_the_payload_and_sets_the_expiry() -> None:
    """The payload is stored as compact JSON bytes; empty channel and tag lists become None."""
    msg = build_message(APP, NewMessage("a.b", {"n": 1}, channels=[], tags=["t"]), NOW)
    assert orjson.loads(msg.payload or b"") == {"n": 1} and msg.app_id == "app_1"
    assert msg.channels is None and msg.tags == ("t",)
    assert msg.timestamp == NOW and msg.expires_at == NOW + timedelta(days=90)


def test_build_message_keeps_deliver_at_and_refuses_it_out_of_bounds() -> None:
    """deliverAt is stored on the message; far in the past or beyond 24 h ahead is a 422."""
    later = NOW + timedelta(seconds=2)
    assert build_message(APP, NewMessage("a.b", {}, deliver_at=later), NOW).deliver_at == later
    for bad in (NOW - timedelta(minutes=5), NOW + timedelta(hours=24, seconds=1)):
        with pytest.raises(InvalidRequest) as refused:
            build_message(APP, NewMessage("a.b", {}, deliver_at=bad), NOW)
        assert refused.value.loc == ("body", "deliverAt")


def test_example_payload_picks_the_indexed_example_or_a_stub() -> None:
    """The first schema with enough examples gives the payload; otherwise a stub names the type."""
    with_examples = EventType(
        "a.b",
        "d",
        False,
        False,
        {"1": {"type": "object"}, "2": {"examples": [{"n": 0}, {"n": 1}]}},
        None,
        None,
        THEN,
        THEN,
    )
    assert example_payload(with_examples, 1) == {"n": 1}
    assert example_payload(with_examples, 2) == {"type": "a.b", "example": True}
    assert example_payload(EVENT_TYPE, 0) == {"type": "a.b", "example": True}
