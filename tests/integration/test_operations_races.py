"""Updates that race another writer keep both changes, on every backend.

Each test lets an update read its endpoint, then runs a competing write (another request, or
the worker disabling the endpoint on 410 Gone) before the update goes on to write: the
interleaving is driven by the order of awaits, not by timing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

import pytest

from hookline.domain.models import Endpoint
from hookline.operations import applications, endpoints, messages
from hookline.operations.applications import NewApplication
from hookline.operations.endpoints import EndpointFields, EndpointPatch, HeadersPatch
from hookline.operations.messages import NewMessage
from hookline.operations.principal import SYSTEM
from tests.conftest import failed_outcome, utcnow
from tests.integration.conftest import Ops


def compete_once(
    monkeypatch: pytest.MonkeyPatch, ops: Ops, compete: Callable[[], Awaitable[None]]
) -> None:
    """The next read of an endpoint is followed by ``compete``, before its reader goes on."""
    plain = ops.store.get_endpoint
    pending = [compete]

    async def read_then_compete(app_id: str, key: str) -> Endpoint | None:
        found = await plain(app_id, key)
        if pending:
            await pending.pop()()
        return found

    monkeypatch.setattr(ops.store, "get_endpoint", read_then_compete)


@pytest.fixture
async def endpoint(ops: Ops) -> Endpoint:
    await applications.create(ops.ops, SYSTEM, NewApplication("Acme", uid="acme"))
    fields = EndpointFields(url="https://example.com/h", uid="ep", headers={"X-A": "1"})
    return await endpoints.create(ops.ops, SYSTEM, "acme", fields)


async def test_two_header_patches_that_race_keep_both_headers(
    monkeypatch: pytest.MonkeyPatch, ops: Ops, endpoint: Endpoint
) -> None:
    """A header PATCH that read before another one wrote is applied again on top of it."""

    async def other_patch() -> None:
        await endpoints.update_headers(ops.ops, SYSTEM, "acme", "ep", HeadersPatch({"X-B": "2"}))

    compete_once(monkeypatch, ops, other_patch)
    await endpoints.update_headers(ops.ops, SYSTEM, "acme", "ep", HeadersPatch({"X-C": "3"}))
    final = await endpoints.get(ops.ops, SYSTEM, "acme", "ep")
    assert final.headers == {"X-A": "1", "X-B": "2", "X-C": "3"}
    assert final.version == endpoint.version + 2


async def test_a_patch_racing_the_workers_disable_leaves_the_endpoint_disabled(
    monkeypatch: pytest.MonkeyPatch, ops: Ops, endpoint: Endpoint
) -> None:
    """The worker disables the endpoint (410 Gone) between a PATCH's read and its write:
    the PATCH lands on the disabled endpoint instead of enabling it again."""
    await messages.publish(ops.ops, SYSTEM, "acme", NewMessage("a.b", {}))
    now = utcnow()
    (claimed,) = await ops.store.claim_due(1, now, now + timedelta(seconds=30), "w1")

    async def worker_disables() -> None:
        await ops.store.complete([failed_outcome(claimed, 410)])

    compete_once(monkeypatch, ops, worker_disables)
    patched = await endpoints.patch(
        ops.ops, SYSTEM, "acme", "ep", EndpointPatch(description="renamed")
    )
    assert patched.disabled and patched.description == "renamed"
    assert await endpoints.get(ops.ops, SYSTEM, "acme", "ep") == patched


async def test_two_rotations_that_race_both_keep_signing(
    monkeypatch: pytest.MonkeyPatch, ops: Ops, endpoint: Endpoint
) -> None:
    """Two rotations at once: the later-written key is current, and the other one, its
    rotation answered with a 200 too, still signs through the grace period."""
    other: list[str] = []

    async def other_rotation() -> None:
        other.append(await endpoints.rotate_secret(ops.ops, SYSTEM, "acme", "ep"))

    compete_once(monkeypatch, ops, other_rotation)
    mine = await endpoints.rotate_secret(ops.ops, SYSTEM, "acme", "ep")
    final = await endpoints.get(ops.ops, SYSTEM, "acme", "ep")
    assert final.current_key.secret == mine
    assert set(final.signing_secrets(utcnow())) >= {mine, other[0]}
