"""The suite-wide guard (``tests/_write_lock_guard.py``) catches waits inside write transactions."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import socket
import threading
from collections.abc import Callable

import httpx
import pytest
from sqlalchemy import text

from steelyard.api import transactions
from steelyard.db.engine import Database, in_write_transaction
from tests._write_lock_guard import (
    WaitUnderWriteLock,
    expect_violations,
    report,
    waits_allowed,
)


def _mock_get() -> None:
    with httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(200))) as client:
        client.get("https://hooks.example.com/")


def _connect() -> None:
    with socket.socket() as sock:
        sock.connect(("127.0.0.1", 9))


def _argon2() -> None:
    import argon2

    argon2.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash("secret")


WAITS: dict[str, Callable[[], object]] = {
    "getaddrinfo": lambda: socket.getaddrinfo("127.0.0.1", 80),
    "gethostbyname": lambda: socket.gethostbyname("127.0.0.1"),
    "create_connection": lambda: socket.create_connection(("127.0.0.1", 9), timeout=0.1),
    "connect": _connect,
    "scrypt": lambda: hashlib.scrypt(b"pw", salt=b"salt", n=2, r=1, p=1),
    "send": _mock_get,
}
try:
    import argon2  # noqa: F401 - only to learn whether the accounts code can use it
except ImportError:
    pass
else:
    WAITS["hash"] = _argon2


@pytest.mark.parametrize("name", sorted(WAITS))
def test_each_wait_inside_a_write_unit_of_work_is_caught_at_its_call_site(
    db: Database, name: str
) -> None:
    with (
        expect_violations() as caught,
        pytest.raises(WaitUnderWriteLock),
        db.unit_of_work() as session,
    ):
        session.execute(text("SELECT 1"))
        WAITS[name]()
    [violation] = caught
    assert violation.what.endswith(name)
    assert "test_write_lock_guard.py" in violation.stack


def test_the_same_calls_are_fine_outside_write_transactions(db: Database) -> None:
    with db.unit_of_work(write=False) as session:
        session.execute(text("SELECT 1"))
        assert socket.getaddrinfo("127.0.0.1", 80)
        hashlib.scrypt(b"pw", salt=b"salt", n=2, r=1, p=1)
        _mock_get()
    assert not in_write_transaction()


def test_the_flag_follows_the_thread_that_runs_the_block_and_ends_with_it(
    fresh_db: Database,
) -> None:
    claimed: list[object] = []
    taker = threading.Thread(target=lambda: claimed.append(fresh_db.claim_writer()))
    taker.start()
    taker.join()
    assert not in_write_transaction()  # the lock is held, but no block runs here yet
    unit = claimed[0]
    assert unit is not None
    with pytest.raises(ZeroDivisionError), unit:  # type: ignore[attr-defined]
        assert in_write_transaction()
        _ = 1 / 0
    assert not in_write_transaction()


def test_a_write_through_the_async_edge_is_guarded_on_each_backend(db: Database) -> None:
    """On SQLite ``transactions.write`` runs the block on the event loop, on PostgreSQL in a
    pool thread; both are write transactions."""

    def work(session: object) -> None:
        socket.getaddrinfo("127.0.0.1", 80)

    with expect_violations() as caught, pytest.raises(WaitUnderWriteLock):
        asyncio.run(transactions.write(db, work))
    assert len(caught) == 1


def test_a_swallowed_violation_in_another_thread_is_still_reported(db: Database) -> None:
    def server_side() -> None:
        # A write, and a broad ``except`` around the lookup, as product code might have.
        with db.unit_of_work(), contextlib.suppress(Exception):
            socket.getaddrinfo("127.0.0.1", 80)

    with expect_violations() as caught:
        thread = threading.Thread(target=server_side, name="server-like")
        thread.start()
        thread.join()
    assert len(caught) == 1
    message = report(caught)
    assert "server-like" in message and "getaddrinfo" in message and "server_side" in message


def test_waits_allowed_excuses_a_deliberate_hold(db: Database) -> None:
    with expect_violations() as caught, db.unit_of_work(), waits_allowed():
        socket.getaddrinfo("127.0.0.1", 80)
    assert caught == []
