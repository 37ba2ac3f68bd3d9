"""The input rules hold in the operations themselves, for every face (the CLI and the
console call these, not the API), on each backend."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import pytest

from hookline.domain.errors import Conflict, InvalidRequest
from hookline.domain.tasks import TaskKind
from hookline.operations import applications, endpoints, event_types, messages, tasks
from hookline.operations.applications import ApplicationPatch, NewApplication
from hookline.operations.endpoints import EndpointFields, EndpointPatch, HeadersPatch
from hookline.operations.event_types import EventTypeFields
from hookline.operations.messages import NewMessage
from hookline.operations.principal import SYSTEM
from hookline.operations.tasks import TaskRequest
from hookline.storage.base import ListQuery
from tests.integration.conftest import Ops

URL = "https://example.com/h"


async def _seed(ops: Ops) -> None:
    await applications.create(ops.ops, SYSTEM, NewApplication("Acme", uid="acme"))
    await event_types.create(ops.ops, SYSTEM, "a.b", EventTypeFields("d"))
    await endpoints.create(ops.ops, SYSTEM, "acme", EndpointFields(URL, uid="ep1"))


async def test_upserts_check_the_path_that_becomes_a_uid_or_name(ops: Ops) -> None:
    """A PUT that creates takes its uid or name from the path: CR/LF, control characters
    and 5,000 characters are refused there, located at the path, and nothing is stored."""
    await _seed(ops)
    for bad in ("bad\r\nuid", "ctl\x01", "u" * 5000):
        with pytest.raises(InvalidRequest) as app_error:
            await applications.upsert(ops.ops, SYSTEM, bad, NewApplication("x"))
        assert app_error.value.loc == ("path", "app_id")
        with pytest.raises(InvalidRequest) as ep_error:
            await endpoints.upsert(ops.ops, SYSTEM, "acme", bad, EndpointFields(URL))
        assert ep_error.value.loc == ("path", "endpoint_id")
        with pytest.raises(InvalidRequest):
            await event_types.upsert(ops.ops, SYSTEM, bad, EventTypeFields("d"))
    assert len((await ops.store.list_applications(ListQuery())).data) == 1
    assert await ops.store.count_endpoints((await ops.store.get_application("acme")).id) == 1  # type: ignore[union-attr]


async def test_fields_break_the_same_rules_as_on_the_api(ops: Ops) -> None:
    """Names, rates, URLs, descriptions and headers are checked whatever the face."""
    await _seed(ops)
    refused = [
        applications.create(ops.ops, SYSTEM, NewApplication("a\nb")),
        applications.create(ops.ops, SYSTEM, NewApplication("a", throttle_rate=2**63)),
        applications.patch(ops.ops, SYSTEM, "acme", ApplicationPatch(name="n" * 5000)),
        endpoints.create(ops.ops, SYSTEM, "acme", EndpointFields("https://e.com:99999/")),
        endpoints.create(ops.ops, SYSTEM, "acme", EndpointFields(URL, description="\0")),
        endpoints.patch(ops.ops, SYSTEM, "acme", "ep1", EndpointPatch(url="https://e x/")),
        endpoints.set_headers(ops.ops, SYSTEM, "acme", "ep1", {"x": "a\x0bb"}),
        endpoints.update_headers(
            ops.ops, SYSTEM, "acme", "ep1", HeadersPatch({f"x-{i}": "v" for i in range(51)})
        ),
        event_types.create(
            ops.ops, SYSTEM, "c.d", EventTypeFields("d", schemas={"x": {"max": 2**70}})
        ),
        messages.publish(ops.ops, SYSTEM, "acme", NewMessage("a.b", {"x": float("nan")})),
        messages.publish(ops.ops, SYSTEM, "acme", NewMessage("a b", {})),
        tasks.start(
            ops.ops,
            SYSTEM,
            "acme",
            TaskRequest(TaskKind.RECOVER, datetime(9999, 1, 1), None, "ep1"),
        ),
    ]
    for attempt in refused:
        with pytest.raises(InvalidRequest):
            await attempt
    endpoint = await endpoints.get(ops.ops, SYSTEM, "acme", "ep1")
    assert endpoint.url == URL and endpoint.headers == {} and endpoint.version == 1


async def test_the_endpoint_cap_is_the_operations_setting(ops: Ops) -> None:
    """``max_endpoints_per_app`` refuses one more endpoint with 409; None lifts it."""
    await _seed(ops)
    capped = replace(ops.ops, max_endpoints_per_app=2)
    await endpoints.create(capped, SYSTEM, "acme", EndpointFields(URL))
    with pytest.raises(Conflict) as error:
        await endpoints.create(capped, SYSTEM, "acme", EndpointFields(URL))
    assert error.value.code == "endpoint_limit_reached"
    lifted = replace(ops.ops, max_endpoints_per_app=None)
    await endpoints.create(lifted, SYSTEM, "acme", EndpointFields(URL))


async def test_an_error_names_a_few_unknown_event_types_and_counts_the_rest(ops: Ops) -> None:
    """A filter of 20,000 unknown names is refused with a short message, not all of them."""
    await _seed(ops)
    names = [f"e{i}" for i in range(20_000)]
    with pytest.raises(InvalidRequest) as error:
        await endpoints.create(ops.ops, SYSTEM, "acme", EndpointFields(URL, event_types=names))
    assert error.value.detail.startswith("Unknown event type(s): e0, e1,")
    assert "and 19990 more" in error.value.detail and len(error.value.detail) < 300
