"""Sliding-window request counting, pure (no database, no web): the decisions of the limiter.

Counts are kept per bucket per fixed window of ``WINDOW`` seconds aligned on the epoch, so that
every process (on every machine) agrees on which window a request falls in and counts from
several processes simply add up. A request is admitted when the sliding estimate

    previous window's count * (fraction of the previous window still inside the last minute)
    + this window's count + 1  ≤  limit

holds (the sliding-window counter of Cloudflare and nginx's ``limit_req`` family). Within one
aligned window at most ``limit`` requests are admitted; over any minute-long interval at most
``2 * limit`` in the worst case (a full previous window at its very end), ``limit`` when traffic
is even.

``Counts`` is one process's view of the shared counts: what it last read from the shared table,
what it is sending there now, and what it admitted since. See ``shared`` for the bound across
processes.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

#: Window length in seconds; limits are requests per window (per minute).
WINDOW = 60

Key = tuple[str, int]  # (bucket, window start)


class Check(NamedTuple):
    """Admit one more request into ``bucket`` only if it stays within ``limit`` per window.

    ``record=False`` only asks (the count is then taken elsewhere, e.g. exactly in the shared
    table). A tuple: one or two are built for every request.
    """

    bucket: str
    limit: int
    record: bool = True


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    #: When refused: seconds until a request would be admitted, if no other is.
    retry_after: float = 0.0
    #: When refused: the bucket that refused.
    bucket: str = ""


ALLOWED = Verdict(True)


def window_start(now: float) -> int:
    return int(now // WINDOW) * WINDOW


def estimate(previous: int, current: int, now: float) -> float:
    """Requests in the minute before ``now``, from the two window counts around it."""
    elapsed = (now - window_start(now)) / WINDOW
    return previous * (1.0 - elapsed) + current


def admits(previous: int, current: int, limit: int, now: float) -> bool:
    return estimate(previous, current, now) + 1 <= limit


def retry_after(previous: int, current: int, limit: int, now: float) -> float:
    """Seconds until ``admits`` holds again, assuming no further request is admitted."""
    start = window_start(now)
    elapsed = (now - start) / WINDOW
    if current + 1 <= limit:
        # Within this window, once enough of the previous one has slid out.
        needed = 1.0 - (limit - 1 - current) / previous if previous else 0.0
        return max(0.0, needed - elapsed) * WINDOW
    # In the next window, where this window's count becomes the previous one.
    needed = max(0.0, 1.0 - (limit - 1) / current)
    return (1.0 - elapsed + needed) * WINDOW


class Counts:
    """One process's counts per (bucket, window), thread-safe.

    A bucket's count is ``seen`` (the shared total at the last read) + ``sending`` (taken by a
    synchronisation that has not finished) + ``pending`` (admitted here since), kept summed in
    ``total`` so that a decision reads one number per window. Nothing here touches a database:
    ``shared.SharedLimiter`` moves the numbers.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[Key, int] = {}
        self._sending: dict[Key, int] = {}
        self._pending: defaultdict[Key, int] = defaultdict(int)
        self._total: defaultdict[Key, int] = defaultdict(int)

    def admit(self, checks: Sequence[Check], now: float) -> Verdict:
        """Admit the request (and count it in each recording bucket) only if every check holds.

        When several refuse, the verdict is the longest wait.
        """
        start = window_start(now)
        previous = start - WINDOW
        weight = 1.0 - (now - start) / WINDOW  # ``estimate``, inlined: this runs per request
        total = self._total
        refused: Verdict | None = None
        with self._lock:
            for bucket, limit, _record in checks:
                if limit <= 0:
                    continue
                before = total.get((bucket, previous), 0)
                current = total.get((bucket, start), 0)
                if before * weight + current + 1 > limit:
                    wait = retry_after(before, current, limit, now)
                    if refused is None or wait > refused.retry_after:
                        refused = Verdict(False, wait, bucket)
            if refused is not None:
                return refused
            for bucket, limit, record in checks:
                if record and limit > 0:
                    self._pending[(bucket, start)] += 1
                    total[(bucket, start)] += 1
        return ALLOWED

    def take_pending(self, since: int) -> dict[Key, int]:
        """The counts admitted here since the last call, from window ``since`` on, to be sent.

        They stay in this process's view (as ``sending``) until ``settle`` or ``send_failed``.
        """
        with self._lock:
            for key, n in self._pending.items():
                if key[1] >= since:
                    self._sending[key] = self._sending.get(key, 0) + n
            self._pending.clear()
            return dict(self._sending)

    def send_failed(self) -> None:
        """The shared table did not take them: keep them for the next synchronisation."""
        with self._lock:
            for key, n in self._sending.items():
                self._pending[key] += n
            self._sending.clear()

    def buckets(self, since: int) -> set[str]:
        """Buckets with a count in window ``since`` or later (the ones worth reading back)."""
        with self._lock:
            return {bucket for bucket, start in self._total if start >= since}

    def settle(self, totals: Mapping[Key, int], since: int) -> None:
        """Take the shared totals just read (they include everything sent); forget old windows.

        Totals only grow within a window, so a total older than one already taken (two reads
        finishing out of order) never lowers the count.
        """
        with self._lock:
            self._sending.clear()
            self._observe(totals)
            for counts in (self._seen, self._pending):
                for key in [k for k in counts if k[1] < since]:
                    del counts[key]
            self._total.clear()
            for counts in (self._seen, self._pending):
                for key, n in counts.items():
                    self._total[key] += n

    def observe(self, totals: Mapping[Key, int]) -> None:
        """Take shared totals read by someone else (an exact count taken in the table)."""
        with self._lock:
            self._observe(totals)

    def _observe(self, totals: Mapping[Key, int]) -> None:
        for key, n in totals.items():
            seen = self._seen.get(key, 0)
            if n > seen:
                self._seen[key] = n
                self._total[key] += n - seen
