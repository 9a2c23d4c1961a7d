"""One authentication path for every route.

Each route declares the credential it takes by the router it is built on
(``credential_router(Credential.API_KEY)``, ...): that router's route class authenticates before
FastAPI reads the body or solves a dependency, through ``authenticate``, the only code that
reads ``Authorization``.
Handlers get the caller from what that resolved: ``ActorDep``, or ``actor_of(request)`` on the
hot paths that skip dependency solving. ``route_table(app)`` lists every route with its
declaration; the tests walk it (``tests/api/test_route_auth.py``).

Actors are cached per process (a hit answers on the event loop; concurrent misses share one
lookup in the thread pool). A cache entry lives ``TTL`` seconds at most, and a session's no
longer than the session itself (``Actor.expires_at``, against the app's clock). Revocation does
not wait for either: whenever a credential row changes in the database, by whatever means,
``accounts.auth_epoch`` tells every process, and the cache is emptied before the next request
is authenticated.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Callable, Coroutine, Hashable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, ClassVar

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.concurrency import run_in_threadpool
from starlette.routing import BaseRoute, Mount

from steelyard.accounts import auth_epoch
from steelyard.accounts import service as accounts
from steelyard.accounts.schemas import Actor
from steelyard.clock import Clock
from steelyard.db.engine import Database
from steelyard.errors import Forbidden, Unauthorized
from steelyard.files import service as files


class Credential(StrEnum):
    #: The Scale API: an API key, as HTTP Basic with the key as username, or Bearer.
    API_KEY = "api_key"
    #: The worker API: ``Authorization: Bearer <token from POST /api/auth/login>``.
    SESSION = "session"
    #: A file download: a valid signed link (``expires`` + ``sig``) for the path's ``file_id``,
    #: else an API key. Browsers fetch the links with no credentials at all.
    SIGNED_LINK = "signed_link"
    #: Reports for operators and customers: the organization's API key (Basic or Bearer, as on
    #: ``/v1``) or the session token of a manager, admin or owner. Any other role's session is
    #: refused (403): an annotator must not read the organization's reports.
    OPERATOR = "operator"
    #: No credential (sign-in, health, the front page).
    PUBLIC = "public"


MISSING_KEY = "Please provide a valid API key: HTTP Basic with the key as username, or Bearer."
SESSION_ON_SCALE = "The Scale API takes an API key (live_... or test_...), not a session token."
MISSING_SESSION = "Sign in first: send Authorization: Bearer <token from POST /api/auth/login>."
KEY_ON_SESSION = (
    "This API takes a session token (Authorization: Bearer <token from POST /api/auth/login>), "
    "not an API key."
)
BAD_LINK = "This file link has expired or its signature is invalid."
MISSING_OPERATOR = (
    "Please provide the organization's API key (HTTP Basic with the key as username, or Bearer) "
    "or an operator's session token (Bearer, from POST /api/auth/login)."
)
NOT_OPERATOR = (
    "This takes the organization's API key or the session of a manager, admin or owner; "
    "your role is {role}."
)

#: Where ``authenticate`` leaves what it resolved: ``(credential, actor or None)``.
_RESOLVED = "steelyard.auth"


# --- declaring ------------------------------------------------------------------------------


class AuthRoute(APIRoute):
    """A route that authenticates its ``credential`` before anything else runs."""

    credential: ClassVar[Credential]

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        credential = self.credential
        if credential is Credential.PUBLIC:
            return handler

        async def authenticated(request: Request) -> Response:
            await authenticate(request, credential)
            return await handler(request)

        return authenticated


class ApiKeyRoute(AuthRoute):
    credential = Credential.API_KEY


class SessionRoute(AuthRoute):
    credential = Credential.SESSION


class SignedLinkRoute(AuthRoute):
    credential = Credential.SIGNED_LINK


class OperatorRoute(AuthRoute):
    credential = Credential.OPERATOR


class PublicRoute(AuthRoute):
    credential = Credential.PUBLIC


_ROUTE_CLASSES: dict[Credential, type[AuthRoute]] = {
    cls.credential: cls
    for cls in (ApiKeyRoute, SessionRoute, SignedLinkRoute, OperatorRoute, PublicRoute)
}


def credential_router(credential: Credential, **options: Any) -> APIRouter:
    """An ``APIRouter`` every route of which takes ``credential``: where a route says it."""
    return APIRouter(route_class=_ROUTE_CLASSES[credential], **options)


@dataclass(frozen=True)
class RouteEntry:
    path: str
    methods: frozenset[str]
    #: None: not declared (a plain ``APIRoute``, or a framework route such as ``/openapi.json``).
    credential: Credential | None
    route: Any


def route_table(app: FastAPI) -> list[RouteEntry]:
    """Every route the app serves, mounted ones included, with the credential it declares."""
    return list(_walk(app.routes, ""))


def _walk(routes: list[BaseRoute], prefix: str) -> Iterator[RouteEntry]:
    for context in iter_route_contexts(routes):
        original = context.original_route
        if isinstance(original, Mount):
            inner = getattr(original, "routes", None) or []
            if inner:
                yield from _walk(list(inner), prefix + str(original.path))
                continue
        credential = original.credential if isinstance(original, AuthRoute) else None
        yield RouteEntry(
            path=prefix + str(context.path),
            methods=frozenset(context.methods or ()),
            credential=credential,
            route=context,
        )


# --- authenticating -------------------------------------------------------------------------


async def authenticate(request: Request, credential: Credential) -> Actor | None:
    """The caller, by ``credential``'s rules; None for a public route or a signed link.

    Raises ``Unauthorized`` (401) for a missing, unknown or revoked credential, or one of the
    wrong kind: an API key is not a session and a session token is not an API key; and
    ``Forbidden`` (403) for the session of a role an ``OPERATOR`` route does not take.
    """
    resolved = request.scope.get(_RESOLVED)
    if resolved is not None and resolved[0] is credential:
        return resolved[1]  # type: ignore[no-any-return]
    actor = await _resolve(request, credential)
    request.scope[_RESOLVED] = (credential, actor)
    return actor


async def _resolve(request: Request, credential: Credential) -> Actor | None:
    if credential is Credential.PUBLIC:
        return None
    if credential is Credential.SIGNED_LINK:
        if _signed_link(request):
            return None
        credential = Credential.API_KEY
    given = _credentials(request)
    if credential is Credential.OPERATOR:
        return await _operator(request, given)
    if credential is Credential.API_KEY:
        if given is None:
            raise Unauthorized(MISSING_KEY)
        scheme, secret = given
        if scheme == "bearer" and not _looks_like_key(secret):
            raise Unauthorized(SESSION_ON_SCALE)
        kind = "api_key"
    else:
        if given is None:
            raise Unauthorized(MISSING_SESSION)
        scheme, secret = given
        if scheme != "bearer" or _looks_like_key(secret):
            raise Unauthorized(KEY_ON_SESSION)
        kind = "user"
    return await authenticator(request).actor(kind, secret)


async def _operator(request: Request, given: tuple[str, str] | None) -> Actor:
    """An API key (Basic, or Bearer with a key's prefix) or an operator's session token."""
    if given is None:
        raise Unauthorized(MISSING_OPERATOR)
    scheme, secret = given
    kind = "api_key" if scheme == "basic" or _looks_like_key(secret) else "user"
    actor = await authenticator(request).actor(kind, secret)
    if not actor.is_customer:
        raise Forbidden(NOT_OPERATOR.format(role=actor.role))
    return actor


def _credentials(request: Request) -> tuple[str, str] | None:
    """(scheme, secret) from ``Authorization``: Basic with the key as username, or Bearer."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    value = value.strip()
    scheme = scheme.lower()
    if scheme == "basic" and value:
        try:
            decoded = base64.b64decode(value).decode()
        except (ValueError, UnicodeDecodeError):
            return None
        username = decoded.partition(":")[0]
        return ("basic", username) if username else None
    if scheme == "bearer" and value:
        return ("bearer", value)
    return None


def _looks_like_key(secret: str) -> bool:
    return secret.startswith(("live_", "test_"))


def _signed_link(request: Request) -> bool:
    """A valid ``expires``+``sig`` for the path's file. An invalid one is refused with 403
    (a 401 would make a browser ask for a password for an ``<img>``) unless an API key came
    with it."""
    params = request.query_params
    sig, expires = params.get("sig"), params.get("expires")
    if sig is None and expires is None:
        return False
    state = request.app.state
    file_id = str(request.path_params.get("file_id", ""))
    if files.verify_signature(
        file_id, expires or "", sig or "", state.settings.secret_key, state.clock.now()
    ):
        return True
    if "authorization" not in request.headers:
        raise Forbidden(BAD_LINK, field="sig")
    return False


# --- what handlers see ----------------------------------------------------------------------


def actor_of(request: Request) -> Actor:
    """The caller the route's credential resolved to (for handlers that skip dependencies)."""
    resolved = request.scope.get(_RESOLVED)
    if resolved is None or resolved[1] is None:
        raise RuntimeError(f"{request.url.path} resolved no caller: is its route declared?")
    return resolved[1]  # type: ignore[no-any-return]


def link_or_actor(request: Request) -> Actor | None:
    """On a ``SIGNED_LINK`` route: None when a valid signed link let the request in."""
    resolved = request.scope.get(_RESOLVED)
    if resolved is None or resolved[0] is not Credential.SIGNED_LINK:
        raise RuntimeError(f"{request.url.path} is not a signed-link route")
    return resolved[1]  # type: ignore[no-any-return]


# ``async def``: FastAPI runs a plain ``def`` dependency in the thread pool.
async def _actor_dependency(request: Request) -> Actor:
    return actor_of(request)


async def _link_or_actor_dependency(request: Request) -> Actor | None:
    return link_or_actor(request)


ActorDep = Annotated[Actor, Depends(_actor_dependency)]
LinkOrActorDep = Annotated[Actor | None, Depends(_link_or_actor_dependency)]


# --- the cache ------------------------------------------------------------------------------


class Authenticator:
    """Secret → actor, per process; emptied whenever ``auth_epoch`` reports a change, and never
    answering with a session past its expiry."""

    TTL = 10.0

    def __init__(self, db: Database, clock: Clock, *, ttl: float = TTL, size: int = 10_000) -> None:
        self._db, self._clock = db, clock
        self.ttl, self.size = ttl, size
        self.watcher = auth_epoch.watch(db.engine)
        self._items: dict[str, tuple[float, Actor]] = {}
        # Not asked yet: the database may not exist or be migrated before the app starts.
        self._seen: Hashable = object()
        #: Lookups in flight. When an entry expires under load, every request holding that
        #: secret misses at once; they share one lookup instead of each sending a thread.
        self._pending: dict[tuple[str, str], asyncio.Future[Actor]] = {}

    def start(self) -> None:
        self.watcher.start()

    def close(self) -> None:
        self.watcher.close()

    def _epoch(self) -> Hashable:
        token = self.watcher.token()
        if token != self._seen:
            self._items.clear()
            self._seen = token
        return token

    async def actor(self, kind: str, secret: str) -> Actor:
        """The actor behind ``secret`` (``kind``: "api_key" or "user"). A hit answers here, on
        the event loop; a miss queries the database in the thread pool."""
        epoch = self._epoch()
        hit = self._items.get(secret)
        if (
            hit is not None
            and hit[0] > time.monotonic()
            and hit[1].kind == kind
            and (hit[1].expires_at is None or hit[1].expires_at > self._clock.now())
        ):
            return hit[1]
        loop = asyncio.get_running_loop()
        key = (kind, secret)
        pending = self._pending.get(key)
        if pending is not None and pending.get_loop() is loop:
            return await asyncio.shield(pending)
        future: asyncio.Future[Actor] = loop.create_future()
        self._pending[key] = future
        try:
            actor = await run_in_threadpool(self._lookup, kind, secret)
        except BaseException as exc:
            if isinstance(exc, Exception):
                future.set_exception(exc)
                future.exception()  # retrieved here: nobody else may be waiting for it
            else:
                future.cancel()
            raise
        finally:
            if self._pending.get(key) is future:
                del self._pending[key]
        # Kept only if nothing changed while it was looked up: the lookup may have read the
        # credential just before a revocation committed.
        if self._epoch() == epoch:
            if len(self._items) >= self.size:
                self._items.clear()
            self._items[secret] = (time.monotonic() + self.ttl, actor)
        future.set_result(actor)
        return actor

    def _lookup(self, kind: str, secret: str) -> Actor:
        with self._db.unit_of_work(write=False) as session:
            if kind == "api_key":
                return accounts.authenticate_api_key(session, secret)
            return accounts.authenticate_token(session, secret, now=self._clock.now())


def authenticator(request: Request) -> Authenticator:
    state = request.app.state
    auth: Authenticator | None = getattr(state, "auth", None)
    if auth is None:
        # An app assembled by hand (some tests) rather than by ``create_app``.
        auth = state.auth = Authenticator(state.db, state.clock)
    return auth
