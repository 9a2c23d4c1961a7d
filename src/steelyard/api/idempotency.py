"""``Idempotency-Key`` on the Scale API: replay the first response of a repeated request."""

from __future__ import annotations

import hashlib

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from steelyard.api.auth import Credential, authenticate
from steelyard.db.engine import Database
from steelyard.errors import SteelyardError
from steelyard.idempotency import service

HEADER = b"idempotency-key"
METHODS = ("POST", "PUT", "PATCH", "DELETE")


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = _header(scope, HEADER) if scope["type"] == "http" else None
        if key is None or scope["method"] not in METHODS or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        limit: int = scope["app"].state.settings.max_body_bytes
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            # Too large to keep for a replay (e.g. a file upload): served without the key.
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive, limit)
        if body is None:
            response = JSONResponse(
                {"status_code": 413, "error": f"The request body is larger than {limit} bytes."},
                413,
            )
            await response(scope, receive, send)
            return
        request = Request(scope)
        try:
            # /v1 takes API keys; the route finds this caller already resolved.
            actor = await authenticate(request, Credential.API_KEY)
            assert actor is not None  # an API key route always resolves a caller
        except SteelyardError:
            # No valid key: let the route answer its usual 401.
            await self.app(scope, _replay_receive(body), send)
            return
        db: Database = scope["app"].state.db
        now = scope["app"].state.clock.now()
        digest = hashlib.sha256(body).hexdigest()

        def _begin() -> service.Replay | str:
            with db.unit_of_work() as session:
                return service.begin(
                    session,
                    actor,
                    key=key,
                    method=scope["method"],
                    path=scope["path"],
                    request_hash=digest,
                    now=now,
                )

        try:
            outcome = await run_in_threadpool(_begin)
        except SteelyardError as exc:
            status = 409 if exc.code == "duplicate" else 400
            response = JSONResponse(
                {"status_code": status, "error": exc.message, "field": exc.field}, status
            )
            await response(scope, receive, send)
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
            await self.app(scope, _replay_receive(body), capture)
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


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay_receive(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    return receive
