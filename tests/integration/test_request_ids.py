"""``x-request-id``: every API answer carries one, and every line logged while the request
was handled carries the same (docs/observability.md, "Logs")."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import httpx
import pytest

from hookline.api.app import Services
from hookline.api.routes import create_app
from hookline.config import load_settings
from hookline.instrumentation import Instrumentation, LoggingHook
from hookline.instrumentation._request_ids import RequestIdFilter, TextFormatter
from hookline.operations.context import Operations
from hookline.server import ensure_admin_token
from hookline.storage.sqlite import SqliteStore
from tests.integration.conftest import ADMIN_TOKEN, Api


async def test_a_sane_request_id_is_echoed_and_an_insane_one_replaced(api: Api) -> None:
    """The caller's id comes back unchanged; one with a space (a log-forging risk) or none at
    all is replaced by 32 fresh hex digits, different for each request."""
    echoed = await api.client.get("/api/v1/app", headers={"x-request-id": "caller-42"})
    assert echoed.headers["x-request-id"] == "caller-42"
    replaced = await api.client.get("/api/v1/app", headers={"x-request-id": "two words"})
    first = await api.client.get("/api/v1/app")
    second = await api.client.get("/api/v1/app")
    for made in (replaced, first, second):
        assert re.fullmatch("[0-9a-f]{32}", made.headers["x-request-id"])
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


async def test_errors_health_and_pages_carry_a_request_id_too(api: Api) -> None:
    """A 404, a 401, a health answer and a page all carry the header."""
    for response in (
        await api.client.get("/api/v1/nowhere"),
        await api.client.get("/api/v1/app", headers={"authorization": "Bearer wrong"}),
        await api.client.get("/health/live"),
        await api.client.get("/portal/nothing"),
    ):
        assert "x-request-id" in response.headers, response.status_code


async def test_an_idempotent_replay_answers_with_its_own_request_id(api: Api) -> None:
    """The stored response is replayed, but its ``x-request-id`` is the replay's request's."""
    app = (await api.client.post("/api/v1/app", json={"name": "A"})).json()
    body = {"eventType": "e.x", "payload": {}}
    headers = {"idempotency-key": "k1"}
    first = await api.client.post(
        f"/api/v1/app/{app['id']}/msg", json=body, headers={**headers, "x-request-id": "one"}
    )
    again = await api.client.post(
        f"/api/v1/app/{app['id']}/msg", json=body, headers={**headers, "x-request-id": "two"}
    )
    assert again.headers["idempotent-replayed"] == "true"
    assert first.headers.get_list("x-request-id") == ["one"]
    assert again.headers.get_list("x-request-id") == ["two"]


async def test_the_publish_line_carries_the_request_id_and_the_message_id(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """With ``--dev`` logging, the line about an accepted message, heard inline by the
    publish, names the message and the request that published it; the text layout appends
    the id."""
    settings = load_settings({"admin_token": ADMIN_TOKEN}, environ={})
    store = SqliteStore(str(tmp_path / "ids.db"))
    await store.open()
    await ensure_admin_token(store, settings)
    instrumentation = Instrumentation([LoggingHook(attempts=True)])
    ops = Operations(store, base_url=settings.base_url, instrumentation=instrumentation)
    app = create_app(Services(ops=ops, settings=settings), instrumentation)
    caplog.handler.addFilter(RequestIdFilter())
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://hookline",
            headers={"authorization": f"Bearer {ADMIN_TOKEN}"},
        ) as client:
            created = (await client.post("/api/v1/app", json={"name": "A"})).json()
            with caplog.at_level(logging.INFO, logger="hookline.events"):
                response = await client.post(
                    f"/api/v1/app/{created['id']}/msg",
                    json={"eventType": "e.x", "payload": {}},
                    headers={"x-request-id": "pub-7"},
                )
    finally:
        await store.close()
    msg_id = response.json()["id"]
    (record,) = [r for r in caplog.records if r.__dict__.get("msg_id") == msg_id]
    assert record.__dict__["request_id"] == "pub-7" and record.__dict__["app_id"] == created["id"]
    text = TextFormatter("%(message)s").format(record)
    assert msg_id in text and text.endswith(" request_id=pub-7")


def test_a_line_logged_outside_any_request_has_no_request_id() -> None:
    """The worker's and maintenance's lines are about no request, and say none."""
    record = logging.LogRecord("hookline.events", logging.INFO, __file__, 1, "x", None, None)
    assert RequestIdFilter().filter(record) and not hasattr(record, "request_id")
    assert TextFormatter("%(message)s").format(record) == "x"
