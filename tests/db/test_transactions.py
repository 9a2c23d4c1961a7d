"""``api.transactions.write``: a write unit of work run from the event loop.

On SQLite the work runs on the loop, also when another thread holds the write lock first (a
pool thread waits for it); every write commits exactly once and a failure rolls back.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from steelyard.api import transactions
from steelyard.db.engine import Database


@pytest.fixture()
def sqlite_db(tmp_path: Path) -> Iterator[Database]:
    db = Database(f"sqlite:///{tmp_path / 'w.db'}")
    with db.engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (n INTEGER)")
    yield db
    db.dispose()


def _insert(session: Session, n: int) -> int:
    session.execute(text("INSERT INTO t (n) VALUES (:n)"), {"n": n})
    return threading.get_ident()


def _rows(db: Database) -> list[int]:
    with db.unit_of_work(write=False) as s:
        return [r[0] for r in s.execute(text("SELECT n FROM t ORDER BY n"))]


def test_runs_on_the_loop_thread_when_the_lock_is_free(sqlite_db: Database) -> None:
    async def main() -> int:
        return await transactions.write(sqlite_db, _insert, 1)

    assert asyncio.run(main()) == threading.get_ident()
    assert _rows(sqlite_db) == [1]


def test_waits_for_a_writer_in_another_thread_then_runs_on_the_loop(
    sqlite_db: Database,
) -> None:
    held, release = threading.Event(), threading.Event()

    def other_writer() -> None:
        with sqlite_db.unit_of_work() as s:
            s.execute(text("INSERT INTO t (n) VALUES (0)"))
            held.set()
            release.wait(10)

    t = threading.Thread(target=other_writer)
    t.start()
    assert held.wait(10)

    async def main() -> list[int]:
        loop_thread = threading.get_ident()
        tasks = [asyncio.create_task(transactions.write(sqlite_db, _insert, n)) for n in (1, 2, 3)]
        await asyncio.sleep(0.05)
        assert not any(task.done() for task in tasks)  # queued behind the other writer
        release.set()
        threads = await asyncio.gather(*tasks)
        assert set(threads) == {loop_thread}
        return threads

    asyncio.run(main())
    t.join()
    assert _rows(sqlite_db) == [0, 1, 2, 3]


def test_a_failure_rolls_back_and_frees_the_lock(sqlite_db: Database) -> None:
    def fail(session: Session) -> None:
        session.execute(text("INSERT INTO t (n) VALUES (9)"))
        raise ValueError("refused")

    async def main() -> None:
        with pytest.raises(ValueError):
            await transactions.write(sqlite_db, fail)
        await transactions.write(sqlite_db, _insert, 1)

    asyncio.run(main())
    assert _rows(sqlite_db) == [1]


def test_many_concurrent_writes_all_commit(sqlite_db: Database) -> None:
    async def main() -> None:
        await asyncio.gather(*(transactions.write(sqlite_db, _insert, n) for n in range(200)))

    asyncio.run(main())
    assert _rows(sqlite_db) == list(range(200))


def test_each_backend_writes_where_it_should(db: Database, backend: str) -> None:
    """On the loop for SQLite; in a pool thread for PostgreSQL, whose writes wait on the network."""

    def where(session: Session) -> int:
        session.execute(text("SELECT 1"))
        return threading.get_ident()

    async def main() -> bool:
        return await transactions.write(db, where) == threading.get_ident()

    assert asyncio.run(main()) is (backend == "sqlite")


def test_the_loop_gets_a_turn_between_queued_writes(sqlite_db: Database) -> None:
    """One write per turn of the event loop: a request that arrives while writes are queued is
    read (and queued behind them) before the next write runs, so writes go in arrival order."""
    order: list[str] = []

    def work(session: Session, name: str) -> None:
        _insert(session, len(order))
        order.append(name)

    async def main() -> None:
        tasks = [
            asyncio.create_task(transactions.write(sqlite_db, work, f"w{i}")) for i in range(3)
        ]
        asyncio.get_running_loop().call_soon(order.append, "turn")
        await asyncio.gather(*tasks)

    asyncio.run(main())
    assert order == ["w0", "turn", "w1", "w2"]
