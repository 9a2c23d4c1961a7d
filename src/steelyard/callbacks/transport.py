"""Outgoing HTTP that connects only to addresses the SSRF rule allows.

``urls.check_url`` looks a host up before a request, but the HTTP client then looks it up again
to connect; a name whose DNS answers change between the two (DNS rebinding) would pass the
check with a public address and be dialled at a private one. Here the address is checked where
the connection is made: the backend resolves the host once, refuses the connection if any
address is private, loopback, link-local or reserved, and dials the checked address itself.
TLS still verifies the certificate for the host name (httpcore passes it as SNI).

Requests through a proxy from the environment are the proxy's to resolve; they keep httpx's
own transport.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

from steelyard.callbacks import urls


class _CheckedBackend(httpcore.SyncBackend):
    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        if urls.private_targets_allowed():
            return super().connect_tcp(host, port, timeout, local_address, socket_options)
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError, OSError) as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        addresses = list(dict.fromkeys(str(info[4][0]).split("%")[0] for info in infos))
        if not addresses or any(urls.forbidden(ipaddress.ip_address(a)) for a in addresses):
            raise httpcore.ConnectError(
                f"{host} resolves to a loopback or private address; this server only calls "
                "public addresses"
            )
        error: httpcore.ConnectError | None = None
        for address in addresses:
            try:
                return super().connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:
                error = exc
        assert error is not None
        raise error


def checked_transport(**options: Any) -> httpx.HTTPTransport:
    """An ``httpx.HTTPTransport`` (same options) whose connections go through the check.

    httpx has no parameter for httpcore's network backend, so it is set on the pool httpx
    built; ``tests/callbacks/test_transport.py`` fails if a new httpx moves it.
    """
    transport = httpx.HTTPTransport(**options)
    pool = transport._pool
    if type(pool) is httpcore.ConnectionPool and hasattr(pool, "_network_backend"):
        pool._network_backend = _CheckedBackend()
    return transport
