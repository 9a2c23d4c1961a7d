"""FastAPI dependencies: the database, settings, clock, the caller (``api.auth``) and the body."""

from __future__ import annotations

import json
import math
import re
from typing import Annotated, Any

from fastapi import Depends, Request

from steelyard.api.auth import ActorDep as ActorDep  # handlers import the caller from here too
from steelyard.clock import Clock
from steelyard.config import Settings
from steelyard.db.engine import Database
from steelyard.errors import ValidationError

#: Routes see ``%2F`` in a path segment as this character (see ``app.RawPathMiddleware``).
SLASH_SENTINEL = "\ue000"


# The dependencies below are ``async def`` on purpose: FastAPI runs a plain ``def`` dependency
# in the thread pool, and five thread hops per request cost more than the request's own work.


async def get_db(request: Request) -> Database:
    return request.app.state.db  # type: ignore[no-any-return]


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


async def get_clock(request: Request) -> Clock:
    return request.app.state.clock  # type: ignore[no-any-return]


async def json_body(request: Request) -> Any:
    """The request's JSON body, or None when empty. Tolerates what the Scale client sends:
    ``Content-Type: application/json`` with no body, DELETE with a body, bare arrays.

    Its size is bounded before it gets here, for every route (``api.limits``)."""
    raw = await request.body()
    if not raw.strip():
        return None
    oversized: list[int] = []

    def bounded_int(text: str) -> int:
        value = int(text)
        if not _MIN_INT <= value <= _MAX_INT:
            oversized.append(value)
        return value

    try:
        doc = json.loads(
            raw, parse_constant=_no_constant, parse_float=_finite_float, parse_int=bounded_int
        )
    except RecursionError:
        raise ValidationError(
            f"The request body nests deeper than {MAX_JSON_DEPTH} levels.", field="body"
        ) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationError(f"The request body is not valid JSON: {exc}", field="body") from None
    if oversized or _SUSPECT.search(raw) or raw.count(b"{") + raw.count(b"[") > MAX_JSON_DEPTH:
        _check_storable(doc)
    return doc


#: Deeper documents are refused: serializers and databases recurse on them.
MAX_JSON_DEPTH = 64
#: ``\u0000`` or a UTF-16 surrogate escape (paired ones are fine; lone ones are not).
_SUSPECT = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")


#: What the JSON columns can store (orjson's range: signed 64-bit, or unsigned up to 2**64 - 1).
_MIN_INT, _MAX_INT = -(2**63), 2**64 - 1


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"the number {text[:40]} is out of range")
    return value


def _check_storable(doc: Any) -> None:
    """Refuse what cannot be stored (NUL in text, lone surrogates, integers past 64 bits) or what
    nests too deep, naming where it is. Runs only when a cheap scan of the raw body (or the
    integer parser) found a suspect."""
    stack: list[tuple[Any, str, int]] = [(doc, "", 1)]
    while stack:
        value, path, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            where = ".".join(path.split(".")[:3])
            raise ValidationError(
                f"The request body nests deeper than {MAX_JSON_DEPTH} levels (at {where}...).",
                field=where or "body",
            )
        if isinstance(value, dict):
            for key, item in value.items():
                sub = f"{path}.{key}" if path else str(key)
                _check_text(key, sub)
                stack.append((item, sub, depth + 1))
        elif isinstance(value, list):
            stack.extend(
                (item, f"{path}.{i}" if path else str(i), depth + 1) for i, item in enumerate(value)
            )
        elif isinstance(value, str):
            _check_text(value, path)
        elif isinstance(value, int) and not _MIN_INT <= value <= _MAX_INT:
            raise ValidationError(
                f"{path or 'body'} is an integer outside the 64-bit range this server stores.",
                field=path or "body",
            )


def _check_text(text: str, path: str) -> None:
    field = path or "body"
    if "\x00" in text:
        raise ValidationError(f"{field} contains a NUL character (\\u0000).", field=field)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(
            f"{field} contains an unpaired UTF-16 surrogate.", field=field
        ) from None


def path_name(value: str) -> str:
    """A project/batch name from a path segment, with an encoded ``/`` restored."""
    return value.replace(SLASH_SENTINEL, "/")


DbDep = Annotated[Database, Depends(get_db)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
ClockDep = Annotated[Clock, Depends(get_clock)]
BodyDep = Annotated[Any, Depends(json_body)]
