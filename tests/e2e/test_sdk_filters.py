"""Every filter the official svix SDK sends is honoured, or refused with a 422: never ignored.

The real ``hookline serve`` process, a real receiver, and the SDK's own option classes, so
the query parameters are exactly the ones the SDK puts on the wire.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from svix.api import (
    ApplicationIn,
    ApplicationListOptions,
    EndpointGetStatsOptions,
    EndpointIn,
    MessageAttemptGetOptions,
    MessageAttemptListAttemptedMessagesOptions,
    MessageAttemptListByEndpointOptions,
    MessageAttemptListByMsgOptions,
    MessageIn,
    MessageListOptions,
    Svix,
)
from svix.exceptions import HTTPValidationError
from svix.models import MessageStatus

from tests.e2e.harness import HooklineProcess, Receiver, free_port, sqlite_url, wait_until
from tests.e2e.test_sdk_end_to_end import FAST_RETRIES, sdk


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    r.status_for["/refuses"] = lambda _: 400
    yield r
    r.stop()


@pytest.fixture
def hookline(tmp_path: Path) -> Iterator[HooklineProcess]:
    retries = {**FAST_RETRIES, "HOOKLINE_RETRY_SCHEDULE": "0.05"}
    proc = HooklineProcess(sqlite_url(tmp_path), free_port(), retries, tmp_path).start("--dev")
    yield proc
    if proc.process is not None and proc.process.poll() is None:
        assert proc.terminate() == 0, proc.output()


def _delivered(svix: Svix, receiver: Receiver) -> tuple[str, str, str, str, str]:
    """An application with one endpoint that accepts and one that refuses, and two messages
    (one tagged ``vip``) attempted on both; returns the ids."""
    app = svix.application.create(ApplicationIn(name="Initech", uid="initech"))
    svix.application.create(ApplicationIn(name="Empty", uid="empty"))
    ok = svix.endpoint.create(app.id, EndpointIn(url=f"{receiver.url}/ok"))
    refuses = svix.endpoint.create(app.id, EndpointIn(url=f"{receiver.url}/refuses"))
    vip = svix.message.create(app.id, MessageIn(event_type="a.b", payload={"n": 1}, tags=["vip"]))
    plain = svix.message.create(app.id, MessageIn(event_type="a.b", payload={"n": 2}))
    wait_until(lambda: len(receiver.received("/ok")) == 2, 15, "both messages to /ok")
    wait_until(lambda: len(receiver.received("/refuses")) == 4, 15, "two tries each to /refuses")
    return app.id, ok.id, refuses.id, vip.id, plain.id


def test_sdk_filters_are_honoured(hookline: HooklineProcess, receiver: Receiver) -> None:
    """tag, with_msg, with_content, status, since/until and exclude_apps_with_no_endpoints
    each change what comes back, as the SDK's documentation says."""
    svix = sdk(hookline)
    app_id, ok_id, refuses_id, vip_id, plain_id = _delivered(svix, receiver)

    tagged = svix.message.list(app_id, MessageListOptions(tag="vip")).data
    assert [m.id for m in tagged] == [vip_id]
    by_tag = MessageAttemptListByEndpointOptions(tag="vip", with_msg=True, with_content=False)
    attempts = svix.message_attempt.list_by_endpoint(app_id, ok_id, by_tag).data
    assert [a.msg_id for a in attempts] == [vip_id]
    assert attempts[0].msg is not None and attempts[0].msg.id == vip_id
    assert attempts[0].response == ""
    # The SDK sends with_content=false unless told otherwise, as Svix's own server expects.
    assert {a.response for a in svix.message_attempt.list_by_endpoint(app_id, ok_id).data} == {""}
    with_body = MessageAttemptListByEndpointOptions(with_content=True)
    answers = svix.message_attempt.list_by_endpoint(app_id, ok_id, with_body).data
    assert {a.response for a in answers} == {"ok"} and all(a.msg is None for a in answers)
    of_plain = MessageAttemptListByMsgOptions(tag="vip")
    assert svix.message_attempt.list_by_msg(app_id, plain_id, of_plain).data == []

    failed = MessageAttemptListAttemptedMessagesOptions(status=MessageStatus.FAIL)
    refused = svix.message_attempt.list_attempted_messages(app_id, refuses_id, failed).data
    assert {m.id for m in refused} == {vip_id, plain_id}
    assert svix.message_attempt.list_attempted_messages(app_id, ok_id, failed).data == []

    now = datetime.now(UTC)
    recent = svix.endpoint.get_stats(
        app_id, ok_id, EndpointGetStatsOptions(since=now - timedelta(hours=1))
    )
    future = svix.endpoint.get_stats(
        app_id, ok_id, EndpointGetStatsOptions(since=now + timedelta(hours=1))
    )
    assert (recent.success, future.success) == (2, 0)

    with_endpoints = ApplicationListOptions(exclude_apps_with_no_endpoints=True)
    assert [a.uid for a in svix.application.list(with_endpoints).data] == ["initech"]
    assert {a.uid for a in svix.application.list().data} == {"initech", "empty"}

    expanded = MessageAttemptGetOptions(expanded_statuses=True)
    assert svix.message_attempt.get(app_id, vip_id, attempts[0].id, expanded).id == attempts[0].id


def test_a_filter_hookline_does_not_implement_is_a_422(
    hookline: HooklineProcess, receiver: Receiver
) -> None:
    """exclude_apps_with_disabled_endpoints is refused with a 422 naming it, not ignored."""
    svix = sdk(hookline)
    svix.application.create(ApplicationIn(name="Initech", uid="initech"))
    options = ApplicationListOptions(exclude_apps_with_disabled_endpoints=True)
    with pytest.raises(HTTPValidationError) as refused:
        svix.application.list(options)
    assert refused.value.detail[0].loc == ["query", "exclude_apps_with_disabled_endpoints"]
