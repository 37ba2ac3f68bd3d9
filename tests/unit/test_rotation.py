"""Secret rotation: the new key first, old keys signing only for the grace period."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hookline.domain.models import SigningKey
from hookline.domain.rotation import rotate_keys

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def test_new_key_comes_first_and_the_old_one_expires_after_the_grace() -> None:
    """The new secret is the current key; the replaced one signs until now + grace."""
    keys = rotate_keys((SigningKey("whsec_old"),), "whsec_new", DAY, NOW)
    assert keys == (SigningKey("whsec_new"), SigningKey("whsec_old", NOW + DAY))


def test_a_key_already_retiring_keeps_its_earlier_expiry() -> None:
    """A second rotation never extends the life of a key that was due to expire sooner."""
    soon = NOW + timedelta(hours=1)
    keys = rotate_keys((SigningKey("b"), SigningKey("a", soon)), "c", DAY, NOW)
    assert keys == (SigningKey("c"), SigningKey("b", NOW + DAY), SigningKey("a", soon))


def test_a_shorter_grace_shortens_a_retiring_key() -> None:
    """A later rotation with a shorter grace brings every old key's expiry forward."""
    keys = rotate_keys((SigningKey("b"), SigningKey("a", NOW + DAY)), "c", timedelta(0), NOW)
    assert keys == (SigningKey("c"),)


def test_expired_keys_are_dropped() -> None:
    """Keys whose grace already ended do not come back."""
    keys = rotate_keys((SigningKey("b"), SigningKey("a", NOW - DAY)), "c", DAY, NOW)
    assert [k.secret for k in keys] == ["c", "b"]


def test_only_valid_keys_sign_after_rotation() -> None:
    """During the grace both secrets sign; after it only the new one does."""
    endpoint_keys = rotate_keys((SigningKey("old"),), "new", DAY, NOW)
    valid_now = [k.secret for k in endpoint_keys if k.valid_at(NOW)]
    valid_later = [k.secret for k in endpoint_keys if k.valid_at(NOW + DAY)]
    assert valid_now == ["new", "old"] and valid_later == ["new"]
