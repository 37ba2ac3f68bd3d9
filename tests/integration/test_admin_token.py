"""The admin token: generated once and printed once, or taken from settings, which replace
the previously configured one; stored as a keyed hash; a short configured token is refused."""

from __future__ import annotations

import re

import pytest

from hookline.config import ConfigError, load_settings
from hookline.domain.errors import Unauthorized
from hookline.operations import tokens
from hookline.operations.context import Operations
from hookline.operations.principal import SYSTEM, Principal
from hookline.operations.tokens import Authenticator
from hookline.server import ensure_admin_token
from hookline.storage.base import Store
from tests.conftest import utcnow

CONFIGURED = "my-own-token-that-is-long-enough-to-pass"
REPLACEMENT = "a-new-configured-token-after-rotation-0"


async def _authenticate(store: Store, token: str) -> Principal:
    return await Authenticator(Operations(store)).authenticate(f"Bearer {token}", utcnow())


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
    assert (await _authenticate(store, token)).is_admin
    (record,) = await store.list_tokens()
    assert token not in record.token_hash
    await ensure_admin_token(store, settings)
    assert capsys.readouterr().err == ""
    assert await store.count_admin_tokens() == 1


async def test_configured_token_is_stored_by_hash_without_printing(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    """HOOKLINE_ADMIN_TOKEN is accepted as an admin token and never echoed."""
    settings = load_settings(environ={"HOOKLINE_ADMIN_TOKEN": CONFIGURED})
    await ensure_admin_token(store, settings)
    await ensure_admin_token(store, settings)
    assert capsys.readouterr().err == ""
    assert await store.count_admin_tokens() == 1
    assert (await _authenticate(store, CONFIGURED)).is_admin
    (record,) = await store.list_tokens()
    assert record.configured and CONFIGURED not in record.token_hash
    assert CONFIGURED not in repr(settings)


async def test_a_changed_setting_revokes_the_previously_configured_token(store: Store) -> None:
    """Restarting with a new HOOKLINE_ADMIN_TOKEN refuses the old one; tokens created through
    the API or CLI are not touched; a start without the setting (a replica configured
    differently) leaves the configured token alone and generates none."""
    await ensure_admin_token(store, load_settings(environ={"HOOKLINE_ADMIN_TOKEN": CONFIGURED}))
    created = await tokens.create_token(Operations(store), SYSTEM)
    await ensure_admin_token(store, load_settings(environ={"HOOKLINE_ADMIN_TOKEN": REPLACEMENT}))
    with pytest.raises(Unauthorized):
        await _authenticate(store, CONFIGURED)
    assert (await _authenticate(store, REPLACEMENT)).is_admin
    assert (await _authenticate(store, created.token)).is_admin
    await ensure_admin_token(store, load_settings(environ={}))
    assert (await _authenticate(store, REPLACEMENT)).is_admin
    assert await store.count_admin_tokens() == 2


async def test_a_configured_token_stored_before_keyed_hashes_is_replaced(store: Store) -> None:
    """After an upgrade the configured token's old row (plain SHA-256) stays valid for
    processes of the previous version, and goes with the new one when the setting changes."""
    from datetime import UTC, datetime

    from hookline.domain import ids
    from hookline.domain.models import AccessToken

    legacy = AccessToken(
        ids.new_id(ids.TOKEN), tokens.legacy_hash(CONFIGURED), None, None, datetime.now(UTC)
    )
    await store.create_token(legacy)
    await ensure_admin_token(store, load_settings(environ={"HOOKLINE_ADMIN_TOKEN": CONFIGURED}))
    assert [t.configured for t in await store.list_tokens()] == [True, True]
    await ensure_admin_token(store, load_settings(environ={"HOOKLINE_ADMIN_TOKEN": CONFIGURED}))
    assert len(await store.list_tokens()) == 2
    await ensure_admin_token(store, load_settings(environ={"HOOKLINE_ADMIN_TOKEN": REPLACEMENT}))
    with pytest.raises(Unauthorized):
        await _authenticate(store, CONFIGURED)
    assert await store.get_token(legacy.id) is None


@pytest.mark.parametrize("short", ["x", "a" * 31])
def test_a_short_configured_token_is_refused_without_echoing_it(short: str) -> None:
    """HOOKLINE_ADMIN_TOKEN shorter than 32 characters stops startup with a message that names
    the setting and the minimum, and does not repeat the value."""
    with pytest.raises(ConfigError) as refused:
        load_settings(environ={"HOOKLINE_ADMIN_TOKEN": short})
    message = str(refused.value)
    assert "HOOKLINE_ADMIN_TOKEN" in message and "at least 32 characters" in message
    assert short not in message
