"""Opaque ``next_token`` values: a kind letter and a non-negative integer, base64-encoded.

Task pages carry the last ``seq`` (a keyset) and, for filters whose total must be counted row by
row, the total counted on the first page (so a listing counts once, not once per page); v2
batch pages carry an offset. Tokens are checked on the way back in so a forged one is a 400
naming ``next_token``, never a database error.
"""

from __future__ import annotations

import base64
import binascii

from steelyard.errors import ValidationError

_MAX = 2**63  # the database's BIGINT (and SQLite's INTEGER) ends there


def encode(kind: str, value: int) -> str:
    return base64.urlsafe_b64encode(f"{kind}{value}".encode()).decode().rstrip("=")


def decode(kind: str, token: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        if not raw.startswith(kind) or not raw[1:].isdigit() or len(raw) > 20:
            raise ValueError
        value = int(raw[1:])
        if value >= _MAX:
            raise ValueError
        return value
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ValidationError(
            "next_token is not a token this server issued.", field="next_token"
        ) from None


def encode_keyset(after: int, total: int | None) -> str:
    """A task page token: the last ``seq`` and, when given, the listing's total."""
    text = f"s{after}" if total is None else f"s{after}t{total}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_keyset(token: str) -> tuple[int, int | None]:
    """``(after, total)`` from ``encode_keyset`` (``total`` None when the token has none)."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        if not raw.startswith("s") or len(raw) > 42:
            raise ValueError
        after_text, sep, total_text = raw[1:].partition("t")
        if not after_text.isdigit() or (sep and not total_text.isdigit()):
            raise ValueError
        after, total = int(after_text), int(total_text) if total_text else None
        if after >= _MAX or (total is not None and total >= _MAX):
            raise ValueError
        return after, total
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ValidationError(
            "next_token is not a token this server issued.", field="next_token"
        ) from None
