"""``hookline.testing``: the mock transport that ships for our tests and our users'."""

from __future__ import annotations

import asyncio

import pytest

import hookline.testing
from hookline.testing import MockRequest, MockTransport, answer, no_answer
from hookline.transport import HttpResult, RequestOptions, TlsOptions, Transport


def test_public_names_are_pinned_and_sorted() -> None:
    """``__all__`` lists exactly these names, sorted."""
    assert hookline.testing.__all__ == ["MockRequest", "MockTransport", "answer", "no_answer"]


async def test_a_sync_handler_sees_the_request_and_gives_the_result() -> None:
    """The handler receives url, headers, body and timeout as passed, and its result is the
    transport's."""
    seen: list[MockRequest] = []

    def handler(request: MockRequest) -> HttpResult:
        seen.append(request)
        return answer(429, b"slow down", retry_after="30")

    transport: Transport = MockTransport(handler)
    result = await transport.post("https://rx.example/h", b'{"a":1}', {"webhook-id": "m"}, 2.5)
    assert result == HttpResult(429, b"slow down", None, 0, "30")
    assert seen == [MockRequest("https://rx.example/h", {"webhook-id": "m"}, b'{"a":1}', 2.5)]


async def test_the_handler_sees_the_request_options() -> None:
    """Options the caller passes (byte cap, TLS) reach the handler unchanged."""
    seen: list[MockRequest] = []

    def handler(request: MockRequest) -> HttpResult:
        seen.append(request)
        return answer(200)

    options = RequestOptions(max_response_bytes=10, tls=TlsOptions(ca_bundle="PEM"))
    await MockTransport(handler).post("https://rx.example/h", b"{}", {}, 5, options)
    assert seen[0].options is options


async def test_an_async_handler_is_awaited() -> None:
    """A coroutine handler can hold a request until the test lets it go."""
    arrived, release = asyncio.Event(), asyncio.Event()

    async def handler(request: MockRequest) -> HttpResult:
        arrived.set()
        await release.wait()
        return answer(204)

    transport = MockTransport(handler)
    pending = asyncio.create_task(transport.post("https://rx.example/h", b"{}", {}, 5))
    await arrived.wait()
    assert not pending.done()
    release.set()
    assert (await pending).status_code == 204


async def test_the_handler_gets_a_copy_of_the_headers() -> None:
    """Changing the caller's headers after the call does not change what the handler saw."""
    seen: list[MockRequest] = []

    def handler(request: MockRequest) -> HttpResult:
        seen.append(request)
        return answer(200)

    headers = {"x-team": "a"}
    transport = MockTransport(handler)
    await transport.post("https://rx.example/h", b"{}", headers, 5)
    headers["x-team"] = "b"
    assert seen[0].headers == {"x-team": "a"}


async def test_what_the_handler_raises_reaches_the_caller() -> None:
    """A raising handler is a bug in the test, so it is not turned into a status 0."""

    def handler(request: MockRequest) -> HttpResult:
        raise LookupError("unexpected request")

    with pytest.raises(LookupError, match="unexpected request"):
        await MockTransport(handler).post("https://rx.example/h", b"{}", {}, 5)


def test_no_answer_is_status_zero_with_the_reason() -> None:
    """``no_answer`` is what a real transport reports for network trouble."""
    assert no_answer("connection refused") == HttpResult(0, b"", "connection refused", 0, None)


async def test_close_is_harmless_and_repeatable() -> None:
    """close() may be called any number of times, and the transport still answers after."""
    transport = MockTransport(lambda request: answer(200))
    await transport.close()
    await transport.close()
    assert (await transport.post("https://rx.example/h", b"{}", {}, 5)).status_code == 200
