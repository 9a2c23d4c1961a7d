"""FastAPI dependencies: the database, settings, clock and the authenticated caller."""

from __future__ import annotations

import asyncio
import base64
import json
import math
import re
import threading
import time
from typing import Annotated, Any

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from steelyard.accounts import service as accounts
from steelyard.accounts.schemas import Actor
from steelyard.clock import Clock
from steelyard.config import Settings
from steelyard.db.engine import Database
from steelyard.errors import TooLarge, Unauthorized, ValidationError

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


class _ActorCache:
    """API key → actor for a few seconds: spares a query per request on the hot paths."""

    def __init__(self, ttl: float = 10.0, size: int = 10_000) -> None:
        self.ttl, self.size = ttl, size
        self._items: dict[str, tuple[float, Actor]] = {}
        self._lock = threading.Lock()
        #: Lookups in flight. When an entry expires under load, every request holding that key
        #: misses at once; they share one lookup instead of each sending a thread to the database.
        self.pending: dict[str, asyncio.Future[Actor]] = {}

    def get(self, key: str) -> Actor | None:
        with self._lock:
            hit = self._items.get(key)
            if hit and hit[0] > time.monotonic():
                return hit[1]
            return None

    def put(self, key: str, actor: Actor) -> None:
        with self._lock:
            if len(self._items) >= self.size:
                self._items.clear()
            self._items[key] = (time.monotonic() + self.ttl, actor)


def _credentials(request: Request) -> tuple[str, str] | None:
    """(scheme, secret) from ``Authorization``: Basic with the key as username, or Bearer."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    value = value.strip()
    if scheme.lower() == "basic" and value:
        try:
            decoded = base64.b64decode(value).decode()
        except (ValueError, UnicodeDecodeError):
            return None
        username, _, _password = decoded.partition(":")
        return ("key", username) if username else None
    if scheme.lower() == "bearer" and value:
        return ("bearer", value)
    return None


async def get_actor(request: Request) -> Actor:
    """The caller: an API key (Basic or Bearer) or a worker's session token (Bearer).

    A cache hit answers on the event loop; a miss queries the database in the thread pool.
    """
    creds = _credentials(request)
    if creds is None:
        raise Unauthorized(
            "Please provide a valid API key: HTTP Basic with the key as username, or Bearer."
        )
    kind, secret = creds
    cache: _ActorCache = request.app.state.actor_cache
    cached = cache.get(secret)
    if cached is not None:
        return cached
    loop = asyncio.get_running_loop()
    pending = cache.pending.get(secret)
    if pending is not None and pending.get_loop() is loop:
        return await asyncio.shield(pending)
    future: asyncio.Future[Actor] = loop.create_future()
    cache.pending[secret] = future
    try:
        actor = await run_in_threadpool(_authenticate, request, kind, secret)
    except BaseException as exc:
        if isinstance(exc, Exception):
            future.set_exception(exc)
            future.exception()  # retrieved here: nobody else may be waiting for it
        else:
            future.cancel()
        raise
    finally:
        if cache.pending.get(secret) is future:
            del cache.pending[secret]
    if actor.kind == "api_key":
        cache.put(secret, actor)
    future.set_result(actor)
    return actor


def _authenticate(request: Request, kind: str, secret: str) -> Actor:
    db: Database = request.app.state.db
    with db.unit_of_work(write=False) as session:
        if secret.startswith(("live_", "test_")) or kind == "key":
            return accounts.authenticate_api_key(session, secret)
        now = request.app.state.clock.now()
        return accounts.authenticate_token(session, secret, now=now)


async def require_api_key(actor: Annotated[Actor, Depends(get_actor)]) -> Actor:
    """The Scale API takes API keys only.

    A worker's session token is a Bearer token too; without this check an annotator could call
    ``/v1`` as its organization (read every task, or promote itself with ``teams/set_role``).
    """
    if actor.kind != "api_key":
        raise Unauthorized(
            "The Scale API takes an API key (live_... or test_...), not a session token."
        )
    return actor


async def api_key_actor(request: Request) -> Actor:
    """``require_api_key`` for a handler that resolves its caller itself (a hot path)."""
    return await require_api_key(await get_actor(request))


async def json_body(request: Request) -> Any:
    """The request's JSON body, or None when empty. Tolerates what the Scale client sends:
    ``Content-Type: application/json`` with no body, DELETE with a body, bare arrays."""
    settings: Settings = request.app.state.settings
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > settings.max_body_bytes:
        raise TooLarge(
            f"The request body is larger than {settings.max_body_bytes} bytes.", field="body"
        )
    raw = bytearray()
    async for chunk in request.stream():
        raw.extend(chunk)
        if len(raw) > settings.max_body_bytes:
            raise TooLarge(
                f"The request body is larger than {settings.max_body_bytes} bytes.", field="body"
            )
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
ActorDep = Annotated[Actor, Depends(get_actor)]
BodyDep = Annotated[Any, Depends(json_body)]
