"""Small checks on JSON bodies that raise errors naming the field."""

from __future__ import annotations

from typing import Any

from steelyard.errors import ValidationError


def require_str(body: dict[str, Any], key: str, *, max_length: int = 2000) -> str:
    value = body.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ValidationError(f"'{key}' is required.", field=key)
    if not isinstance(value, str):
        raise ValidationError(f"'{key}' must be a string.", field=key)
    if len(value) > max_length:
        raise ValidationError(f"'{key}' must be at most {max_length} characters.", field=key)
    return value


def optional_str(body: dict[str, Any], key: str, *, max_length: int = 2000) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValidationError(f"'{key}' must be a string.", field=key)
    if len(value) > max_length:
        raise ValidationError(f"'{key}' must be at most {max_length} characters.", field=key)
    return value


def optional_bool(body: dict[str, Any], key: str) -> bool | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
        return value.lower() in ("true", "1")
    raise ValidationError(f"'{key}' must be true or false.", field=key)


def optional_dict(body: dict[str, Any], key: str) -> dict[str, Any] | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ValidationError(f"'{key}' must be a JSON object.", field=key)
    return value


INT32 = (-(2**31), 2**31 - 1)


def optional_int(
    body: dict[str, Any], key: str, *, minimum: int = INT32[0], maximum: int = INT32[1]
) -> int | None:
    """An integer within ``minimum..maximum`` (by default what an INTEGER column holds)."""
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"'{key}' must be an integer.", field=key)
    if not minimum <= value <= maximum:
        raise ValidationError(f"'{key}' must be between {minimum} and {maximum}.", field=key)
    return value


def str_list(
    value: Any, field: str, *, max_items: int = 1000, max_length: int | None = None
) -> list[str]:
    """A list of strings; ``max_length`` (a column's size) bounds each, naming ``field.<i>``."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValidationError(f"'{field}' must be a list of strings.", field=field)
    if len(value) > max_items:
        raise ValidationError(f"'{field}' may hold at most {max_items} items.", field=field)
    if max_length is not None:
        for i, item in enumerate(value):
            if len(item) > max_length:
                raise ValidationError(
                    f"'{field}.{i}' must be at most {max_length} characters.", field=f"{field}.{i}"
                )
    return value


def parse_bool(value: str | None, field: str) -> bool | None:
    """Query booleans: the client sends ``True``/``False``; accept any case, 1/0, yes/no."""
    if value is None or value == "":
        return None
    lowered = value.strip().lower()
    if lowered in ("true", "1", "yes", "on"):
        return True
    if lowered in ("false", "0", "no", "off"):
        return False
    raise ValidationError(f"'{field}' must be true or false, got '{value}'.", field=field)


def under(prefix: str, exc: ValidationError) -> ValidationError:
    """``exc`` raised inside a nested document, re-rooted at ``prefix``.

    Type validators name fields from the top of the document they check (``annotations.0.label``)
    and start their message with that path; a caller that checked ``response`` or
    ``expected_response`` re-roots both, so the message still names the field the client sent.
    """
    field = f"{prefix}.{exc.field}" if exc.field else prefix
    message = exc.message
    if exc.field and message.startswith(exc.field):
        message = prefix + "." + message
    elif not message.startswith(prefix):
        message = f"{field}: {message}"
    return ValidationError(message, field=field)


def settings_object(value: Any, field: str, keys: tuple[str, ...]) -> dict[str, Any]:
    """A settings object (``params.review``, ``params.pay``...): a JSON object whose keys are
    among ``keys``; errors name the field, or the first unknown key under it."""
    if not isinstance(value, dict):
        raise ValidationError(f"{field} must be an object {{{', '.join(keys)}}}.", field=field)
    unknown = sorted(set(value) - set(keys))
    if unknown:
        name = f"{field}.{unknown[0]}"
        raise ValidationError(f"{name} is not a setting.", field=name)
    return value


def json_object(body: Any, *, empty: bool = False) -> dict[str, Any]:
    """A request body that must be a JSON object; ``empty`` lets a missing body mean ``{}``
    (the Scale client sends no body for ``{}``)."""
    if body is None and empty:
        return {}
    if not isinstance(body, dict):
        raise ValidationError("The body must be a JSON object.", field="body")
    return body


def require_metadata(value: Any) -> dict[str, Any]:
    """A v2 ``metadata`` field (task or batch): a JSON object."""
    if not isinstance(value, dict):
        raise ValidationError("'metadata' must be a JSON object.", field="metadata")
    return value


def deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """``update`` over ``base``: nested objects merge key by key, anything else replaces (v2's
    metadata merge, for tasks and batches alike)."""
    merged = dict(base)
    for key, value in update.items():
        current = merged.get(key)
        if isinstance(current, dict) and isinstance(value, dict):
            merged[key] = deep_merge(current, value)
        else:
            merged[key] = value
    return merged
