"""``Idempotency-Key`` on the Scale API: replay the first response of a repeated request.

The middleware runs inside ``api.limits.BodyLimitMiddleware``, so the body it reads is already
bounded: by ``max_body_bytes``, or ``max_upload_bytes`` on an upload. It keeps no limit of its
own. The body is hashed as it arrives and spooled (in memory up to ``SPOOL_MEMORY_BYTES``, then
in a temporary file), so a keyed upload costs no more memory than one without a key, and it is
then handed to the route as it came. Refusals (a malformed key, a key in use or used for
another request) are domain errors answered through ``api.errors.domain_response``.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable
from typing import IO, Any, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from steelyard.api.auth import Credential, authenticate
from steelyard.api.errors import domain_response
from steelyard.db.engine import Database
from steelyard.errors import SteelyardError
from steelyard.idempotency import service

T = TypeVar("T")

HEADER = b"idempotency-key"
METHODS = ("POST", "PUT", "PATCH", "DELETE")
#: A body up to this size stays in memory; a larger one (an upload) goes to a temporary file.
SPOOL_MEMORY_BYTES = 1024 * 1024
#: The size of the pieces a spooled body is handed back to the route in.
_REPLAY_CHUNK = 64 * 1024


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = _header(scope, HEADER) if scope["type"] == "http" else None
        if key is None or scope["method"] not in METHODS or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        try:
            # Before the body is read: a key or path that cannot be stored is refused at once.
            service.check_request(key, scope["path"])
        except SteelyardError as exc:
            await domain_response(Request(scope), exc)(scope, receive, send)
            return
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES) as spool:
            body = _Body(spool)
            if not await body.read(receive):
                return  # the client went away mid-body: there is nobody to answer
            await self._keyed(scope, receive, send, key, body)

    async def _keyed(
        self, scope: Scope, receive: Receive, send: Send, key: str, body: _Body
    ) -> None:
        request = Request(scope)
        try:
            # /v1 takes API keys; the route finds this caller already resolved.
            actor = await authenticate(request, Credential.API_KEY)
            assert actor is not None  # an API key route always resolves a caller
        except SteelyardError:
            # No valid key: let the route answer its usual 401.
            await self.app(scope, body.replay(receive), send)
            return
        db: Database = scope["app"].state.db
        now = scope["app"].state.clock.now()

        def _begin() -> service.Replay | str:
            with db.unit_of_work() as session:
                return service.begin(
                    session,
                    actor,
                    key=key,
                    method=scope["method"],
                    path=scope["path"],
                    request_hash=body.digest,
                    now=now,
                )

        try:
            outcome = await run_in_threadpool(_begin)
        except SteelyardError as exc:
            await domain_response(request, exc)(scope, receive, send)
            return
        if isinstance(outcome, service.Replay):
            replay = Response(
                outcome.body,
                outcome.status_code,
                headers={"idempotent-replayed": "true"},
                media_type=outcome.content_type or "application/json",
            )
            await replay(scope, receive, send)
            return

        # The response is held back until it is stored: a client that got it and retried at
        # once must find the key finished, not still "being processed".
        messages: list[Message] = []

        async def capture(message: Message) -> None:
            messages.append(message)

        status, content_type, chunks = 500, None, []
        try:
            await self.app(scope, body.replay(receive), capture)
            for message in messages:
                if message["type"] == "http.response.start":
                    status = message["status"]
                    for name, value in message.get("headers", []):
                        if name.lower() == b"content-type":
                            content_type = value.decode("latin-1")
                elif message["type"] == "http.response.body":
                    chunks.append(message.get("body", b""))
        finally:

            def _finish() -> None:
                with db.unit_of_work() as session:
                    service.finish(
                        session,
                        outcome,
                        status_code=status,
                        content_type=content_type,
                        body=b"".join(chunks),
                    )

            await run_in_threadpool(_finish)
        for message in messages:
            await send(message)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return str(value.decode("latin-1").strip())
    return None


class _Body:
    """A request body read whole, hashed, and spooled so that it can be handed on."""

    def __init__(self, file: IO[bytes]) -> None:
        self.file = file
        self.digest = ""

    def _on_disk(self) -> bool:
        return bool(getattr(self.file, "_rolled", True))

    async def _io(self, fn: Callable[..., T], *args: Any) -> T:
        # File I/O off the event loop once the body has gone to disk (as Starlette's uploads).
        return await run_in_threadpool(fn, *args) if self._on_disk() else fn(*args)

    async def read(self, receive: Receive) -> bool:
        """Read the body from ``receive``; False if the client disconnected first. A body over
        its limit never finishes: ``BodyLimitMiddleware`` answers 413 and raises through here.
        """
        digest = hashlib.sha256()
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return False
            chunk = message.get("body", b"")
            digest.update(chunk)
            await self._io(self.file.write, chunk)
            if not message.get("more_body", False):
                break
        self.digest = digest.hexdigest()
        await self._io(self.file.seek, 0)
        return True

    def replay(self, receive: Receive) -> Receive:
        """The body again, in pieces; then the connection's own ``receive`` (a disconnect)."""
        done = False

        async def replayed() -> Message:
            nonlocal done
            if done:
                return await receive()
            chunk = await self._io(self.file.read, _REPLAY_CHUNK)
            # A short piece is the last (an empty one after a body of whole pieces).
            done = len(chunk) < _REPLAY_CHUNK
            return {"type": "http.request", "body": chunk, "more_body": not done}

        return replayed
