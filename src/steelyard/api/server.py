"""How ``steelyard serve`` runs uvicorn: timeouts that bound slow clients.

uvicorn bounds the idle time between requests (``timeout_keep_alive``) but nothing before a
request is parsed: a connection that says nothing, or sends its request line and headers a byte
at a time, is held open for ever (a slow-loris), and with enough of them the process runs out
of file descriptors. ``BoundedHttpToolsProtocol`` adds, per connection:

- a head deadline: the request line and headers must be complete within
  ``request_head_timeout_seconds`` of connecting (for a first request) or of their first bytes
  (on a kept-alive connection); otherwise ``408`` and the connection is closed;
- a head size cap, ``max_request_head_bytes``: larger heads are answered ``431`` (httptools
  itself buffers headers without a limit);
- a body idle timeout: ``request_body_timeout_seconds`` at most between two reads of a body
  (as nginx's ``client_body_timeout``); the connection is closed and the handler sees the client
  disconnect. Time spent while uvicorn itself has paused reading is not counted.

Not bounded here: a client that reads its response slowly (uvicorn waits for the socket to
drain), and the number of connections one address opens. A reverse proxy bounds those
(``send_timeout``, ``limit_conn``; see docs/deploy.md).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from steelyard.config import Settings

_IDLE, _HEAD, _BODY = 0, 1, 2


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a head deadline, a head size cap and a body timeout.

    The limits are class attributes set by ``configure`` (uvicorn builds protocols itself, and
    in ``--workers`` mode in other processes, which configure from the same environment).
    """

    head_timeout: float = 10.0
    body_timeout: float = 30.0
    max_head_bytes: int = 64 * 1024

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._phase = _IDLE
        self._head_bytes = 0
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # Waiting for a first request: uvicorn arms no timer until a response has gone out.
        self._phase = _HEAD
        self._arm(self.head_timeout, self._head_expired)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.transport.is_closing():
            self._cancel()
        elif self._phase == _HEAD:
            self._head_bytes += len(data)
            if self._head_bytes > self.max_head_bytes:
                self._refuse(
                    431, "Request Header Fields Too Large", "The request head is too large."
                )
            elif self._timer is None:
                self._arm(self.head_timeout, self._head_expired)
        elif self._phase == _BODY:
            self._arm(self.body_timeout, self._body_expired)
        else:
            self._cancel()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._phase = _HEAD
        self._head_bytes = 0

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._phase = _BODY
        self._cancel()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._phase = _IDLE

    def _arm(self, seconds: float, callback: Any) -> None:
        self._cancel()
        self._timer = self.loop.call_later(seconds, callback)

    def _cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _busy(self) -> bool:
        """A response is being produced (a pipelined request's head is arriving meanwhile)."""
        return self.cycle is not None and not self.cycle.response_complete

    def _head_expired(self) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        if self._busy():
            self._arm(self.head_timeout, self._head_expired)
            return
        self._refuse(408, "Request Timeout", "The request head did not arrive in time.")

    def _body_expired(self) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        if self.flow.read_paused:
            # uvicorn stopped reading (the handler is behind): not the client's delay.
            self._arm(self.body_timeout, self._body_expired)
            return
        self.transport.close()

    def _refuse(self, status: int, reason: str, message: str) -> None:
        self._cancel()
        self._phase = _IDLE
        body = message.encode()
        self.transport.write(
            b"HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\n"
            b"content-length: %d\r\nconnection: close\r\n\r\n%s"
            % (status, reason.encode(), len(body), body)
        )
        self.transport.close()


def configure(settings: Settings) -> None:
    """Set the per-connection limits of ``BoundedHttpToolsProtocol`` in this process."""
    BoundedHttpToolsProtocol.head_timeout = settings.request_head_timeout_seconds
    BoundedHttpToolsProtocol.body_timeout = settings.request_body_timeout_seconds
    BoundedHttpToolsProtocol.max_head_bytes = settings.max_request_head_bytes


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.run``/``uvicorn.Config`` that apply ``settings``."""
    configure(settings)
    return {
        "http": BoundedHttpToolsProtocol,
        "timeout_keep_alive": settings.keep_alive_timeout_seconds,
        "timeout_graceful_shutdown": settings.graceful_shutdown_seconds or None,
        "limit_concurrency": settings.max_concurrency or None,
        # Forwarding headers are the app's business (STEELYARD_TRUSTED_PROXIES, see
        # create_app); uvicorn's own would trust 127.0.0.1 (FORWARDED_ALLOW_IPS) whatever it says.
        "proxy_headers": False,
    }
