"""Tokens against the real ``hookline serve``, driven by the official svix SDK: portal tokens
with capabilities and readOnly, ``logout``, ``expire_all``, and a changed admin token."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from svix.api import (
    ApplicationIn,
    ApplicationTokenExpireIn,
    AppPortalAccessIn,
    EndpointIn,
    Svix,
    SvixOptions,
)
from svix.exceptions import HttpError
from svix.models import AppPortalCapability

from tests.e2e.harness import ADMIN_TOKEN, HooklineProcess, free_port, sqlite_url

NEW_ADMIN_TOKEN = "hl_admin_a-replacement-for-the-e2e-admin-token"


@pytest.fixture
def hookline(tmp_path: Path) -> Iterator[HooklineProcess]:
    proc = HooklineProcess(sqlite_url(tmp_path), free_port(), {}, tmp_path).start("--dev")
    yield proc
    if proc.process is not None and proc.process.poll() is None:
        assert proc.terminate() == 0, proc.output()


def _sdk(proc: HooklineProcess, token: str) -> Svix:
    return Svix(token, SvixOptions(server_url=proc.url))


def _status(call: Callable[[], object]) -> int:
    """The status of the error the SDK raises for the call."""
    with pytest.raises(HttpError) as refused:
        call()
    return refused.value.status_code


def test_portal_capabilities_logout_and_expire_all_through_the_sdk(
    hookline: HooklineProcess,
) -> None:
    """A read-only portal token reads but cannot create endpoints or read secrets; a token
    with ManageEndpoint can; logout ends the calling token; expire_all ends the rest."""
    admin = _sdk(hookline, ADMIN_TOKEN)
    admin.application.create(ApplicationIn(name="Acme", uid="acme"))
    new_endpoint = EndpointIn(url="https://example.com/hook", uid="ep")
    read_only = admin.authentication.app_portal_access("acme", AppPortalAccessIn(read_only=True))
    viewer = _sdk(hookline, read_only.token)
    assert viewer.application.get("acme").uid == "acme"
    assert _status(lambda: viewer.endpoint.create("acme", new_endpoint)) == 403
    manage = AppPortalAccessIn(capabilities=[AppPortalCapability.MANAGE_ENDPOINT])
    manager = _sdk(hookline, admin.authentication.app_portal_access("acme", manage).token)
    manager.endpoint.create("acme", new_endpoint)
    assert manager.endpoint.get_secret("acme", "ep").key.startswith("whsec_")
    assert _status(lambda: viewer.endpoint.get_secret("acme", "ep")) == 403

    manager.authentication.logout()
    assert _status(lambda: manager.application.get("acme")) == 401
    assert viewer.application.get("acme").uid == "acme"
    admin.authentication.expire_all("acme", ApplicationTokenExpireIn())
    assert _status(lambda: viewer.application.get("acme")) == 401


def test_restarting_with_a_new_admin_token_revokes_the_old_one(tmp_path: Path) -> None:
    """After a restart with a changed HOOKLINE_ADMIN_TOKEN the old value is refused (401)."""
    url, port = sqlite_url(tmp_path), free_port()
    first = HooklineProcess(url, port, {}, tmp_path).start("--dev")
    assert httpx.get(f"{first.url}/api/v1/app", headers=_bearer(ADMIN_TOKEN)).status_code == 200
    assert first.terminate() == 0
    env = {"HOOKLINE_ADMIN_TOKEN": NEW_ADMIN_TOKEN}
    second = HooklineProcess(url, port, env, tmp_path).start("--dev")
    try:
        assert (
            httpx.get(f"{second.url}/api/v1/app", headers=_bearer(ADMIN_TOKEN)).status_code == 401
        )
        new = httpx.get(f"{second.url}/api/v1/app", headers=_bearer(NEW_ADMIN_TOKEN))
        assert new.status_code == 200
    finally:
        assert second.terminate() == 0


def test_a_short_admin_token_stops_serve_with_a_message(tmp_path: Path) -> None:
    """``serve`` with a configured admin token under 32 characters exits naming the minimum."""
    env = {"HOOKLINE_ADMIN_TOKEN": "short"}
    proc = HooklineProcess(sqlite_url(tmp_path), free_port(), env, tmp_path)
    proc._spawn("serve")
    assert proc.process is not None and proc.process.wait(60) != 0
    output = proc.output()
    assert "HOOKLINE_ADMIN_TOKEN" in output and "at least 32 characters" in output
    assert "short" not in output.replace("HOOKLINE_ADMIN_TOKEN", "")


def _bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}
