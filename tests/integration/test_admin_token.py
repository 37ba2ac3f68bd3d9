"""The admin token: generated once and printed once, or taken from settings; stored hashed."""

from __future__ import annotations

import re

import pytest

from hookline.config import load_settings
from hookline.operations.tokens import hash_token
from hookline.server import ensure_admin_token
from hookline.storage.base import Store


async def test_generated_on_first_start_printed_once_and_stored_hashed(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    """With no token configured, the first start prints a new token; later starts print nothing."""
    settings = load_settings(environ={})
    await ensure_admin_token(store, settings)
    printed = capsys.readouterr().err
    match = re.search(r"(hl_admin_\S+)", printed)
    assert match is not None
    token = match.group(1)
    record = await store.find_token(hash_token(token))
    assert record is not None and record.app_id is None and record.token_hash != token
    await ensure_admin_token(store, settings)
    assert capsys.readouterr().err == ""
    assert await store.count_admin_tokens() == 1


async def test_configured_token_is_stored_by_hash_without_printing(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    """HOOKLINE_ADMIN_TOKEN is accepted as an admin token and never echoed."""
    settings = load_settings(environ={"HOOKLINE_ADMIN_TOKEN": "my-own-token"})
    await ensure_admin_token(store, settings)
    await ensure_admin_token(store, settings)
    assert capsys.readouterr().err == ""
    assert await store.count_admin_tokens() == 1
    assert await store.find_token(hash_token("my-own-token")) is not None
    assert "my-own-token" not in repr(settings)
