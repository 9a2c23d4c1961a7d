"""Tell every serving process at once that credentials changed (a key or session revoked or
deleted, a user deactivated, a membership removed or its role changed), however they were
changed, so that no cached authentication (``steelyard.api.auth``) outlives the change.

The database itself is the source of the signal: triggers (migration 0006) fire on every UPDATE
and DELETE of ``api_keys``, ``login_sessions``, ``users`` and ``memberships``, whether the
product, an operator's ``psql``/``sqlite3`` or another program made it. Inserts do not fire: a
new key or session invalidates nothing cached. Each serving process holds a watcher (``watch``)
that its authentication cache asks before every lookup whether anything changed since it last
asked:

- SQLite: the triggers increment ``auth_epoch.n`` in the changing transaction. The watcher reads
  that one row through a plain ``sqlite3`` connection of its own (a few microseconds). In WAL
  mode a new read sees the latest commit and never waits for a writer, and an uncommitted or
  rolled-back change is never seen.
- PostgreSQL: the triggers call ``pg_notify('steelyard_auth', '')``, delivered at commit; a
  thread per process LISTENs. The per-request check peeks at that connection's socket without
  reading: a notification that has arrived but is not yet handled already counts, so the next
  request after a commit elsewhere does not wait for the thread to be scheduled. While it is
  not listening (not started, or reconnecting) the watcher reports a change on every call,
  which turns caching off rather than trusting what may be stale. PostgreSQL keeps no counter:
  a row every credential change updates would serialize those transactions, and two of them
  locking a user's rows and that row in opposite orders would deadlock.

On either database, a watcher that cannot read its signal answers with a token never seen
before, so nothing is cached while it is blind.

``credentials_changed(session)``, which the services call in the transaction that makes a
change, only makes the committing process drop its own cache at commit, without waiting for
the database's notification to come back to it (PostgreSQL delivers asynchronously).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import select
import socket
import sqlite3
import threading
import weakref
from collections.abc import Hashable
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import BigInteger, Engine, Integer, event
from sqlalchemy.engine import URL
from sqlalchemy.orm import Mapped, Session, mapped_column

from steelyard.db.base import Base

if TYPE_CHECKING:
    import psycopg
    from psycopg import pq

log = logging.getLogger("steelyard.auth")

CHANNEL = "steelyard_auth"
_PENDING = "steelyard.credentials_changed"


class AuthEpoch(Base):
    """One row (``id`` 1): how many credential rows have changed (SQLite; see the module)."""

    __tablename__ = "auth_epoch"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger)


def credentials_changed(session: Session) -> None:
    """Drop this process's cached credentials when ``session``'s transaction commits (other
    processes hear of the change from the database)."""
    session.info[_PENDING] = session.get_bind().engine.url


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    url = session.info.pop(_PENDING, None)
    if url is None:
        return
    for watcher in _local_watchers(_identity(url)):
        watcher.bump()


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_PENDING, None)


def _identity(url: URL) -> str:
    return url.render_as_string(hide_password=True)


def _database_file(url: URL) -> str | None:
    """The file of a SQLite database another connection can open (not ``:memory:``)."""
    if url.get_backend_name() != "sqlite":
        return None
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return database


# --- watchers -------------------------------------------------------------------------------


class EpochWatcher:
    """``token()`` answers with a value that changes whenever credentials may have changed.

    Two equal tokens mean that nothing changed in between. The base class only hears about
    commits in this process (an in-memory SQLite database has no other).
    """

    def __init__(self, url: URL) -> None:
        self.name = _identity(url)
        # Each bump takes a value never used before, so two threads bumping at once can never
        # leave the generation at a value someone has already seen.
        self._counter = itertools.count(1)
        self._generation = 0
        with _registry_lock:
            _registry.add(self)

    def bump(self) -> None:
        self._generation = next(self._counter)

    def token(self) -> Hashable:
        return self._generation

    def _unsure(self) -> Hashable:
        """A token never seen before: nothing cached is trusted, nothing looked up is kept."""
        return ("unsure", next(self._counter))

    def start(self) -> None:
        """Begin hearing other processes (no-op where nothing needs to run)."""

    def close(self) -> None:
        with _registry_lock:
            _registry.discard(self)


class CounterWatcher(EpochWatcher):
    """SQLite: ``auth_epoch.n``, read per call on a connection of the watcher's own."""

    _READ = "SELECT n FROM auth_epoch WHERE id = 1"

    def __init__(self, url: URL, path: str) -> None:
        super().__init__(url)
        # ``mode=rw``: never create the file (the watcher may be asked before the first
        # migration has made the database).
        self._uri = Path(path).resolve().as_uri() + "?mode=rw"
        self._cursor: sqlite3.Cursor | None = None
        self._lock = threading.Lock()
        self._failing = False

    def start(self) -> None:
        self.token()  # connects now rather than on the first request

    def token(self) -> Hashable:
        with self._lock:
            try:
                cursor = self._cursor or self._connect()
                row = cursor.execute(self._READ).fetchone()
            except sqlite3.Error as exc:
                self._disconnect()
                if not self._failing:
                    self._failing = True
                    log.warning("cannot read auth_epoch (%s): caching is off until it works", exc)
                return self._unsure()
            self._failing = False
            if row is None:
                return self._unsure()
        return (self._generation, row[0])

    def _connect(self) -> sqlite3.Cursor:
        # Autocommit: each read is its own transaction, so it always sees the latest commit and
        # never holds a snapshot that would keep the log from being checkpointed.
        conn = sqlite3.connect(
            self._uri, uri=True, isolation_level=None, check_same_thread=False, timeout=1
        )
        self._cursor = conn.cursor()
        return self._cursor

    def _disconnect(self) -> None:
        cursor, self._cursor = self._cursor, None
        if cursor is not None:
            with contextlib.suppress(sqlite3.Error):
                cursor.connection.close()

    def close(self) -> None:
        with self._lock:
            self._disconnect()
        super().close()


class NotifyWatcher(EpochWatcher):
    """PostgreSQL: a thread LISTENs on ``steelyard_auth``; see the module's docstring."""

    #: How long the thread waits for a notification before checking whether it should stop.
    POLL_SECONDS = 1.0
    RETRY_SECONDS = 1.0

    def __init__(self, url: URL) -> None:
        super().__init__(url)
        self._conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._peek: socket.socket | None = None
        self._stop = threading.Event()
        self._listening = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="steelyard-auth-listen", daemon=True)
        self._thread.start()
        # Not required (until it listens nothing is cached), but the first requests are faster.
        self._listening.wait(timeout=5)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.POLL_SECONDS + 5)
            self._thread = None
        super().close()

    def token(self) -> Hashable:
        peek = self._peek
        if peek is None or _has_input(peek):
            return self._unsure()  # deaf, or news not yet handled
        return self._generation

    def _run(self) -> None:
        import psycopg

        while not self._stop.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self._listen(conn)
            except psycopg.Error as exc:
                log.warning(
                    "not listening for credential changes (%s); caching is off until it works",
                    type(exc).__name__,
                )
            finally:
                self._set_peek(None)
            self._stop.wait(self.RETRY_SECONDS)

    def _listen(self, conn: psycopg.Connection[tuple[object, ...]]) -> None:
        from psycopg import OperationalError, pq

        pg = conn.pgconn
        self._drain(pg)
        self._set_peek(socket.socket(fileno=os.dup(conn.fileno())))
        # Whatever changed while nobody listened.
        self.bump()
        self._listening.set()
        poller = select.poll()
        poller.register(conn.fileno(), select.POLLIN | select.POLLERR | select.POLLHUP)
        while not self._stop.is_set():
            if not poller.poll(self.POLL_SECONDS * 1000):
                continue
            # Bumped before the input is read: at every moment either the socket still holds
            # the notification (``token`` sees it) or the generation has already moved.
            self.bump()
            pg.consume_input()
            self._drain(pg)
            self.bump()
            if pg.status != pq.ConnStatus.OK:
                raise OperationalError("the LISTEN connection was lost")

    @staticmethod
    def _drain(pg: pq.abc.PGconn) -> None:
        while pg.notifies() is not None:
            pass

    def _set_peek(self, peek: socket.socket | None) -> None:
        old, self._peek = self._peek, peek
        self.bump()
        if old is not None:
            with contextlib.suppress(OSError):
                old.close()


def _has_input(peek: socket.socket) -> bool:
    """Whether the socket holds unread input (or was closed), without reading it."""
    try:
        peek.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        return False
    except OSError:
        return True
    return True


def watch(engine: Engine) -> EpochWatcher:
    """The watcher for ``engine``'s database; call ``start()`` when serving, ``close()`` after."""
    url = engine.url
    if url.get_backend_name() == "postgresql":
        return NotifyWatcher(url)
    path = _database_file(url)
    return CounterWatcher(url, path) if path is not None else EpochWatcher(url)


_registry: weakref.WeakSet[EpochWatcher] = weakref.WeakSet()
_registry_lock = threading.Lock()


def _local_watchers(name: str) -> list[EpochWatcher]:
    with _registry_lock:
        return [w for w in _registry if w.name == name]
