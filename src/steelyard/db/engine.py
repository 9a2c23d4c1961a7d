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
from contextlib import contextmanager, nullcontext
from typing import Any

import orjson
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.orm import Session, sessionmaker

WRITE_OPTION = "steelyard_write"


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def make_engine(url: str, *, echo: bool = False, **options: Any) -> Engine:
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
        _configure_sqlite(engine)
        return engine
    options.setdefault("pool_size", 20)
    options.setdefault("max_overflow", 20)
    options.setdefault("pool_pre_ping", True)
    return create_engine(url, echo=echo, **options)


def _configure_sqlite(engine: Engine) -> None:
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
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        if conn.get_execution_options().get(WRITE_OPTION):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")


class WriteLock:
    """One SQLite writer at a time across threads and processes, with immediate hand-over."""

    def __init__(self, database_file: str | None) -> None:
        self._thread_lock = threading.Lock()
        self._fd: int | None = None
        if database_file:
            self._fd = os.open(database_file + ".writelock", os.O_RDWR | os.O_CREAT, 0o600)

    def __enter__(self) -> None:
        self._thread_lock.acquire()
        if self._fd is not None:
            try:
                # Blocks in the kernel (the GIL is released) until the other process unlocks.
                fcntl.flock(self._fd, fcntl.LOCK_EX)
            except BaseException:
                self._thread_lock.release()
                raise

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._thread_lock.release()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class Database:
    """The engine plus two session factories: read (deferred) and write (immediate on SQLite)."""

    def __init__(self, url: str, *, echo: bool = False, **options: Any) -> None:
        self.url = url
        self.engine = make_engine(url, echo=echo, **options)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        write_engine = self.engine.execution_options(**{WRITE_OPTION: True})
        self._read = sessionmaker(bind=self.engine, expire_on_commit=False, autoflush=False)
        self._write = sessionmaker(bind=write_engine, expire_on_commit=False, autoflush=False)
        self._write_lock: WriteLock | None = None
        if self.is_sqlite:
            database_file = make_url(url).database
            in_memory = not database_file or database_file == ":memory:"
            self._write_lock = WriteLock(None if in_memory else database_file)

    def session(self, *, write: bool = True) -> Session:
        return (self._write if write else self._read)()

    @contextmanager
    def unit_of_work(self, *, write: bool = True) -> Iterator[Session]:
        """One transaction: committed when the block ends normally, rolled back otherwise."""
        lock = self._write_lock if write and self._write_lock is not None else nullcontext()
        with lock:
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

    def dispose(self) -> None:
        self.engine.dispose()
        if self._write_lock is not None:
            self._write_lock.close()
