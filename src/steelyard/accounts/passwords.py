"""The password policy, after NIST SP 800-63B rev. 4 (section 3.1.1.2).

- At least ``min_length`` characters (``STEELYARD_PASSWORD_MIN_LENGTH``, default 15: a password
  that is the only factor), counted as Unicode code points after NFKC normalisation; at most
  ``MAX_LENGTH`` (well past the 64 NIST asks to allow).
- Any printable Unicode, spaces included; no composition rules (no "one digit, one capital").
- Refused: passwords on the breach-derived list shipped with the package
  (``common-passwords.txt.gz``, see ``COMMON_PASSWORDS.md``), compared case-insensitively and
  with spaces removed; only whitespace; one shorter sequence repeated (``aaaa…``,
  ``passwordpassword``); passwords containing the account's email name or ``steelyard``.

``new_password_hash`` checks and hashes; it is slow, so call it before opening a transaction.
"""

from __future__ import annotations

import functools
import gzip
import unicodedata
from importlib import resources

from steelyard.accounts import security
from steelyard.errors import ValidationError

MAX_LENGTH = 1024
DEFAULT_MIN_LENGTH = 15
#: Below this no password is acceptable whatever the settings say (NIST's floor).
FLOOR = 8
_CONTEXT_WORDS = ("steelyard",)


@functools.cache
def common_passwords() -> frozenset[str]:
    data = resources.files("steelyard.accounts").joinpath("common-passwords.txt.gz").read_bytes()
    return frozenset(line.strip() for line in gzip.decompress(data).decode().splitlines())


def check_password(password: str, *, email: str, min_length: int = DEFAULT_MIN_LENGTH) -> str:
    """The normalised password, or a ``ValidationError`` on ``password`` saying why not."""
    if not isinstance(password, str):
        raise _refuse("Password must be a string.")
    normalized = security.normalize(password)
    minimum = max(FLOOR, min_length)
    if len(normalized) < minimum:
        raise _refuse(f"Password must have at least {minimum} characters.")
    if len(normalized) > MAX_LENGTH:
        raise _refuse(f"Password must have at most {MAX_LENGTH} characters.")
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in normalized):
        raise _refuse("Password must not contain control characters.")
    compact = "".join(normalized.split()).casefold()
    if not compact:
        raise _refuse("Password must not be only spaces.")
    unit = _repeated_unit(compact)
    if unit is not None:
        raise _refuse(
            "Password must not be one character repeated."
            if len(unit) == 1
            else f"Password must not be a {len(unit)}-character sequence repeated."
        )
    folded = normalized.casefold()
    common = common_passwords()
    if folded in common or compact in common:
        raise _refuse("Password is on the list of common (breached) passwords; choose another.")
    local = email.split("@", 1)[0].casefold()
    if len(local) >= 3 and local in folded:
        raise _refuse("Password must not contain the email address's name.")
    for word in _CONTEXT_WORDS:
        if word in compact:
            raise _refuse(f"Password must not contain '{word}'.")
    return normalized


def new_password_hash(password: str, *, email: str, min_length: int = DEFAULT_MIN_LENGTH) -> str:
    """Check ``password`` against the policy and hash it (slow: outside any transaction)."""
    check_password(password, email=email, min_length=min_length)
    return security.hash_password(password)


def _repeated_unit(text: str) -> str | None:
    """The shortest ``unit`` such that ``text == unit * k`` for some ``k >= 2``, if any."""
    n = len(text)
    for size in range(1, n // 2 + 1):
        if n % size == 0 and text[:size] * (n // size) == text:
            return text[:size]
    return None


def _refuse(message: str) -> ValidationError:
    return ValidationError(message, field="password")
