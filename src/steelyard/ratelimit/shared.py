"""Rate limits that hold across serving processes without a database write per request.

Each process decides on its own counts (``window.Counts``): the shared totals as last read,
plus what it admitted since. A thread adds this process's new counts to ``rate_limit_buckets``
every ``sync_seconds`` (one short upsert transaction) and reads back the totals of the buckets
it has seen. So the hot path is a dictionary update under a lock, and on SQLite the write lock
is taken twice a second per process, not once per request.

The bound. A process misses only what other processes admitted since their last flush before
its own last read, i.e. within the last ``2 * sync_seconds``. With N processes each admitting
at most ``r`` requests per second into one bucket, a window admits at most

    limit + (N - 1) * r * 2 * sync_seconds

(and never more than N * limit): with 4 processes at 1,000 requests/s and 0.5 s, 3,000 over.
A limit that must hold exactly (sign-in per address, the password-guessing case) uses
``take_exact`` instead: one upsert and read in the caller's write transaction, where rows are
serialised (the write lock on SQLite, the row lock on PostgreSQL).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from sqlalchemy.orm import Session

from steelyard.db.engine import Database
from steelyard.ratelimit import repository
from steelyard.ratelimit.window import (
    ALLOWED,
    WINDOW,
    Check,
    Counts,
    Verdict,
    admits,
    retry_after,
    window_start,
)

log = logging.getLogger("steelyard.ratelimit")


class SharedLimiter:
    def __init__(
        self,
        db: Database,
        *,
        sync_seconds: float = 0.5,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``clock``: epoch seconds. Windows are aligned on wall-clock time so that processes on
        different machines count into the same windows (their clocks agree to NTP's accuracy).
        """
        self.db = db
        self.sync_seconds = sync_seconds
        self.clock = clock
        self.counts = Counts()
        self._purged_before = 0
        self._failing = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def check(self, checks: Sequence[Check]) -> Verdict:
        """Admit one request against this process's view of the shared counts (no I/O)."""
        return self.counts.admit(checks, self.clock())

    def take_exact(self, session: Session, bucket: str, limit: int) -> Verdict:
        """Count one request into ``bucket`` in the shared table, in ``session``'s (write)
        transaction, unless that would exceed ``limit``. Exact across processes."""
        if limit <= 0:
            return ALLOWED
        now = self.clock()
        start = window_start(now)
        key = (bucket, start)
        repository.add(session, {key: 1})
        found = repository.totals(session, [bucket], start - WINDOW)
        previous, current = found.get((bucket, start - WINDOW), 0), found[key]
        if admits(previous, current - 1, limit, now):
            verdict = ALLOWED
        else:
            # Not counted: a client that keeps knocking while refused is not locked out longer.
            repository.add(session, {key: -1})
            current -= 1
            found[key] = current
            verdict = Verdict(False, retry_after(previous, current, limit, now), bucket)
        self.counts.observe(found)
        return verdict

    def sync(self) -> None:
        """Send this process's new counts and read back the shared totals (the thread's work)."""
        since = window_start(self.clock()) - WINDOW
        deltas = self.counts.take_pending(since)
        buckets = self.counts.buckets(since)
        if not buckets:
            return
        try:
            if deltas:
                with self.db.unit_of_work() as session:
                    repository.add(session, deltas)
                    if self._purged_before < since:
                        repository.purge(session, before=since)
                        self._purged_before = since
            # Read after the commit, outside the write lock; what was sent counts until then.
            with self.db.unit_of_work(write=False) as session:
                found = repository.totals(session, buckets, since)
        except Exception:
            self.counts.send_failed()
            raise
        self.counts.settle(found, since)

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="steelyard-ratelimit", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread, sending what was admitted since its last round."""
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join()
        self._thread = None
        self._sync_logged()

    def _run(self) -> None:
        while not self._stop.wait(self.sync_seconds):
            self._sync_logged()

    def _sync_logged(self) -> None:
        try:
            self.sync()
        except Exception:
            # Decisions go on from this process's own counts; said once per outage.
            if not self._failing:
                log.warning("rate limits: cannot reach the shared counts", exc_info=True)
            self._failing = True
        else:
            self._failing = False
