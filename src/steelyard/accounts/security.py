"""Password, key and token hashing.

Passwords are hashed with argon2id (``argon2-cffi``) using OWASP's first recommended parameter
set: 19 MiB of memory, 2 passes, 1 lane (about 25 ms on one core here). At most
``HASH_CONCURRENCY`` hashes run at once in a process, so a flood of sign-ins costs bounded
memory (4 x 19 MiB) and leaves cores for everything else; callers wait their turn in a worker
thread. Hashing is slow on purpose: never call it while a write transaction is open.

Passwords are NFKC-normalised before hashing (NIST SP 800-63B: the same password typed on two
keyboards must match). Hashes from before argon2 (scrypt, of the raw password) still verify and
report that they need a rehash, which sign-in does on success.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets
import threading
import unicodedata

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

HASH_CONCURRENCY = 4
_HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
_SLOTS = threading.BoundedSemaphore(HASH_CONCURRENCY)


def normalize(password: str) -> str:
    return unicodedata.normalize("NFKC", password)


def hash_password(password: str) -> str:
    with _SLOTS:
        return _HASHER.hash(normalize(password))


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
        with _SLOTS:
            return _verify_scrypt(password, stored)
    real = stored is not None and stored.startswith("$argon2")
    target = stored if stored is not None and real else _dummy_hash()  # hashed outside the slot
    with _SLOTS:
        try:
            matched = _HASHER.verify(target, normalize(password))
        except (VerificationError, InvalidHashError):
            return False
    return matched and real


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
