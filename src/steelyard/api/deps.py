"""FastAPI dependencies: the database, settings, clock and the authenticated caller."""

from __future__ import annotations

import base64
import json
import threading
import time
from typing import Annotated, Any

from fastapi import Depends, Request

from steelyard.accounts import service as accounts
from steelyard.accounts.schemas import Actor
from steelyard.clock import Clock
from steelyard.config import Settings
from steelyard.db.engine import Database
from steelyard.errors import TooLarge, Unauthorized, ValidationError

#: Routes see ``%2F`` in a path segment as this character (see ``app.RawPathMiddleware``).
SLASH_SENTINEL = "\ue000"


def get_db(request: Request) -> Database:
    return request.app.state.db  # type: ignore[no-any-return]


def get_settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


def get_clock(request: Request) -> Clock:
    return request.app.state.clock  # type: ignore[no-any-return]


class _ActorCache:
    """API key → actor for a few seconds: spares a query per request on the hot paths."""

    def __init__(self, ttl: float = 10.0, size: int = 10_000) -> None:
        self.ttl, self.size = ttl, size
        self._items: dict[str, tuple[float, Actor]] = {}
        self._lock = threading.Lock()

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


def get_actor(request: Request) -> Actor:
    """The caller: an API key (Basic or Bearer) or a worker's session token (Bearer)."""
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
    db = get_db(request)
    with db.unit_of_work(write=False) as session:
        if secret.startswith(("live_", "test_")) or kind == "key":
            actor = accounts.authenticate_api_key(session, secret)
        else:
            actor = accounts.authenticate_token(session, secret, now=get_clock(request).now())
    if actor.kind == "api_key":
        cache.put(secret, actor)
    return actor


async def json_body(request: Request) -> Any:
    """The request's JSON body, or None when empty. Tolerates what the Scale client sends:
    ``Content-Type: application/json`` with no body, DELETE with a body, bare arrays."""
    settings = get_settings(request)
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > settings.max_body_bytes:
        raise TooLarge(f"The request body is larger than {settings.max_body_bytes} bytes.", field="body")
    raw = bytearray()
    async for chunk in request.stream():
        raw.extend(chunk)
        if len(raw) > settings.max_body_bytes:
            raise TooLarge(
                f"The request body is larger than {settings.max_body_bytes} bytes.", field="body"
            )
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationError(f"The request body is not valid JSON: {exc}", field="body") from None


def path_name(value: str) -> str:
    """A project/batch name from a path segment, with an encoded ``/`` restored."""
    return value.replace(SLASH_SENTINEL, "/")


DbDep = Annotated[Database, Depends(get_db)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
ClockDep = Annotated[Clock, Depends(get_clock)]
ActorDep = Annotated[Actor, Depends(get_actor)]
BodyDep = Annotated[Any, Depends(json_body)]
