"""Endpoint operations on every backend: filters, upserts, patches, secrets, headers."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from hookline.domain.errors import InvalidRequest, NotFound
from hookline.domain.models import Application, Endpoint
from hookline.domain.policy import EndpointPolicy, FallbackPolicy
from hookline.operations import applications, endpoints, event_types
from hookline.operations.applications import NewApplication
from hookline.operations.endpoints import EndpointFields, EndpointPatch, HeadersPatch
from hookline.operations.event_types import EventTypeFields
from hookline.operations.principal import SYSTEM, Principal
from hookline.storage.base import ListQuery
from tests.conftest import utcnow
from tests.integration.conftest import Ops

URL = "https://example.com/hook"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture
async def app(ops: Ops) -> Application:
    """An application ``acme`` with the event types a.b and c.d."""
    created, _ = await applications.create(ops.ops, SYSTEM, NewApplication("Acme", uid="acme"))
    for name in ("a.b", "c.d"):
        await event_types.create(ops.ops, SYSTEM, name, EventTypeFields(name))
    return created


async def _endpoint(ops: Ops, **given: Any) -> Endpoint:
    """An endpoint ``ep`` of ``acme`` at URL, with the given fields changed."""
    fields = replace(EndpointFields(url=URL, uid="ep"), **given)
    return await endpoints.create(ops.ops, SYSTEM, "acme", fields)


async def test_unknown_event_type_in_a_filter_is_refused_and_nothing_stored(
    ops: Ops, app: Application
) -> None:
    """A filter naming an unknown event type is a 422 on filterTypes; no endpoint is made."""
    with pytest.raises(InvalidRequest) as refused:
        await _endpoint(ops, event_types=["a.b", "no.such"])
    assert refused.value.loc == ("body", "filterTypes") and "no.such" in refused.value.detail
    page = await endpoints.list_endpoints(ops.ops, SYSTEM, "acme", ListQuery())
    assert page.data == []


async def test_filters_are_deduplicated_in_order(ops: Ops, app: Application) -> None:
    """A filter that repeats a name keeps it once, in first-seen order."""
    created = await _endpoint(ops, event_types=["c.d", "a.b", "c.d"])
    assert created.event_types == ("c.d", "a.b")
    assert await endpoints.get(ops.ops, SYSTEM, "acme", "ep") == created


async def test_upsert_creates_under_the_path_uid_then_replaces(ops: Ops, app: Application) -> None:
    """PUT creates a missing endpoint with the path as uid, then replaces its fields."""
    created, was_created = await endpoints.upsert(
        ops.ops, SYSTEM, "acme", "by-put", EndpointFields(url=URL, event_types=["a.b"])
    )
    assert was_created and created.uid == "by-put" and created.event_types == ("a.b",)
    replaced, was_created = await endpoints.upsert(
        ops.ops, SYSTEM, "acme", "by-put", EndpointFields(url="https://example.com/new")
    )
    assert not was_created and replaced.id == created.id
    assert replaced.url == "https://example.com/new" and replaced.event_types is None
    assert replaced.keys == created.keys
    assert await ops.store.get_endpoint(app.id, created.id) == replaced


async def test_patch_changes_only_what_it_names_and_checks_filters(
    ops: Ops, app: Application
) -> None:
    """PATCH keeps unnamed fields; an unknown event type leaves the endpoint untouched."""
    created = await _endpoint(ops, description="keep me")
    patched = await endpoints.patch(
        ops.ops, SYSTEM, "acme", "ep", EndpointPatch(event_types=["a.b"], disabled=True, url=None)
    )
    assert (patched.url, patched.description) == (URL, "keep me")
    assert patched.event_types == ("a.b",) and patched.disabled is True
    with pytest.raises(InvalidRequest):
        await endpoints.patch(ops.ops, SYSTEM, "acme", "ep", EndpointPatch(event_types=["x.y"]))
    assert await ops.store.get_endpoint(app.id, created.id) == patched


async def test_rotation_keeps_the_old_secret_signing_for_the_grace_period(
    ops: Ops, app: Application
) -> None:
    """After a rotation both secrets sign until the grace ends; the new one is current."""
    await _endpoint(ops, secret=SECRET)
    new = await endpoints.rotate_secret(ops.ops, SYSTEM, "acme", "ep", grace=timedelta(hours=1))
    assert new != SECRET and new.startswith("whsec_")
    assert await endpoints.secret(ops.ops, SYSTEM, "acme", "ep") == new
    stored = await endpoints.get(ops.ops, SYSTEM, "acme", "ep")
    now = utcnow()
    assert stored.signing_secrets(now) == (new, SECRET)
    assert stored.signing_secrets(now + timedelta(hours=2)) == (new,)


async def test_rotation_to_a_given_secret_validates_it(ops: Ops, app: Application) -> None:
    """A chosen secret must be a valid whsec_ key; a bad one is a 422 and changes nothing."""
    before = await _endpoint(ops)
    with pytest.raises(InvalidRequest):
        await endpoints.rotate_secret(ops.ops, SYSTEM, "acme", "ep", "not-a-secret")
    assert await endpoints.get(ops.ops, SYSTEM, "acme", "ep") == before
    chosen = await endpoints.rotate_secret(ops.ops, SYSTEM, "acme", "ep", SECRET, timedelta(0))
    assert chosen == SECRET
    assert (await endpoints.get(ops.ops, SYSTEM, "acme", "ep")).signing_secrets(utcnow()) == (
        SECRET,
    )


async def test_headers_are_replaced_merged_and_shown_without_credentials(
    ops: Ops, app: Application
) -> None:
    """PUT replaces headers, PATCH merges and deletes; credentials are withheld on read."""
    await _endpoint(ops, headers={"X-Old": "1"})
    await endpoints.set_headers(
        ops.ops, SYSTEM, "acme", "ep", {"Authorization": "Bearer s", "X-Team": "core"}
    )
    shown, hidden = await endpoints.headers(ops.ops, SYSTEM, "acme", "ep")
    assert shown == {"X-Team": "core"} and hidden == ["Authorization"]
    await endpoints.update_headers(
        ops.ops, SYSTEM, "acme", "ep", HeadersPatch({"X-New": "2"}, delete=["AUTHORIZATION"])
    )
    stored = await endpoints.get(ops.ops, SYSTEM, "acme", "ep")
    assert stored.headers == {"X-Team": "core", "X-New": "2"}
    with pytest.raises(InvalidRequest) as refused:
        await endpoints.set_headers(ops.ops, SYSTEM, "acme", "ep", {"Host": "evil"})
    assert refused.value.loc == ("body", "headers")
    assert (await endpoints.get(ops.ops, SYSTEM, "acme", "ep")).headers == stored.headers


async def test_another_tenant_cannot_reach_an_endpoint(ops: Ops, app: Application) -> None:
    """A token scoped to another application gets NotFound for every endpoint operation."""
    await _endpoint(ops)
    other, _ = await applications.create(ops.ops, SYSTEM, NewApplication("O", uid="other"))
    stranger = Principal(token_id="tok_x", app_id=other.id)
    with pytest.raises(NotFound):
        await endpoints.get(ops.ops, stranger, "acme", "ep")
    with pytest.raises(NotFound):
        await endpoints.patch(ops.ops, stranger, "acme", "ep", EndpointPatch(disabled=True))
    with pytest.raises(NotFound):
        await endpoints.delete(ops.ops, stranger, "acme", "ep")
    own = Principal(token_id="tok_y", app_id=app.id)
    assert (await endpoints.get(ops.ops, own, "acme", "ep")).disabled is False


async def test_delete_removes_the_endpoint(ops: Ops, app: Application) -> None:
    """A deleted endpoint is NotFound afterwards."""
    await _endpoint(ops)
    await endpoints.delete(ops.ops, SYSTEM, "acme", "ep")
    with pytest.raises(NotFound):
        await endpoints.get(ops.ops, SYSTEM, "acme", "ep")


def _falls_back_to(endpoint_id: str) -> EndpointPolicy:
    return EndpointPolicy(fallback=FallbackPolicy(endpoint_id, after_open_seconds=60.0))


async def test_a_fallback_must_be_another_endpoint_of_the_same_application(
    ops: Ops, app: Application
) -> None:
    """policy.fallback.endpointId is resolved (a uid becomes the id) and must name another
    existing endpoint of the application: an unknown one, one of another application, or the
    endpoint itself is a 422 on that field, and nothing is stored or changed."""
    backup = await endpoints.create(ops.ops, SYSTEM, "acme", EndpointFields(URL, uid="backup"))
    primary = await _endpoint(ops, policy=_falls_back_to("backup"))
    assert primary.policy.fallback == FallbackPolicy(backup.id, 60.0)
    await applications.create(ops.ops, SYSTEM, NewApplication("Other", uid="other"))
    foreign = await endpoints.create(ops.ops, SYSTEM, "other", EndpointFields(URL))
    loc = ("body", "policy", "fallback", "endpointId")
    for target in ("ep_nosuchendpoint", foreign.id, primary.id, "ep"):
        with pytest.raises(InvalidRequest) as refused:
            await endpoints.patch(
                ops.ops, SYSTEM, "acme", "ep", EndpointPatch(policy=_falls_back_to(target))
            )
        assert refused.value.loc == loc
    with pytest.raises(InvalidRequest):
        await endpoints.create(
            ops.ops, SYSTEM, "acme", EndpointFields(URL, policy=_falls_back_to(foreign.id))
        )
    assert (await endpoints.get(ops.ops, SYSTEM, "acme", "ep")) == primary
    page = await endpoints.list_endpoints(ops.ops, SYSTEM, "acme", ListQuery())
    assert len(page.data) == 2


async def test_fallbacks_may_not_form_a_cycle(ops: Ops, app: Application) -> None:
    """a → b → c is allowed; then c → a (through PATCH or PUT) is a 422 naming the field."""
    for uid in ("a", "b", "c"):
        await endpoints.create(ops.ops, SYSTEM, "acme", EndpointFields(URL, uid=uid))
    await endpoints.patch(ops.ops, SYSTEM, "acme", "a", EndpointPatch(policy=_falls_back_to("b")))
    await endpoints.patch(ops.ops, SYSTEM, "acme", "b", EndpointPatch(policy=_falls_back_to("c")))
    with pytest.raises(InvalidRequest) as refused:
        await endpoints.patch(
            ops.ops, SYSTEM, "acme", "c", EndpointPatch(policy=_falls_back_to("a"))
        )
    assert "cycle" in refused.value.detail
    with pytest.raises(InvalidRequest):
        await endpoints.upsert(
            ops.ops, SYSTEM, "acme", "c", EndpointFields(URL, policy=_falls_back_to("a"))
        )
    assert (await endpoints.get(ops.ops, SYSTEM, "acme", "c")).policy == EndpointPolicy()
