"""A project's pay settings, read from its params, and the ISO 4217 currency data they use.

``{"pay": {"piece_rate_minor": 12, "currency": "USD", "hourly_rate_minor": 0,
"review_rate_minor": 5}}``: the amount paid per completed item (a submitted label or gold or
training answer) and per decided review, in the currency's minor units (cents), plus an optional
hourly rate paid on the measured active time. Every amount is a whole number of minor units:
money is never a float. A project without ``pay`` keeps no ledger (``steelyard.pay``).

Currencies, their exponents (2 for USD, 0 for JPY, 3 for KWD) and their formatting are Babel's
CLDR data, not a table kept here. Pure: no database.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from babel.numbers import format_currency, get_currency_precision, is_currency

from steelyard.errors import ValidationError
from steelyard.validation import settings_object

#: Largest amount one setting may hold (minor units): 10^9 cents is ten million dollars.
MAX_MINOR = 10**9
_FIELDS = ("piece_rate_minor", "currency", "hourly_rate_minor", "review_rate_minor")


@dataclass(frozen=True, slots=True)
class PaySettings:
    piece_rate_minor: int
    currency: str
    hourly_rate_minor: int = 0
    review_rate_minor: int = 0


@functools.lru_cache(maxsize=512)
def _known(code: str) -> bool:
    # Babel's check walks its currency list (about 10 us); params are read on every create.
    return bool(is_currency(code))


def currency_code(value: Any, field: str) -> str:
    """``value`` as an ISO 4217 code Babel knows (upper case), else a 400 naming ``field``."""
    if not isinstance(value, str) or len(value) != 3 or not _known(value.upper()):
        raise ValidationError(f"{field} must be an ISO 4217 currency code.", field=field)
    return value.upper()


def exponent(currency: str) -> int:
    """Decimal places of the currency's minor unit (ISO 4217, from Babel's CLDR data)."""
    return int(get_currency_precision(currency))


def to_minor(major: float | Decimal | str, currency: str) -> int:
    """A major-unit amount (``15.00``) as whole minor units (1500), rounded half up."""
    try:
        amount = Decimal(str(major))
    except InvalidOperation:
        raise ValidationError(f"{major!r} is not an amount.") from None
    scaled = amount.scaleb(exponent(currency))
    return int(scaled.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def format_minor(amount_minor: int, currency: str, locale: str = "en_US") -> str:
    """``1550, "USD"`` → ``$15.50``: for people (JSON carries the integer)."""
    major = Decimal(amount_minor).scaleb(-exponent(currency))
    return str(format_currency(major, currency, locale=locale))


def _amount(value: Any, field: str, *, default: int | None = None) -> int:
    if value is None and default is not None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_MINOR:
        raise ValidationError(
            f"{field} must be a whole number of minor units from 0 to {MAX_MINOR}.", field=field
        )
    return value


def read(params: dict[str, Any], *, prefix: str = "params.") -> PaySettings | None:
    """``params.pay`` checked (``None`` when absent); errors name the field
    (``params.pay.piece_rate_minor``)."""
    field = f"{prefix}pay"
    value = params.get("pay")
    if value is None:
        return None
    settings_object(value, field, _FIELDS)
    if "piece_rate_minor" not in value:
        raise ValidationError(
            f"{field}.piece_rate_minor is required.", field=f"{field}.piece_rate_minor"
        )
    if "currency" not in value:
        raise ValidationError(f"{field}.currency is required.", field=f"{field}.currency")
    return PaySettings(
        piece_rate_minor=_amount(value["piece_rate_minor"], f"{field}.piece_rate_minor"),
        currency=currency_code(value["currency"], f"{field}.currency"),
        hourly_rate_minor=_amount(
            value.get("hourly_rate_minor"), f"{field}.hourly_rate_minor", default=0
        ),
        review_rate_minor=_amount(
            value.get("review_rate_minor"), f"{field}.review_rate_minor", default=0
        ),
    )
