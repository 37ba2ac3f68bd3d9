"""The key ring (domain/keyring.py) and the sealing codec (storage/codec.py): what
``HOOKLINE_ENCRYPTION_KEYS`` accepts, what a sealed value looks like, and what opens it."""

from __future__ import annotations

import base64

import pytest

from hookline.config import ConfigError, load_settings
from hookline.domain.keyring import (
    PREFIX,
    KeyRing,
    SecretsUnreadable,
    new_key_entry,
    parse_key_ring,
    sealed_key_id,
)
from hookline.storage import rows
from hookline.storage.codec import PLAIN, SECRET_COLUMNS, SealingCodec, codec_for
from hookline.storage.postgres.connector import QUERIES as POSTGRES
from hookline.storage.sqlite.connector import QUERIES as SQLITE

OLD = new_key_entry("old")
NEW = new_key_entry("new")
SECRET = '[{"secret":"whsec_c2VjcmV0LXNpZ25pbmcta2V5","expires_at":null}]'


def ring(text: str) -> KeyRing:
    parsed = parse_key_ring(text)
    assert parsed is not None
    return parsed


def test_keygen_entries_parse_and_carry_a_32_byte_key() -> None:
    """``new_key_entry`` prints ID:KEY with 32 random bytes, which the parser accepts."""
    key_id, _, key = NEW.partition(":")
    assert key_id == "new" and len(base64.urlsafe_b64decode(key)) == 32
    assert new_key_entry("new") != NEW
    assert ring(f"{NEW}, {OLD}").ids == ("new", "old")
    assert parse_key_ring("") is None and parse_key_ring(" , ") is None


@pytest.mark.parametrize(
    "text",
    [
        "no-colon",
        "bad id!:" + NEW.partition(":")[2],
        "short:" + base64.urlsafe_b64encode(b"x" * 16).decode(),
        "long:" + base64.urlsafe_b64encode(b"x" * 33).decode(),
        "std:" + base64.b64encode(b"\xfb" * 32).decode(),
        f"{NEW},new:" + base64.urlsafe_b64encode(b"y" * 32).decode(),
    ],
)
def test_malformed_key_lists_are_refused_without_echoing_a_key(text: str) -> None:
    """A wrong entry (no id, a bad id, a key not 32 bytes of URL-safe base64, a repeated id)
    stops the process with a message naming the variable, and the message never repeats
    the key material."""
    with pytest.raises(ConfigError) as caught:
        load_settings(environ={"HOOKLINE_ENCRYPTION_KEYS": text})
    message = str(caught.value)
    assert message.startswith("HOOKLINE_ENCRYPTION_KEYS=***:")
    for entry in text.split(","):
        key = entry.partition(":")[2] or entry
        assert key not in message


def test_settings_never_show_the_keys() -> None:
    """``repr`` of the settings and of the ring shows key ids at most."""
    settings = load_settings(environ={"HOOKLINE_ENCRYPTION_KEYS": f"{NEW},{OLD}"})
    assert settings.encryption_keys is not None
    for shown in (repr(settings), repr(settings.encryption_keys), repr(codec_for(ring(NEW)))):
        assert NEW.partition(":")[2] not in shown and OLD.partition(":")[2] not in shown


def test_the_first_key_seals_and_every_key_opens() -> None:
    """A value sealed under the old key opens after a new key is put first; new values are
    sealed with the new key; the key id is in the sealed text."""
    before = ring(OLD).seal(SECRET, "endpoints.keys:ep_1")
    rotated = ring(f"{NEW},{OLD}")
    assert before.startswith(f"{PREFIX}old:") and sealed_key_id(before) == "old"
    assert rotated.open(before, "endpoints.keys:ep_1") == SECRET
    after = rotated.seal(SECRET, "endpoints.keys:ep_1")
    assert sealed_key_id(after) == "new" and "whsec_" not in after
    assert after != rotated.seal(SECRET, "endpoints.keys:ep_1"), "a fresh nonce per value"


def test_a_value_under_a_removed_key_is_unreadable_and_names_the_key_id() -> None:
    """Dropping a key still in use is a clear error (503), not a crash or garbage."""
    sealed = ring(OLD).seal(SECRET, "endpoints.keys:ep_1")
    with pytest.raises(SecretsUnreadable, match="'old'"):
        ring(NEW).open(sealed, "endpoints.keys:ep_1")


def test_a_value_moved_to_another_row_or_column_or_altered_does_not_open() -> None:
    """The table, column and row are associated data: a sealed header copied into another
    endpoint (whose URL the attacker chose) does not decrypt there, nor does an altered byte."""
    keys = ring(NEW)
    sealed = keys.seal(SECRET, "endpoints.headers:ep_victim")
    for context in ("endpoints.headers:ep_attacker", "endpoints.keys:ep_victim"):
        with pytest.raises(SecretsUnreadable):
            keys.open(sealed, context)
    raw = bytearray(base64.urlsafe_b64decode(sealed.rpartition(":")[2]))
    raw[-1] ^= 1
    altered = sealed.rpartition(":")[0] + ":" + base64.urlsafe_b64encode(bytes(raw)).decode()
    with pytest.raises(SecretsUnreadable):
        keys.open(altered, "endpoints.headers:ep_victim")


def test_the_sealing_codec_reads_old_plaintext_and_knows_what_rekey_must_rewrite() -> None:
    """Rows written before keys were configured are read as they are; ``current`` is true
    only of values sealed with the first key, so rekey rewrites plaintext and old keys."""
    old, rotated = SealingCodec(ring(OLD)), SealingCodec(ring(f"{NEW},{OLD}"))
    under_old = old.encode("endpoints", "keys", "ep_1", SECRET)
    assert rotated.decode("endpoints", "keys", "ep_1", SECRET) == SECRET
    assert rotated.decode("endpoints", "keys", "ep_1", under_old) == SECRET
    assert not rotated.current(SECRET) and not rotated.current(under_old)
    assert rotated.current(rotated.encode("endpoints", "keys", "ep_1", SECRET))


def test_without_keys_a_sealed_value_is_refused_not_returned() -> None:
    """A store opened without the keys its rows were sealed with says so instead of handing
    ciphertext to the JSON parser."""
    sealed = SealingCodec(ring(NEW)).encode("endpoints", "headers", "ep_1", "{}")
    assert PLAIN.decode("endpoints", "headers", "ep_1", "{}") == "{}"
    with pytest.raises(SecretsUnreadable, match="HOOKLINE_ENCRYPTION_KEYS is not set"):
        PLAIN.decode("endpoints", "headers", "ep_1", sealed)


def test_rekey_reads_and_writes_every_secret_column() -> None:
    """A column added to SECRET_COLUMNS (endpoint credentials, say) must be added to the
    rekey queries too, or old keys could never be retired: this fails until it is."""
    for named in (SQLITE, POSTGRES):
        for table, column in SECRET_COLUMNS:
            if table != "endpoints":
                continue
            assert column in rows.ENDPOINT_SECRETS
            assert column in named["rekey_page"]
            assert f"{column} = :{column}" in named["rekey_write"]
            assert f"{column} = :old_{column}" in named["rekey_write"]
