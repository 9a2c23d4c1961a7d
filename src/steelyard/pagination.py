"""Opaque ``next_token`` values: a kind letter and a non-negative integer, base64-encoded.

Task pages carry the last ``seq`` (a keyset), v2 batch pages an offset; both are checked on the
way back in so a forged token is a 400 naming ``next_token``, never a database error.
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
