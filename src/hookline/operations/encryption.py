"""Secrets at rest: ``hookline rekey``, which re-encrypts stored secrets under the current key.

The store's codec decides what "current" means (``storage/codec.py``: sealed with the first
key of ``HOOKLINE_ENCRYPTION_KEYS``); this walks every endpoint in batches, online, each
row rewritten by compare-and-set so that an update made meanwhile is never overwritten. A
row that raced is looked at again by another pass; after ``MAX_PASSES`` the report says how
many are left (their writer may still run with an older key list).
"""

from __future__ import annotations

from dataclasses import dataclass

from hookline.domain import audit as a
from hookline.domain.errors import InvalidRequest
from hookline.operations.audit import record
from hookline.operations.context import Operations
from hookline.operations.principal import Principal

DEFAULT_BATCH_SIZE = 500
MAX_PASSES = 5


@dataclass(frozen=True, slots=True)
class RekeyReport:
    scanned: int
    """Endpoints read in the first pass."""
    rekeyed: int
    """Endpoints whose secrets were re-encrypted (or, dry, would be)."""
    raced: int
    """Endpoints that changed under every pass and are not yet under the current key."""


async def rekey(
    ops: Operations,
    principal: Principal,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    dry_run: bool = False,
) -> RekeyReport:
    """Re-encrypt every endpoint's secrets that are not under the current key, then have
    the store forget the text it replaced (unless nothing was rewritten)."""
    principal.require_admin()
    if batch_size < 1:
        raise InvalidRequest("the batch size must be at least 1", loc=("batch_size",))
    scanned = rekeyed = raced = 0
    for _ in range(MAX_PASSES):
        seen, done, raced = await _pass(ops, batch_size, dry_run)
        scanned = scanned or seen
        rekeyed += done
        if raced == 0 or dry_run:
            break
    if rekeyed and not dry_run:
        await ops.store.forget_replaced_secrets()
    if not dry_run:
        summary = {"scanned": scanned, "rekeyed": rekeyed, "raced": raced}
        await record(ops, principal, a.SECRETS_REKEYED, summary=summary)
    return RekeyReport(scanned=scanned, rekeyed=rekeyed, raced=raced)


async def _pass(ops: Operations, batch_size: int, dry_run: bool) -> tuple[int, int, int]:
    scanned = rekeyed = raced = 0
    after: str | None = ""
    while after is not None:
        batch = await ops.store.rekey_batch(after, batch_size, dry_run=dry_run)
        scanned += batch.scanned
        rekeyed += batch.rekeyed
        raced += batch.raced
        after = batch.scanned_to
    return scanned, rekeyed, raced
