"""Write transactions on one SQLite file, queued on a lock file across processes."""

from __future__ import annotations

import fcntl
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def write_lock(lock: int | None) -> Iterator[None]:
    """Hold ``lock``, the file that hookline processes queue on before they write.

    SQLite makes a second writer sleep and retry (1 ms, then 2, 5, 10 …) while the first
    commits; several ``serve`` processes on one file would spend their time asleep. A
    blocking ``flock`` hands the write over the moment the holder is done, and it is
    released with the process, even on ``kill -9``. Other programs writing the file are
    still handled by ``busy_timeout``.
    """
    if lock is not None:
        fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        yield
    finally:
        if lock is not None:
            fcntl.flock(lock, fcntl.LOCK_UN)


@contextmanager
def transaction(conn: sqlite3.Connection, lock: int | None = None) -> Iterator[sqlite3.Connection]:
    """A write transaction, under the write lock."""
    with write_lock(lock):
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")


@contextmanager
def without_fsync(conn: sqlite3.Connection) -> Iterator[None]:
    """Commits that skip the fsync every acknowledged write keeps (``synchronous = FULL``),
    for writes a power cut may lose harmlessly: a claim's leases (the deliveries become
    claimable again), a retention batch (the next pass prunes it again), rate-limit slots (a
    grant is at most 0.2 s of one endpoint's sending). A killed process loses none of them:
    the WAL is written before the commit returns, only not flushed to the disk."""
    conn.execute("PRAGMA synchronous = NORMAL")
    try:
        yield
    finally:
        conn.execute("PRAGMA synchronous = FULL")
