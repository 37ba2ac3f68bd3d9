"""Secret rotation: the new key signs at once, the old ones for a grace period.

Receivers that still hold an old secret keep verifying during the rollover, because
Standard Webhooks sends one signature per valid key (``webhook-signature`` lists them).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from hookline.domain.models import SigningKey


def rotate_keys(
    keys: tuple[SigningKey, ...], new_secret: str, grace: timedelta, now: datetime
) -> tuple[SigningKey, ...]:
    """The new key first, then every still-valid old key expiring within ``grace``.

    A key already set to expire sooner keeps its earlier expiry; expired keys are dropped,
    and a zero grace drops every old key.
    """
    expiry = now + grace
    retiring = (
        SigningKey(k.secret, min(k.expires_at or expiry, expiry)) for k in keys if k.valid_at(now)
    )
    return (SigningKey(new_secret), *(k for k in retiring if k.valid_at(now)))
