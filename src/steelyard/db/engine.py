"""Engine and sessions. SQLite gets WAL, a busy timeout and ``BEGIN IMMEDIATE`` for writes.

On SQLite a deferred transaction that reads and then writes fails with SQLITE_BUSY_SNAPSHOT
when another connection committed in between, without waiting; starting write transactions
with ``BEGIN IMMEDIATE`` makes writers queue on the busy timeout instead. Reads stay deferred
so they never wait for writers (WAL).

SQLite writers also queue on a lock before ``BEGIN IMMEDIATE``: SQLite's own busy handler
polls with sleeps of up to 100 ms, which turns a short queue of writers into long tail latencies.
``WriteLock`` is a thread lock plus an ``flock`` on a file beside the database, so writers in
other processes (``serve --workers N``, a separate ``steelyard jobs``) are handed the database
at once by the kernel too.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import orjson
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.orm import Session, sessionmaker

from steelyard.db.checkpoint import Checkpointer

WRITE_OPTION = "steelyard_write"

#: Per thread: how many write units of work this thread is inside. Nothing in the product reads
#: it; the test suite does (``tests/_write_lock_guard.py``), to fail any DNS lookup, outgoing
#: connection or password hash made while a write transaction holds the database (SQLite's
#: write lock, PostgreSQL's row locks). A thread-local counter costs next to nothing.
_writing = threading.local()


def in_write_transaction() -> bool:
    """True while the calling thread runs inside a write unit of work."""
    return bool(getattr(_writing, "depth", 0))


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def make_engine(
    url: str, *, echo: bool = False, auto_checkpoint: bool = True, **options: Any
) -> Engine:
    # orjson: JSON columns (task params, responses...) are decoded for every row of every page.
    options.setdefault("json_serializer", _json_dumps)
    options.setdefault("json_deserializer", orjson.loads)
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            echo=echo,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=20,
            max_overflow=20,
            **options,
        )
        _configure_sqlite(engine, auto_checkpoint=auto_checkpoint)
        return engine
    options.setdefault("pool_size", 20)
    options.setdefault("max_overflow", 20)
    options.setdefault("pool_pre_ping", True)
    return create_engine(url, echo=echo, **options)


def _configure_sqlite(engine: Engine, *, auto_checkpoint: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the driver so we can emit BEGIN ourselves.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA cache_size=-65536")
        cursor.execute("PRAGMA temp_store=MEMORY")
        # When the log starts over, its file is cut back to this size rather than kept at the
        # largest it ever grew to. Above the usual size of the log (see db.checkpoint): cutting
        # it each time makes the next commit allocate the file's blocks again (~4 ms).
        cursor.execute("PRAGMA journal_size_limit=201326592")
        if not auto_checkpoint:
            cursor.execute("PRAGMA wal_autocheckpoint=0")  # a Checkpointer thread does it
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Straight to the driver: this runs for every transaction, and nothing about BEGIN
        # needs SQLAlchemy's statement machinery (caching, events, result objects).
        immediate = conn.get_execution_options().get(WRITE_OPTION)
        conn.connection.driver_connection.execute(  # type: ignore[union-attr]
            "BEGIN IMMEDIATE" if immediate else "BEGIN"
        )


class WriteLock:
    """One SQLite writer at a time across threads and processes, with immediate hand-over."""

    def __init__(self, database_file: str | None) -> None:
        self._thread_lock = threading.Lock()
        self._fd: int | None = None
        if database_file:
            self._fd = os.open(database_file + ".writelock", os.O_RDWR | os.O_CREAT, 0o600)

    def acquire(self, *, blocking: bool = True) -> bool:
        if not self._thread_lock.acquire(blocking):
            return False
        if self._fd is not None:
            try:
                # Blocks in the kernel (the GIL is released) until the other process unlocks.
                fcntl.flock(self._fd, fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self._thread_lock.release()
                return False
            except BaseException:
                self._thread_lock.release()
                raise
        return True

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._thread_lock.release()

    def __enter__(self) -> None:
        self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class Database:
    """The engine plus two session factories: read (deferred) and write (immediate on SQLite)."""

    def __init__(
        self,
        url: str,
        *,
        echo: bool = False,
        background_checkpoints: bool = False,
        **options: Any,
    ) -> None:
        """``background_checkpoints``: on a SQLite file, move the write-ahead log into the
        database from a thread instead of inside a commit (see ``db.checkpoint``); for servers.
        """
        self.url = url
        database_file = make_url(url).database if url.startswith("sqlite") else None
        in_memory = not database_file or database_file == ":memory:"
        checkpoints = bool(background_checkpoints and database_file and not in_memory)
        self.engine = make_engine(url, echo=echo, auto_checkpoint=not checkpoints, **options)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        write_engine = self.engine.execution_options(**{WRITE_OPTION: True})
        self._read = sessionmaker(bind=self.engine, expire_on_commit=False, autoflush=False)
        self._write = sessionmaker(bind=write_engine, expire_on_commit=False, autoflush=False)
        self._write_lock: WriteLock | None = None
        self._checkpointer: Checkpointer | None = None
        if self.is_sqlite:
            self._write_lock = WriteLock(None if in_memory else database_file)
            if checkpoints and database_file:
                # Started by the first write: an app that is built but never serves (OpenAPI
                # export, some tests) writes nothing and needs no thread.
                self._checkpointer = Checkpointer(database_file, self._write_lock)
        self._checkpointer_started = False

    def session(self, *, write: bool = True) -> Session:
        return (self._write if write else self._read)()

    @contextmanager
    def unit_of_work(self, *, write: bool = True) -> Iterator[Session]:
        """One transaction: committed when the block ends normally, rolled back otherwise."""
        lock = self._write_lock if write else None
        if lock is not None:
            lock.acquire()
        with self._transaction(write=write, held=lock) as session:
            yield session

    def claim_writer(self, *, wait: bool = True) -> AbstractContextManager[Session] | None:
        """A write unit of work whose turn to write has already come (SQLite only).

        The write lock is taken now (waiting for it when ``wait``, else None when another thread
        or process holds it) and released when the returned block ends, in whichever thread.
        That lets a caller wait for its turn in one thread and write in another.
        """
        if self._write_lock is None:
            raise RuntimeError("claim_writer is for SQLite, whose writers take turns")
        if not self._write_lock.acquire(blocking=wait):
            return None
        return self._transaction(write=True, held=self._write_lock)

    @contextmanager
    def _transaction(self, *, write: bool, held: WriteLock | None) -> Iterator[Session]:
        if write and not self._checkpointer_started and self._checkpointer is not None:
            self._checkpointer_started = True
            self._checkpointer.start()
        # Counted in the thread that runs the block, which for ``claim_writer`` is not always
        # the thread that took the lock.
        depth = getattr(_writing, "depth", 0)
        if write:
            _writing.depth = depth + 1
        try:
            session = self.session(write=write)
            try:
                yield session
                if write:
                    session.commit()
            except BaseException:
                session.rollback()
                raise
            finally:
                # For a read, close() alone ends the transaction: it releases the connection
                # (which rolls back) without first expiring every loaded object.
                session.close()
        finally:
            if write:
                _writing.depth = depth
            if held is not None:
                held.release()

    def dispose(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()
        self.engine.dispose()
        if self._write_lock is not None:
            self._write_lock.close()
