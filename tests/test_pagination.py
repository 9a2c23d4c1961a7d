"""Page tokens: what goes in comes back out, and anything else is a 400 naming next_token."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from steelyard import pagination
from steelyard.errors import ValidationError

BIG = 2**63 - 1


@given(st.integers(0, BIG), st.none() | st.integers(0, BIG))
def test_keyset_tokens_round_trip(after: int, total: int | None) -> None:
    assert pagination.decode_keyset(pagination.encode_keyset(after, total)) == (after, total)


def test_tokens_issued_before_totals_rode_along_still_work() -> None:
    assert pagination.decode_keyset(pagination.encode("s", 41)) == (41, None)


def _raw(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "token",
    [
        _raw("s"),
        _raw("s-1"),
        _raw("s1t"),
        _raw("s1t-2"),
        _raw("s1t2t3"),
        _raw("x1"),
        _raw(f"s{2**63}"),
        _raw(f"s1t{2**63}"),
        "%%%",
        "",
    ],
)
def test_forged_tokens_are_refused_by_name(token: str) -> None:
    with pytest.raises(ValidationError) as err:
        pagination.decode_keyset(token)
    assert err.value.field == "next_token"
