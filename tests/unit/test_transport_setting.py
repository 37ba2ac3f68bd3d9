"""``HOOKLINE_TRANSPORT``: one client, and the removed ones still accepted with a warning."""

from __future__ import annotations

import logging

import pytest

from hookline.config import ConfigError, load_settings
from hookline.server import transport_for
from hookline.transport import AsyncioTransport


@pytest.mark.parametrize("name", ["curl", "aiohttp"])
def test_a_removed_transport_starts_the_asyncio_client_with_one_warning(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A deployment that still names curl or aiohttp gets the asyncio client, and one
    warning saying the setting is ignored and will be removed."""
    settings = load_settings(environ={"HOOKLINE_TRANSPORT": name})
    with caplog.at_level(logging.WARNING, logger="hookline"):
        transport = transport_for(settings)
    assert isinstance(transport, AsyncioTransport)
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert f"HOOKLINE_TRANSPORT={name} is ignored and will be removed" in record.getMessage()


def test_the_asyncio_transport_starts_without_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    """The default, asyncio, is the one client: nothing is said about it."""
    for environ in ({}, {"HOOKLINE_TRANSPORT": "asyncio"}):
        with caplog.at_level(logging.WARNING, logger="hookline"):
            transport = transport_for(load_settings(environ=environ))
        assert isinstance(transport, AsyncioTransport)
    assert caplog.records == []


def test_an_unknown_transport_is_refused_at_start() -> None:
    """A name hookline never had is a configuration error naming the variable."""
    with pytest.raises(ConfigError, match=r"HOOKLINE_TRANSPORT='httpx': must be asyncio"):
        load_settings(environ={"HOOKLINE_TRANSPORT": "httpx"})
