"""Checks every task type shares: dotted field paths, JSON type checks, attachments.

Params arrive as parsed JSON, so every check here takes ``Any`` and either returns the value
narrowed to its Python type or raises ``ValidationError`` naming the field as a dotted path
(``geometries.box.min_width``, ``annotations.2.width``). Messages read as a sentence that
starts with that path, because the Scale client shows only the message to the user.

None of these helpers mutate their input: Scale echoes ``params`` back exactly as sent (its
client tests compare them), so types validate a deep copy and only *add* omitted defaults.
"""

from __future__ import annotations

import copy
import math
import random
import uuid
from collections.abc import Iterable
from typing import Any, NoReturn
from urllib.parse import urlsplit

from steelyard.errors import ValidationError

#: Attachments can point at our own file store with ``steelyard://<file id>`` as well as at
#: public ``http(s)`` URLs and inline ``data:`` URLs.
FILE_URL_SCHEME = "steelyard"
ATTACHMENT_TYPES = ("image", "text", "website", "video", "pdf", "audio")
_JSON_NAMES = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}


def at(path: str, key: str | int) -> str:
    """``at("geometries", "box")`` → ``geometries.box``; an empty path is the top level."""
    return f"{path}.{key}" if path else str(key)


def fail(field: str, problem: str) -> NoReturn:
    raise ValidationError(f"{field} {problem}.", field=field)


def describe(value: Any) -> str:
    """How a rejected value is shown in a message: short, and in JSON's words."""
    if value is None:
        return "null"
    if isinstance(value, bool | int | float):
        return repr(value) if not isinstance(value, bool) else str(value).lower()
    if isinstance(value, str):
        return repr(value if len(value) <= 40 else value[:37] + "...")
    return _JSON_NAMES.get(type(value), type(value).__name__)


def copy_json(value: Any) -> Any:
    return copy.deepcopy(value)


def new_uuid() -> str:
    return str(uuid.uuid4())


# -- JSON types ----------------------------------------------------------------------------


def is_number(value: Any) -> bool:
    """JSON numbers only: ``true`` is not 1 here, and NaN/inf cannot come from JSON."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def is_int(value: Any) -> bool:
    # Browsers serialise some whole numbers as 3.0; accept them as integers.
    return is_number(value) and float(value).is_integer()


def expect_object(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        fail(field, f"must be an object, got {describe(value)}")
    return value


def expect_list(value: Any, field: str, *, non_empty: bool = False) -> list[Any]:
    if not isinstance(value, list):
        fail(field, f"must be a list, got {describe(value)}")
    if non_empty and not value:
        fail(field, "must not be empty")
    return value


def expect_str(value: Any, field: str, *, non_empty: bool = True) -> str:
    if not isinstance(value, str):
        fail(field, f"must be a string, got {describe(value)}")
    if non_empty and not value.strip():
        fail(field, "must not be empty")
    return value


def expect_number(value: Any, field: str) -> float:
    if not is_number(value):
        fail(field, f"must be a number, got {describe(value)}")
    return float(value)


def expect_int(value: Any, field: str) -> int:
    if not is_int(value):
        fail(field, f"must be an integer, got {describe(value)}")
    return int(value)


def require(obj: dict[str, Any], key: str, path: str, hint: str = "") -> Any:
    if obj.get(key) is None:
        fail(at(path, key), "is required" + (f": {hint}" if hint else ""))
    return obj[key]


def opt_str(obj: dict[str, Any], key: str, path: str) -> str | None:
    value = obj.get(key)
    return None if value is None else expect_str(value, at(path, key), non_empty=False)


def opt_bool(obj: dict[str, Any], key: str, path: str, default: bool) -> bool:
    value = obj.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        fail(at(path, key), f"must be true or false, got {describe(value)}")
    return value


def _param_number(value: Any) -> Any:
    """Options in params may be numeric strings: Scale's own client tests send
    ``min_width="30"`` (its API began form-encoded). The string stays in the echoed params;
    only the parsed value is used. Responses get no such leniency."""
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return value
        return number if math.isfinite(number) else value
    return value


def opt_number(
    obj: dict[str, Any], key: str, path: str, *, minimum: float | None = None
) -> float | None:
    value = obj.get(key)
    if value is None:
        return None
    number = expect_number(_param_number(value), at(path, key))
    if minimum is not None and number < minimum:
        fail(at(path, key), f"must be at least {minimum:g}, got {describe(value)}")
    return number


def opt_int(obj: dict[str, Any], key: str, path: str, *, minimum: int | None = None) -> int | None:
    value = obj.get(key)
    if value is None:
        return None
    number = _param_number(value)
    if not is_int(number):
        fail(at(path, key), f"must be an integer, got {describe(value)}")
    if minimum is not None and number < minimum:
        fail(at(path, key), f"must be at least {minimum}, got {describe(value)}")
    return int(number)


def check_order(
    low: float | None, high: float | None, path: str, low_key: str, high_key: str
) -> None:
    if low is not None and high is not None and low > high:
        fail(at(path, high_key), f"({high:g}) must not be less than {low_key} ({low:g})")


def check_unique(values: Iterable[Any], path: str, what: str) -> None:
    """Every value distinct; the error names the index of the first repeat."""
    seen: set[Any] = set()
    for index, value in enumerate(values):
        key = (type(value), value) if isinstance(value, bool) else value
        if key in seen:
            fail(at(path, index), f"repeats the {what} {describe(value)}; {what}s must be unique")
        seen.add(key)


def string_list(value: Any, field: str, what: str) -> list[str]:
    """A non-empty list of distinct non-empty strings (categories, choices...)."""
    items = expect_list(value, field, non_empty=True)
    strings = [expect_str(item, at(field, i)) for i, item in enumerate(items)]
    check_unique(strings, field, what)
    return strings


# -- numbers with bounds (number attributes and fields) ------------------------------------


def check_in_range(
    value: float, field: str, minimum: float | None, maximum: float | None, step: float | None
) -> None:
    # A little slack: 0.1 * 3 is 0.30000000000000004 in binary floating point.
    slack = 1e-9 * max(1.0, abs(value))
    if minimum is not None and value < minimum - slack:
        fail(field, f"must be at least {minimum:g}, got {value:g}")
    if maximum is not None and value > maximum + slack:
        fail(field, f"must be at most {maximum:g}, got {value:g}")
    if step:
        offset = (value - (minimum if minimum is not None else 0.0)) / step
        if abs(offset - round(offset)) > 1e-6:
            fail(field, f"must be a multiple of the step {step:g} from {minimum or 0:g}")


def random_in_range(
    rng: random.Random, minimum: float | None, maximum: float | None, step: float | None
) -> float | int:
    """A value ``check_in_range`` accepts; whole numbers come back as ``int``."""
    low = minimum if minimum is not None else (maximum - 10 if maximum is not None else 0.0)
    high = maximum if maximum is not None else low + 10
    if step:
        base = minimum if minimum is not None else 0.0
        k_low = math.ceil((low - base) / step - 1e-9)
        k_high = math.floor((high - base) / step + 1e-9)
        value = round(base + step * rng.randint(min(k_low, k_high), k_high), 9)
    else:
        value = rng.uniform(low, high)
    return int(value) if float(value).is_integer() else value


# -- attachments ---------------------------------------------------------------------------


def check_url(value: Any, field: str, *, image: bool = False) -> str:
    """An http(s) URL, a ``data:`` URL (``data:image/...`` for images) or a Steelyard file."""
    text = expect_str(value, field)
    if any(ch.isspace() for ch in text.strip()):
        fail(field, f"must be a URL without spaces, got {describe(value)}")
    try:
        parts = urlsplit(text.strip())
    except ValueError:  # e.g. an unbalanced IPv6 bracket
        fail(field, f"must be a valid URL, got {describe(value)}")
    scheme = parts.scheme.lower()
    if scheme in ("http", "https") and parts.netloc:
        return text
    if scheme == FILE_URL_SCHEME and (parts.netloc or parts.path.strip("/")):
        return text
    if scheme == "data" and (not image or parts.path.lower().startswith("image/")):
        return text
    kind = "an image URL" if image else "a URL"
    allowed = "data:image/..." if image else "data:..."
    fail(
        field,
        f"must be {kind} (http://, https://, {allowed} or a {FILE_URL_SCHEME}:// file), "
        f"got {describe(value)}",
    )


def check_attachment_type(value: Any, field: str, allowed: Iterable[str]) -> str:
    allowed = tuple(allowed)
    kind = expect_str(value, field)
    if kind not in allowed:
        fail(field, f"must be one of {', '.join(allowed)}, got {describe(value)}")
    return kind


def check_content(kind: str, content: Any, field: str) -> str:
    """Text attachments carry the text itself; every other type carries a URL."""
    if kind == "text":
        return expect_str(content, field)
    return check_url(content, field, image=kind == "image")


def check_context_attachments(params: dict[str, Any]) -> None:
    """Scale's common ``context_attachments``: extra material shown beside the task."""
    raw = params.get("context_attachments")
    if raw is None:
        return
    for i, item in enumerate(expect_list(raw, "context_attachments")):
        field = at("context_attachments", i)
        if isinstance(item, str):
            check_url(item, field)
        else:
            check_url(
                require(expect_object(item, field), "attachment", field), at(field, "attachment")
            )


def expect_params(params: Any) -> dict[str, Any]:
    """The top-level params, deep-copied so normalizing never touches the caller's dict."""
    if not isinstance(params, dict):
        raise ValidationError(f"Task params must be an object, got {describe(params)}.")
    check_context_attachments(params)
    return dict(copy_json(params))


def expect_response(response: Any) -> dict[str, Any]:
    if not isinstance(response, dict):
        raise ValidationError(f"The response must be an object, got {describe(response)}.")
    return dict(copy_json(response))
