"""One limit on every request body, enforced before anything reads it.

``BodyLimitMiddleware`` gives each route the same ceiling (``max_body_bytes``; file uploads
``max_upload_bytes`` plus room for the multipart framing), whether the handler reads the body
itself, through a pydantic model or not at all:

- a declared ``Content-Length`` over the limit is answered ``413`` at once, before a byte of the
  body is read (the server then discards what the client still sends);
- a body without a length (``Transfer-Encoding: chunked``) is counted as it is received, and
  ``413`` goes out as soon as the count passes the limit, without buffering the rest.

The refusal is the domain error ``TooLarge``, answered through the one error mapping
(``api.errors.domain_response``) so ``/v1``/``/v2`` and ``/api`` each get their own shape. On a
request with a valid length the cost is one scan of the headers and an integer comparison.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from steelyard.api.errors import domain_response
from steelyard.errors import TooLarge

#: Room for the multipart framing and the small text fields around an uploaded file.
FORM_OVERHEAD = 256 * 1024
#: Routes that take a multipart file upload: they get ``max_upload_bytes``, not the body limit.
UPLOAD_PATHS = ("/v1/files/upload",)


class _Refused(Exception):
    """Raised into the application from ``receive`` once the 413 has been sent."""


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int, max_upload_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.upload_limits: Mapping[str, int] = dict.fromkeys(
            UPLOAD_PATHS, max_upload_bytes + FORM_OVERHEAD
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.upload_limits.get(scope["path"], self.max_body_bytes)
        declared = _declared_length(scope)
        if declared is not None:
            # HTTP/1.1 framing delivers exactly the declared bytes: nothing more to count.
            if declared > limit:
                await _refusal(scope, limit)(scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return
        await _Counted(self.app, limit)(scope, receive, send)


def _declared_length(scope: Scope) -> int | None:
    """``Content-Length`` when it alone frames the body; None when the body must be counted
    (no length, a chunked body, or a length that is not a plain number)."""
    length: int | None = None
    for name, value in scope["headers"]:
        if name == b"content-length":
            if not value.isdigit():
                return None
            length = int(value)
        elif name == b"transfer-encoding":
            return None
    return length


def _refusal(scope: Scope, limit: int) -> ASGIApp:
    if scope["path"] in UPLOAD_PATHS:
        exc = TooLarge(f"The file is larger than {limit - FORM_OVERHEAD} bytes.", field="file")
    else:
        exc = TooLarge(f"The request body is larger than {limit} bytes.", field="body")
    return domain_response(Request(scope), exc)


class _Counted:
    """One request whose body is counted as it arrives."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit
        self.seen = 0
        self.started = False
        self.refused = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def counted_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                self.seen += len(message.get("body", b""))
                if self.seen > self.limit and not self.refused:
                    self.refused = True
                    if not self.started:
                        await _refusal(scope, self.limit)(scope, receive, send)
                    raise _Refused
            return message

        async def guarded_send(message: Message) -> None:
            # Once refused, whatever the application answers on its way out is dropped.
            if self.refused:
                return
            if message["type"] == "http.response.start":
                self.started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except* _Refused:
            # Also when it comes back inside an exception group (a task group read the body).
            pass
