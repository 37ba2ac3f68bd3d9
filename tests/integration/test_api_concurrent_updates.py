"""Updates through the API never overwrite a change made between their read and their write.

Each test makes the store's read run a competing write right after it returns, as another
request or the worker would in that window. The update is then applied again to the new
state (both changes stored, and the 2xx shows them); one that loses every try answers 409
``concurrent_update`` and changes nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from hookline.domain.models import (
    Application,
    Endpoint,
    EventType,
)
from hookline.operations.updates import UPDATE_TRIES
from tests.conftest import failed_outcome, make_message, utcnow
from tests.integration.conftest import Api


def _compete_after(
    monkeypatch: pytest.MonkeyPatch,
    api: Api,
    read: str,
    compete: Callable[[Any], Awaitable[None]],
    times: int = 1,
) -> None:
    """The next ``times`` calls of the store's ``read`` method each run ``compete`` on what
    they read, after reading and before the operation goes on; later calls read plainly."""
    plain = getattr(api.store, read)
    left = [times]

    async def read_then_compete(*args: Any) -> Any:
        found = await plain(*args)
        if left[0] > 0:
            left[0] -= 1
            assert found is not None
            await compete(found)
        return found

    monkeypatch.setattr(api.store, read, read_then_compete)


async def _acme(api: Api) -> Application:
    r = await api.client.post("/api/v1/app", json={"name": "Acme", "uid": "acme"})
    assert r.status_code == 201, r.text
    app = await api.store.get_application("acme")
    assert app is not None
    return app


async def _endpoint(api: Api, app: Application) -> Endpoint:
    r = await api.client.post(
        "/api/v1/app/acme/endpoint", json={"url": "https://example.com/h", "uid": "ep"}
    )
    assert r.status_code == 201, r.text
    endpoint = await api.store.get_endpoint(app.id, "ep")
    assert endpoint is not None
    return endpoint


async def test_an_endpoint_patch_racing_another_update_lands_on_top_of_it(
    monkeypatch: pytest.MonkeyPatch, api: Api
) -> None:
    """A PATCH whose endpoint another request changed after the PATCH read it is applied
    again to the new state: the 200 shows both changes, and so does the stored row."""
    app = await _acme(api)
    await _endpoint(api, app)

    async def other_request(found: Endpoint) -> None:
        assert await api.store.update_endpoint(replace(found, description="other")) is not None

    _compete_after(monkeypatch, api, "get_endpoint", other_request)
    r = await api.client.patch("/api/v1/app/acme/endpoint/ep", json={"disabled": True})
    assert r.status_code == 200, r.text
    assert (r.json()["description"], r.json()["disabled"]) == ("other", True)
    stored = await api.store.get_endpoint(app.id, "ep")
    assert stored is not None
    assert (stored.description, stored.disabled, stored.version) == ("other", True, 3)


async def test_an_endpoint_patch_racing_the_worker_disable_keeps_it_disabled(
    monkeypatch: pytest.MonkeyPatch, api: Api
) -> None:
    """A PATCH that read the endpoint just before the worker disabled it on 410 Gone does
    not write it back enabled: its change lands on the disabled endpoint, and says so."""
    app = await _acme(api)
    endpoint = await _endpoint(api, app)
    await api.store.publish([make_message(app)], utcnow())
    now = utcnow()
    (claimed,) = await api.store.claim_due(10, now, now + timedelta(seconds=30), "w1")
    assert claimed.endpoint.id == endpoint.id

    async def worker_disables(_: Endpoint) -> None:
        await api.store.complete([failed_outcome(claimed, 410)])

    _compete_after(monkeypatch, api, "get_endpoint", worker_disables)
    r = await api.client.patch("/api/v1/app/acme/endpoint/ep", json={"description": "renamed"})
    assert r.status_code == 200, r.text
    assert r.json()["disabled"] is True and r.json()["description"] == "renamed"
    stored = await api.store.get_endpoint(app.id, "ep")
    assert stored is not None and stored.disabled and stored.description == "renamed"


async def test_an_application_patch_that_loses_every_race_is_409_and_changes_nothing(
    monkeypatch: pytest.MonkeyPatch, api: Api
) -> None:
    """Raced on each of its tries, a PATCH gives up with 409 concurrent_update, and only the
    competing changes are stored; sent again it lands on top of them."""
    app = await _acme(api)

    async def other_request(found: Application) -> None:
        moved = replace(found, metadata={"by": f"other-{found.version}"})
        assert await api.store.update_application(moved) is not None

    _compete_after(monkeypatch, api, "get_application", other_request, times=UPDATE_TRIES)
    r = await api.client.patch("/api/v1/app/acme", json={"name": "Renamed"})
    assert r.status_code == 409 and r.json()["code"] == "concurrent_update"
    stored = await api.store.get_application(app.id)
    assert stored is not None and stored.name == "Acme"
    assert stored.version == 1 + UPDATE_TRIES
    again = await api.client.patch("/api/v1/app/acme", json={"name": "Renamed"})
    assert again.status_code == 200, again.text
    final = await api.store.get_application(app.id)
    assert final is not None and (final.name, final.metadata) == ("Renamed", stored.metadata)


async def test_an_event_type_patch_racing_another_update_keeps_both_changes(
    monkeypatch: pytest.MonkeyPatch, api: Api
) -> None:
    """A PATCH whose event type changed after it was read is applied again on top."""
    r = await api.client.post("/api/v1/event-type", json={"name": "a.b", "description": "x"})
    assert r.status_code == 201, r.text

    async def other_request(found: EventType) -> None:
        assert await api.store.update_event_type(replace(found, description="other")) is not None

    _compete_after(monkeypatch, api, "get_event_type", other_request)
    r = await api.client.patch("/api/v1/event-type/a.b", json={"deprecated": True})
    assert r.status_code == 200, r.text
    stored = await api.store.get_event_type("a.b")
    assert stored is not None and (stored.description, stored.deprecated) == ("other", True)


async def test_puts_and_patches_one_after_another_never_conflict(api: Api) -> None:
    """Each update reads the row at its current version, so updates in sequence (PUT builds
    a fresh event type from its body, yet writes at the version it read) all succeed."""
    app = await _acme(api)
    await _endpoint(api, app)
    r = await api.client.post("/api/v1/event-type", json={"name": "a.b", "description": "x"})
    assert r.status_code == 201, r.text
    for description in ("one", "two"):
        put = await api.client.put("/api/v1/event-type/a.b", json={"description": description})
        assert put.status_code == 200, put.text
        patched = await api.client.patch("/api/v1/event-type/a.b", json={"deprecated": True})
        assert patched.status_code == 200, patched.text
        r = await api.client.put("/api/v1/app/acme", json={"name": description})
        assert r.status_code == 200, r.text
        r = await api.client.patch("/api/v1/app/acme/endpoint/ep", json={"description": "d"})
        assert r.status_code == 200, r.text
        r = await api.client.put("/api/v1/app/acme/endpoint/ep", json={"url": "https://e.com/"})
        assert r.status_code == 200, r.text
    stored = await api.store.get_event_type("a.b")
    assert stored is not None and (stored.description, stored.version) == ("two", 5)
    endpoint = await api.store.get_endpoint(app.id, "ep")
    assert endpoint is not None and endpoint.version == 5
