"""Nothing slow inside a write transaction: a pytest plugin that enforces it across the suite.

While a thread is inside a write unit of work (``Database.unit_of_work()``, ``claim_writer``,
``api.transactions.write``; SQLite's write lock or PostgreSQL's row locks are held), it must
not wait on the network or hash a password: every other writer would wait behind it. This
plugin wraps the functions that do those waits, for the whole session, so that calling one
in a write transaction raises ``WaitUnderWriteLock`` at the call site and is recorded; the
test that was running then fails in its teardown, naming the call site, even when the product
code swallowed the exception (a callback delivery's ``except Exception``, a server thread).

Wrapped: DNS (``socket.getaddrinfo``, ``gethostbyname``, ``gethostbyname_ex``), connections
(``socket.create_connection``, ``socket.socket.connect``/``connect_ex``), HTTP (httpx's client
``send`` and httpcore's pools, mock transports included: the rule is about where a request is
made, not whether it reached a network), password hashing (``hashlib.scrypt``, ``hashlib.
pbkdf2_hmac`` and argon2-cffi's hasher when it is installed).

A test that holds a write transaction on purpose while it talks to the server (to prove that
something waits for it) wraps that part in ``waits_allowed()``.
"""

from __future__ import annotations

import functools
import hashlib
import socket
import threading
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx
import pytest

from steelyard.db.engine import in_write_transaction


class WaitUnderWriteLock(RuntimeError):
    """A network wait or a password hash inside a write transaction."""


@dataclass(frozen=True)
class Violation:
    what: str
    thread: str
    stack: str

    def describe(self) -> str:
        return f"{self.what} inside a write transaction (thread {self.thread}):\n{self.stack}"


_violations: list[Violation] = []
_violations_lock = threading.Lock()
_allowed = threading.local()


def _check(what: str) -> None:
    excused: int = getattr(_allowed, "depth", 0)
    if excused or not in_write_transaction():
        return
    # The caller's frames, without this plugin's own two.
    stack = "".join(traceback.format_stack(limit=18)[:-2])
    violation = Violation(what=what, thread=threading.current_thread().name, stack=stack)
    with _violations_lock:
        _violations.append(violation)
    raise WaitUnderWriteLock(violation.describe())


@contextmanager
def waits_allowed() -> Iterator[None]:
    """This thread may wait on the network inside a write transaction (tests that hold the
    database on purpose while they call the server)."""
    _allowed.depth = getattr(_allowed, "depth", 0) + 1
    try:
        yield
    finally:
        _allowed.depth -= 1


@contextmanager
def expect_violations() -> Iterator[list[Violation]]:
    """Collect (and so excuse) the violations recorded inside the block: for the guard's own
    tests."""
    with _violations_lock:
        start = len(_violations)
    caught: list[Violation] = []
    try:
        yield caught
    finally:
        with _violations_lock:
            caught.extend(_violations[start:])
            del _violations[start:]


def _targets() -> list[tuple[Any, str]]:
    targets: list[tuple[Any, str]] = [
        (socket, "getaddrinfo"),
        (socket, "gethostbyname"),
        (socket, "gethostbyname_ex"),
        (socket, "create_connection"),
        (socket.socket, "connect"),
        (socket.socket, "connect_ex"),
        (hashlib, "scrypt"),
        (hashlib, "pbkdf2_hmac"),
        (httpx.Client, "send"),
        (httpx.AsyncClient, "send"),
        (httpcore.ConnectionPool, "handle_request"),
        (httpcore.AsyncConnectionPool, "handle_async_request"),
    ]
    try:
        import argon2
        import argon2.low_level
    except ImportError:  # not a dependency (yet): nothing of it can run
        return targets
    targets += [
        (argon2.PasswordHasher, "hash"),
        (argon2.PasswordHasher, "verify"),
        (argon2.low_level, "hash_secret"),
        (argon2.low_level, "hash_secret_raw"),
        (argon2.low_level, "verify_secret"),
    ]
    return targets


def _guarded(owner: Any, name: str) -> Callable[..., Any]:
    original = getattr(owner, name)
    label = f"{getattr(owner, '__name__', owner)}.{name}"

    @functools.wraps(original)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        _check(label)
        return original(*args, **kwargs)

    guarded.__wrapped_original__ = original  # type: ignore[attr-defined]
    return guarded


def guarded_names() -> list[str]:
    return [f"{getattr(owner, '__name__', owner)}.{name}" for owner, name in _targets()]


@pytest.fixture(scope="session", autouse=True)
def _guard_write_transactions() -> Iterator[None]:
    """Wrap the waiting functions for the whole session (autouse: every test is covered)."""
    originals = [(owner, name, getattr(owner, name)) for owner, name in _targets()]
    for owner, name, _ in originals:
        setattr(owner, name, _guarded(owner, name))
    try:
        yield
    finally:
        for owner, name, original in originals:
            setattr(owner, name, original)


@pytest.fixture(autouse=True)
def _no_waits_under_write_lock(_guard_write_transactions: None) -> Iterator[None]:
    """Fail the test during which anything waited inside a write transaction."""
    with _violations_lock:
        start = len(_violations)
    yield
    with _violations_lock:
        found = _violations[start:]
        del _violations[start:]
    if found:
        pytest.fail(report(found), pytrace=False)


def report(found: list[Violation]) -> str:
    return (
        "Waited inside a write transaction (hold the database only for the write; do the "
        "lookup, request or hash first):\n\n" + "\n\n".join(v.describe() for v in found)
    )
