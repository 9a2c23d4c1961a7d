"""Tell every serving process at once that credentials changed (a key or session revoked, a user
deactivated or removed, a role changed), so that no cached authentication outlives it.

Services call ``credentials_changed(session)`` inside the transaction that makes the change;
the signal goes out when that transaction commits (never for one that rolls back). Each serving
process holds a watcher (``watch``) that its authentication cache (``steelyard.api.auth``) asks
before every lookup whether anything changed since it last asked:

- SQLite: a commit appends a byte to ``<db>.auth-epoch``; the watcher compares the file's
  ``os.stat`` with what it saw last (about a microsecond). The file only grows, one byte per
  change, so its size never repeats.
- PostgreSQL: the transaction sends ``NOTIFY steelyard_auth`` (delivered at commit); a thread per
  process LISTENs. The per-request check peeks at that connection's socket without reading: a
  notification that has arrived but is not yet handled already counts, so the next request
  after a commit elsewhere does not wait for the thread to be scheduled. While it is not
  listening (not started, or reconnecting) the watcher reports a change on every call, which
  turns caching off rather than trusting what may be stale.

In every case the committing process also tells its own watchers directly, at commit.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import select
import socket
import threading
import weakref
from collections.abc import Hashable
from typing import TYPE_CHECKING

from sqlalchemy import Engine, event, text
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session

if TYPE_CHECKING:
    import psycopg
    from psycopg import pq

log = logging.getLogger("steelyard.auth")

CHANNEL = "steelyard_auth"
_PENDING = "steelyard.credentials_changed"


def credentials_changed(session: Session) -> None:
    """Signal, on commit of ``session``'s transaction, that cached credentials are stale."""
    engine = session.get_bind().engine
    if engine.dialect.name == "postgresql":
        session.execute(text(f"NOTIFY {CHANNEL}"))
    session.info[_PENDING] = engine.url


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    url = session.info.pop(_PENDING, None)
    if url is None:
        return
    name = _identity(url)
    for watcher in _local_watchers(name):
        watcher.bump()
    path = _epoch_path(url)
    if path is not None:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, b".")
            finally:
                os.close(fd)
        except OSError as exc:
            # The change is committed; other processes now learn of it only when their cache
            # entries expire. Say so loudly.
            log.error("could not signal a credentials change to other processes: %s", exc)


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_PENDING, None)


def _identity(url: URL) -> str:
    return url.render_as_string(hide_password=True)


def _epoch_path(url: URL) -> str | None:
    if url.get_backend_name() != "sqlite":
        return None
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return database + ".auth-epoch"


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

    def start(self) -> None:
        """Begin hearing other processes (no-op where nothing needs to run)."""

    def close(self) -> None:
        with _registry_lock:
            _registry.discard(self)


class FileWatcher(EpochWatcher):
    """SQLite: the stat of ``<db>.auth-epoch``, which each change grows by one byte."""

    def __init__(self, url: URL, path: str) -> None:
        super().__init__(url)
        self.path = path

    def token(self) -> Hashable:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return (self._generation, None)
        return (self._generation, st.st_ino, st.st_size, st.st_mtime_ns)


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
            # Deaf, or news not yet handled: a token never seen before, so nothing cached now
            # is trusted and nothing looked up now is kept.
            return ("unsure", next(self._counter))
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
    path = _epoch_path(url)
    return FileWatcher(url, path) if path is not None else EpochWatcher(url)


_registry: weakref.WeakSet[EpochWatcher] = weakref.WeakSet()
_registry_lock = threading.Lock()


def _local_watchers(name: str) -> list[EpochWatcher]:
    with _registry_lock:
        return [w for w in _registry if w.name == name]
