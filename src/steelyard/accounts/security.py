"""Password, key and token hashing.

Passwords are hashed with argon2id (``argon2-cffi``) using OWASP's first recommended parameter
set: 19 MiB of memory, 2 passes, 1 lane (about 25 ms on one core here). Hashes run on a small
pool of their own (``HASH_CONCURRENCY`` threads, so a flood of sign-ins costs bounded memory)
whose threads run at a lower CPU priority (nice +10): under a flood of wrong passwords the CPU
goes to the event loop and the other requests first, and sign-ins wait. The caller blocks
until its hash is done, so call these from a worker thread, never from the event loop, and
never while a write transaction is open (hashing is slow on purpose; that is refused).

Passwords are NFKC-normalised before hashing (NIST SP 800-63B: the same password typed on two
keyboards must match). Hashes from before argon2 (scrypt, of the raw password) still verify and
report that they need a rehash, which sign-in does on success.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import hmac
import os
import secrets
import threading
import unicodedata
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from steelyard.db.engine import in_write_transaction

HASH_CONCURRENCY = max(1, min(4, os.cpu_count() or 1))
_HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
_NICENESS = 10


def _lower_priority() -> None:
    # On Linux a thread's nice value is its own: this lowers only the pool's threads.
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), _NICENESS)


_POOL = ThreadPoolExecutor(
    max_workers=HASH_CONCURRENCY, thread_name_prefix="steelyard-hash", initializer=_lower_priority
)
T = TypeVar("T")


def _slow(fn: Callable[..., T], *args: Any) -> T:
    if in_write_transaction():
        raise RuntimeError("password hashing inside a write transaction stalls every writer")
    return _POOL.submit(fn, *args).result()


def normalize(password: str) -> str:
    return unicodedata.normalize("NFKC", password)


def hash_password(password: str) -> str:
    return _slow(_HASHER.hash, normalize(password))


@functools.cache
def _dummy_hash() -> str:
    return hash_password(secrets.token_urlsafe(16))


def verify_password(password: str, stored: str | None) -> bool:
    """Whether ``password`` matches ``stored``.

    Costs the same whether or not there is a hash to check (no account, no password, an
    unreadable hash): those verify against a dummy argon2 hash and answer False, so the time
    taken does not tell an unknown email from a wrong password.
    """
    if stored and stored.startswith("scrypt$"):
        return _slow(_verify_scrypt, password, stored)
    real = stored is not None and stored.startswith("$argon2")
    return (
        _slow(_verify_argon2, password, stored if stored is not None and real else _dummy_hash())
        and real
    )


def _verify_argon2(password: str, stored: str) -> bool:
    try:
        return _HASHER.verify(stored, normalize(password))
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    """True for a legacy scrypt hash or an argon2 hash made with other parameters."""
    if not stored.startswith("$argon2"):
        return True
    try:
        return _HASHER.check_needs_rehash(stored)
    except InvalidHashError:
        return True


def _verify_scrypt(password: str, stored: str) -> bool:
    _, n, r, p, salt_b64, digest_b64 = stored.split("$")
    digest = hashlib.scrypt(
        password.encode(), salt=base64.b64decode(salt_b64), n=int(n), r=int(r), p=int(p)
    )
    return hmac.compare_digest(digest, base64.b64decode(digest_b64))


def token_hash(token: str) -> str:
    """Keys and session tokens are 256-bit random, so a plain SHA-256 is enough to store them."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_api_key(is_test: bool) -> str:
    return ("test_" if is_test else "live_") + secrets.token_hex(24)


def new_token() -> str:
    return secrets.token_urlsafe(32)


def sign(key: str, message: bytes) -> str:
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()
