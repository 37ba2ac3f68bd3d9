"""``hookline token``: prints a new token that authenticates, admin or scoped to one app."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hookline import cli
from hookline.domain.capabilities import Capability
from hookline.domain.errors import Unauthorized
from hookline.domain.networks import parse_allowlist
from hookline.operations.context import Operations
from hookline.operations.principal import Principal
from hookline.operations.tokens import Authenticator
from hookline.storage.sqlite import SqliteStore
from tests.conftest import make_app, utcnow


def _principal(path: Path, token: str) -> Principal:
    async def check() -> Principal:
        store = SqliteStore(str(path))
        await store.open()
        try:
            return await Authenticator(Operations(store)).authenticate(f"Bearer {token}", utcnow())
        finally:
            await store.close()

    return asyncio.run(check())


def _add_app(path: Path, uid: str) -> str:
    async def add() -> str:
        store = SqliteStore(str(path))
        await store.open()
        app = make_app(uid=uid)
        await store.create_application(app)
        await store.close()
        return app.id

    return asyncio.run(add())


def test_token_prints_an_admin_token_or_one_scoped_by_uid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --app the token is admin; with --app <uid> it is scoped to that application."""
    db = tmp_path / "cli.db"
    url = f"sqlite:///{db}"
    cli.main(["token", "--database-url", url])
    admin = capsys.readouterr().out.strip()
    assert admin.startswith("hl_admin_") and _principal(db, admin).is_admin
    app_id = _add_app(db, "acme")
    cli.main(["token", "--database-url", url, "--app", "acme"])
    scoped = capsys.readouterr().out.strip()
    assert scoped.startswith("hl_app_") and _principal(db, scoped).app_id == app_id


def test_token_for_an_unknown_application_exits_with_a_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--app naming no application exits with a message and prints no token."""
    db = tmp_path / "cli.db"
    with pytest.raises(SystemExit) as exited:
        cli.main(["token", "--database-url", f"sqlite:///{db}", "--app", "nope"])
    assert exited.value.code == "hookline: no application 'nope'"
    assert capsys.readouterr().out == ""


def test_token_list_and_revoke_through_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``token list`` shows ids, names and capabilities but never a token; ``token revoke``
    makes the token fail; revoking an unknown id exits with a message."""
    db = tmp_path / "cli.db"
    url = f"sqlite:///{db}"
    _add_app(db, "acme")
    cli.main(["token", "--database-url", url, "--app", "acme", "--name", "ro", "--read-only"])
    token = capsys.readouterr().out.strip()
    assert _principal(db, token).capabilities == {Capability.VIEW_BASE}
    cli.main(["token", "list", "--database-url", url])
    listed = capsys.readouterr().out
    assert "\tro\t" in listed and "ViewBase" in listed and token not in listed
    token_id = listed.split("\t", 1)[0]
    cli.main(["token", "revoke", token_id, "--database-url", url])
    assert capsys.readouterr().out.strip() == f"hookline: revoked {token_id}"
    with pytest.raises(Unauthorized):
        _principal(db, token)
    with pytest.raises(SystemExit) as exited:
        cli.main(["token", "revoke", token_id, "--database-url", url])
    assert exited.value.code == f"hookline: No token {token_id!r}"


def test_token_capabilities_and_expiry_flags(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--capability picks what a scoped token may do; an unknown name or duration exits."""
    db = tmp_path / "cli.db"
    url = f"sqlite:///{db}"
    _add_app(db, "acme")
    flags = ["--capability", "CreateAttempts", "--expires-in", "1h"]
    cli.main(["token", "--database-url", url, "--app", "acme", *flags])
    token = capsys.readouterr().out.strip()
    assert _principal(db, token).capabilities == {Capability.VIEW_BASE, Capability.CREATE_ATTEMPTS}
    for bad in (["--capability", "Root"], ["--expires-in", "soon"]):
        with pytest.raises(SystemExit) as exited:
            cli.main(["token", "--database-url", url, "--app", "acme", *bad])
        assert str(exited.value.code).startswith("hookline: ")


def test_an_app_token_expires_after_90_days_unless_told_otherwise(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``hookline token --app`` gives a token that ends after 90 days by default;
    ``--expires-in never`` makes one that does not, as an admin token is by default."""
    db = tmp_path / "cli.db"
    url = f"sqlite:///{db}"
    _add_app(db, "acme")
    before = datetime.now(UTC)
    cli.main(["token", "--database-url", url, "--app", "acme", "--name", "default"])
    never = ["--expires-in", "never"]
    cli.main(["token", "--database-url", url, "--app", "acme", "--name", "forever", *never])
    cli.main(["token", "--database-url", url, "--name", "admin"])
    capsys.readouterr()
    cli.main(["token", "list", "--database-url", url])
    expiries = {
        row.split("\t")[2]: row.split("expires=", 1)[1].split("\t", 1)[0]
        for row in capsys.readouterr().out.splitlines()
    }
    ends = datetime.fromisoformat(expiries["default"])
    assert before + timedelta(days=90) - timedelta(minutes=1) < ends
    assert ends < datetime.now(UTC) + timedelta(days=90, minutes=1)
    assert (expiries["forever"], expiries["admin"]) == ("-", "-")


def test_token_networks_are_set_at_creation_listed_and_replaced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--allow-network (repeatable) limits a new token to those networks, which ``token
    list`` shows; ``token networks <id>`` replaces them or (--any-network) lifts them; a bad
    network exits with the reason and prints no token."""
    db = tmp_path / "cli.db"
    url = f"sqlite:///{db}"
    limits = ["--allow-network", "10.0.0.0/8", "--allow-network", "2001:db8::1"]
    cli.main(["token", "--database-url", url, "--name", "ci", *limits])
    token = capsys.readouterr().out.strip()
    assert _principal(db, token).networks == parse_allowlist(["10.0.0.0/8", "2001:db8::1/128"])
    cli.main(["token", "list", "--database-url", url])
    (line,) = [row for row in capsys.readouterr().out.splitlines() if "\tci\t" in row]
    assert line.endswith("\tnetworks=10.0.0.0/8,2001:db8::1/128")
    token_id = line.split("\t", 1)[0]
    cli.main(["token", "networks", token_id, "--database-url", url, "--allow-network", "::1"])
    assert capsys.readouterr().out.strip() == f"hookline: {token_id} may be used from ::1/128"
    assert _principal(db, token).networks == parse_allowlist(["::1"])
    cli.main(["token", "networks", token_id, "--database-url", url, "--any-network"])
    assert capsys.readouterr().out.strip() == f"hookline: {token_id} may be used from any"
    assert _principal(db, token).networks is None
    for bad in (
        ["token", "--allow-network", "10.1.2.3/8"],
        ["token", "networks", token_id],
        ["token", "networks", token_id, "--any-network", "--allow-network", "::1"],
        ["token", "networks", "tok_absent", "--any-network"],
    ):
        with pytest.raises(SystemExit) as exited:
            cli.main([*bad, "--database-url", url])
        assert str(exited.value.code).startswith("hookline: "), bad
    assert "write 10.0.0.0/8" in str(_exit_of(["token", "--allow-network", "10.1.2.3/8"], url))
    assert capsys.readouterr().out == ""


def _exit_of(argv: list[str], url: str) -> object:
    with pytest.raises(SystemExit) as exited:
        cli.main([*argv, "--database-url", url])
    return exited.value.code
