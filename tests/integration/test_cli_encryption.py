"""``hookline keygen``, ``hookline rekey`` and the start-up rule for plaintext secrets."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from hookline import cli
from hookline.config import load_settings
from hookline.domain.keyring import new_key_entry, parse_key_ring
from hookline.storage.codec import PLAIN, SealingCodec
from hookline.storage.sqlite import SqliteStore
from tests.conftest import make_app, make_endpoint

NEW = new_key_entry("new")


def test_keygen_prints_an_entry_the_setting_accepts(capsys: pytest.CaptureFixture[str]) -> None:
    """The printed line is a valid HOOKLINE_ENCRYPTION_KEYS entry, a fresh key each time;
    the advice goes to stderr so that stdout can be captured."""
    cli.main(["keygen", "--id", "2026-12"])
    first = capsys.readouterr()
    cli.main(["keygen"])
    second = capsys.readouterr().out.strip()
    entry = first.out.strip()
    assert entry.startswith("2026-12:") and "hookline rekey" in first.err
    keys = parse_key_ring(f"{entry},{second}")
    assert keys is not None and keys.ids[0] == "2026-12" and second.startswith("k20")


def test_keygen_refuses_an_id_the_setting_would_refuse() -> None:
    """An id with a separator in it would break the list: refused at once."""
    with pytest.raises(SystemExit, match="invalid --id"):
        cli.main(["keygen", "--id", "a:b"])


def _plaintext_endpoint(path: Path) -> str:
    async def add() -> str:
        store = SqliteStore(str(path), codec=PLAIN)
        await store.open()
        app = make_app()
        await store.create_application(app)
        ep = make_endpoint(app)
        await store.create_endpoint(ep)
        await store.close()
        return ep.keys[0].secret

    return asyncio.run(add())


def test_rekey_encrypts_rows_from_before_keys_and_reports_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``hookline rekey`` seals a plaintext row under the first key and says how many it
    re-encrypted; ``--dry-run`` only counts; the secret is then gone from the file."""
    path = tmp_path / "hookline.db"
    secret = _plaintext_endpoint(path)
    common = ["--database-url", f"sqlite:///{path}", "--encryption-keys", NEW]
    cli.main(["rekey", "--dry-run", *common])
    assert "would re-encrypt the secrets of 1 of 1 endpoint(s) under key 'new'" in (
        capsys.readouterr().out
    )
    cli.main(["rekey", *common])
    assert "re-encrypted the secrets of 1 of 1 endpoint(s)" in capsys.readouterr().out
    assert secret.encode() not in path.read_bytes()
    cli.main(["rekey", *common])
    assert "re-encrypted the secrets of 0 of 1 endpoint(s)" in capsys.readouterr().out


def test_rekey_without_keys_says_what_to_set(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="rekey needs HOOKLINE_ENCRYPTION_KEYS"):
        cli.main(["rekey", "--database-url", f"sqlite:///{tmp_path / 'x.db'}"])


def test_rekey_with_a_missing_old_key_names_it_and_changes_nothing(tmp_path: Path) -> None:
    """A row sealed under a key no longer configured stops rekey with that key's id."""
    path = tmp_path / "hookline.db"

    async def add() -> None:
        old = parse_key_ring(new_key_entry("gone"))
        assert old is not None
        store = SqliteStore(str(path), codec=SealingCodec(old))
        await store.open()
        app = make_app()
        await store.create_application(app)
        await store.create_endpoint(make_endpoint(app))
        await store.close()

    asyncio.run(add())
    with pytest.raises(SystemExit, match="'gone'"):
        cli.main(["rekey", "--database-url", f"sqlite:///{path}", "--encryption-keys", NEW])


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_production_refuses_to_start_without_keys(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No key, no --dev, no allowance: the process stops before opening the database, with
    a message that says the three ways out."""
    monkeypatch.delenv("HOOKLINE_ENCRYPTION_KEYS", raising=False)
    monkeypatch.delenv("HOOKLINE_ALLOW_PLAINTEXT_SECRETS", raising=False)
    path = tmp_path / "never.db"
    with pytest.raises(SystemExit) as stopped:
        cli.main([command, "--database-url", f"sqlite:///{path}"])
    assert stopped.value.code == cli.PLAINTEXT_REFUSED
    for way_out in ("hookline keygen", "HOOKLINE_ALLOW_PLAINTEXT_SECRETS=true", "--dev"):
        assert way_out in cli.PLAINTEXT_REFUSED
    assert not path.exists()


@pytest.mark.parametrize(
    "environ",
    [{"HOOKLINE_DEV": "true"}, {"HOOKLINE_ALLOW_PLAINTEXT_SECRETS": "true"}],
    ids=["dev", "allowed"],
)
def test_dev_or_the_allowance_start_with_a_loud_warning(
    environ: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    """--dev, or HOOKLINE_ALLOW_PLAINTEXT_SECRETS=true, lets the process start, warning."""
    with caplog.at_level(logging.WARNING, logger="hookline"):
        cli._refuse_plaintext_secrets(load_settings(environ=environ))
    assert "SECRETS ARE STORED IN PLAINTEXT" in caplog.text


def test_with_keys_nothing_is_said(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="hookline"):
        cli._refuse_plaintext_secrets(load_settings(environ={"HOOKLINE_ENCRYPTION_KEYS": NEW}))
    assert caplog.text == ""
