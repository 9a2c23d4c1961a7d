"""Which outgoing URLs we may call: no loopback, private, link-local or reserved targets.

A callback or import URL is customer input; without this check it would let a customer make the
server call its own admin ports or a cloud metadata service (SSRF). The check runs when the URL
is given (a clear 400) and again right before each request (DNS may have changed since).
"""

from __future__ import annotations

import ipaddress
import re
import socket
import time
from urllib.parse import urlsplit

from steelyard.errors import ValidationError

_EMAIL = re.compile(r"^[^@\s/:]+@[^@\s/:]+\.[^@\s/:]+$")

#: Set once at start from ``Settings.allow_private_callbacks`` (tests and private deployments).
_allow_private = False


def allow_private_targets(allow: bool) -> None:
    global _allow_private
    _allow_private = allow


def is_email(target: str) -> bool:
    return bool(_EMAIL.match(target))


def private_targets_allowed() -> bool:
    return _allow_private


def forbidden(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Loopback, private, link-local, multicast, reserved or unspecified (IPv4-mapped too)."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (
        ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


def check_url(url: str, *, field: str, resolve: bool = True) -> str:
    """Raise ``ValidationError`` naming ``field`` unless ``url`` is an http(s) URL to a public host.

    Names that do not resolve are let through when ``resolve`` finds nothing (the delivery will
    fail and retry); names that resolve to a forbidden address are refused.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError(f"'{field}' must be an http(s) URL or an email address.", field=field)
    if _allow_private:
        return url
    host = parts.hostname
    if host.lower() in ("localhost", "localhost.localdomain") or host.lower().endswith(
        ".localhost"
    ):
        raise _refused(field, host)
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        if forbidden(literal):
            raise _refused(field, host)
        return url
    if resolve:
        for address in resolve_host(host, parts.port or (443 if parts.scheme == "https" else 80)):
            if forbidden(ipaddress.ip_address(address)):
                raise _refused(field, host)
    return url


def check_callback_target(target: str, *, field: str) -> str:
    """A callback target is an http(s) URL or an email address."""
    if is_email(target):
        return target
    return check_url(target, field=field)


#: Seconds a lookup is reused. Tasks of one customer share a callback host, and a create must
#: not wait on DNS each time (nor hold the database's write lock while it does). A name that
#: does not resolve is let through (see ``check_url``) and remembered for less long.
DNS_TTL = 60.0
DNS_FAILURE_TTL = 10.0
_resolved: dict[tuple[str, int], tuple[float, list[str]]] = {}
_MAX_RESOLVED = 4096


def resolve_host(host: str, port: int) -> list[str]:
    key = (host.lower(), port)
    hit = _resolved.get(key)
    if hit is not None and hit[0] > time.monotonic():
        return hit[1]
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError, OSError):
        addresses, ttl = [], DNS_FAILURE_TTL
    else:
        addresses, ttl = sorted({str(info[4][0]).split("%")[0] for info in infos}), DNS_TTL
    if len(_resolved) >= _MAX_RESOLVED:
        _resolved.clear()
    _resolved[key] = (time.monotonic() + ttl, addresses)
    return addresses


def needs_lookup(target: str) -> bool:
    """True when checking ``target`` would wait on DNS now (a host name not looked up lately).

    Callers on the event loop use it to do that lookup in a thread first.
    """
    if _allow_private or is_email(target):
        return False
    try:
        parts = urlsplit(target)
        host, port = parts.hostname, parts.port
    except ValueError:
        return False
    if not host or parts.scheme not in ("http", "https"):
        return False
    try:
        ipaddress.ip_address(host)
        return False
    except ValueError:
        pass
    key = (host.lower(), port or (443 if parts.scheme == "https" else 80))
    hit = _resolved.get(key)
    return hit is None or hit[0] <= time.monotonic()


def look_up(target: str) -> None:
    """Resolve ``target``'s host now so that the check that follows finds it cached."""
    parts = urlsplit(target)
    if parts.hostname:
        resolve_host(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))


def _refused(field: str, host: str) -> ValidationError:
    return ValidationError(
        f"'{field}' points at '{host}', a loopback or private address; this server only calls "
        "public addresses (set STEELYARD_ALLOW_PRIVATE_CALLBACKS=1 to allow private ones).",
        field=field,
    )
