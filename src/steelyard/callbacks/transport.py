"""Outgoing HTTP that connects only to addresses the SSRF rule allows.

``urls.check_url`` looks a host up before a request, but the HTTP client then looks it up again
to connect; a name whose DNS answers change between the two (DNS rebinding) would pass the
check with a public address and be dialled at a private one. Here the address is checked where
the connection is made: the backend resolves the host once (through ``urls.lookup``, the DNS
seam), refuses the connection if any address is not public (``callbacks.addresses``), and
dials the checked address itself.
TLS still verifies the certificate for the host name (httpcore passes it as SNI).

Requests through a proxy from the environment are the proxy's to resolve; they keep httpx's
own transport.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

from steelyard.callbacks import urls


class TargetRefused(httpcore.ConnectError):
    """The host resolves to an address this server does not call. Retrying cannot help;
    httpx raises it as the ``__cause__`` of its ``ConnectError`` (see ``refused_at_connect``)."""


def refused_at_connect(exc: BaseException) -> bool:
    """Whether ``exc`` (an httpx error) comes from ``TargetRefused``."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, TargetRefused):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class _CheckedBackend(httpcore.SyncBackend):
    def __init__(self, policy: urls.TargetPolicy) -> None:
        self.policy = policy

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        if self.policy.allow_private:
            return super().connect_tcp(host, port, timeout, local_address, socket_options)
        try:
            addresses = urls.lookup(host, port)
        except (UnicodeError, OSError) as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        if not addresses:
            raise httpcore.ConnectError(f"cannot resolve {host}: no addresses")
        if any(urls.forbidden(ipaddress.ip_address(a)) for a in addresses):
            raise TargetRefused(
                f"{host} resolves to an address that is not public (loopback, private, shared, "
                "link-local or reserved); this server only calls public addresses"
            )
        error: httpcore.ConnectError | None = None
        for address in addresses:
            try:
                return super().connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:
                error = exc
        assert error is not None
        raise error


def checked_transport(policy: urls.TargetPolicy, **options: Any) -> httpx.HTTPTransport:
    """An ``httpx.HTTPTransport`` (same options) whose connections go through the check, by
    ``policy`` (the caller's, from its settings: see ``urls.TargetPolicy``).

    httpx has no parameter for httpcore's network backend, so it is set on the pool httpx
    built; ``tests/callbacks/test_transport.py`` fails if a new httpx moves it.
    """
    transport = httpx.HTTPTransport(**options)
    pool = transport._pool
    if type(pool) is httpcore.ConnectionPool and hasattr(pool, "_network_backend"):
        pool._network_backend = _CheckedBackend(policy)
    return transport
