"""Which outgoing URLs we may call: http(s) to global unicast addresses only.

A callback or import URL is customer input; without this check it would let a customer make the
server call its own admin ports or a cloud metadata service (SSRF). The address rule is in
``callbacks.addresses``. The check runs when the URL is given (a clear 400), again right before
each request, and once more on the address actually dialled (``callbacks.transport``).

A host name's check needs its DNS answer, and DNS may take seconds to answer or never answer.
That wait must never happen inside a write transaction (on SQLite it would stall every writer).
So ``check_url`` and ``check_callback_target`` read the answer from a cache and never resolve
themselves unless asked to (``resolve=True``, for callers outside any transaction: a callback
delivery, a file import). A request resolves first, in a thread and for a bounded time, with
``callbacks.targets.prepare``; a name with no answer yet is let through and checked again when
the callback is sent.

Whether private addresses may be called is a ``TargetPolicy``, passed by the caller: each app
and each job runner reads its own from its ``Settings`` (``TargetPolicy.of``), so two apps in
one process (a test suite, an embedded server) can differ. There is no process-wide switch.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

from steelyard.callbacks.addresses import IPAddress
from steelyard.callbacks.addresses import forbidden as _forbidden
from steelyard.config import Settings
from steelyard.errors import ValidationError

_EMAIL = re.compile(r"^[^@\s/:]+@[^@\s/:]+\.[^@\s/:]+$")


@dataclass(frozen=True, slots=True)
class TargetPolicy:
    """Which addresses one app's (or job runner's) outgoing calls may reach."""

    #: Loopback, private and other non-public addresses too (tests, private deployments).
    allow_private: bool = False

    @classmethod
    def of(cls, settings: Settings) -> TargetPolicy:
        """The policy ``settings`` ask for (``STEELYARD_ALLOW_PRIVATE_CALLBACKS``)."""
        return cls(allow_private=settings.allow_private_callbacks)


#: Public addresses only: the default of every deployment.
PUBLIC_ONLY = TargetPolicy()


def is_email(target: str) -> bool:
    return bool(_EMAIL.match(target))


def forbidden(ip: IPAddress) -> bool:
    """Anything but a global unicast address (see ``callbacks.addresses``)."""
    return _forbidden(ip)


# --- resolving --------------------------------------------------------------------------------

#: ``(host, port) -> addresses``; raises ``OSError`` (``socket.gaierror``) when it cannot.
Resolver = Callable[[str, int], list[str]]


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]).split("%")[0] for info in infos))


_resolver: Resolver = system_resolver


@contextmanager
def use_resolver(resolver: Resolver) -> Iterator[None]:
    """The seam for DNS: every lookup here and in ``transport`` goes through ``resolver``
    inside the block (with the cache emptied before and after)."""
    global _resolver
    previous = _resolver
    _resolver = resolver
    _resolved.clear()
    try:
        yield
    finally:
        _resolver = previous
        _resolved.clear()


def lookup(host: str, port: int) -> list[str]:
    """A fresh answer (no cache): what ``transport`` dials. Raises ``OSError``/``UnicodeError``."""
    return _resolver(host, port)


#: Seconds an answer is reused. Tasks of one customer share a callback host, and a create must
#: not wait on DNS each time. A name that does not resolve is let through (see ``check_url``)
#: and remembered for less long.
DNS_TTL = 60.0
DNS_FAILURE_TTL = 10.0
_resolved: dict[tuple[str, int], tuple[float, list[str]]] = {}
_MAX_RESOLVED = 4096


def resolve_host(host: str, port: int) -> list[str]:
    """The addresses of ``host`` from the cache or, failing that, from DNS (waits)."""
    hit = cached_addresses(host, port)
    if hit is not None:
        return hit
    resolver = _resolver
    try:
        addresses, ttl = resolver(host, port), DNS_TTL
    except (OSError, UnicodeError):
        addresses, ttl = [], DNS_FAILURE_TTL
    if resolver is not _resolver:
        return addresses  # the seam changed while this lookup waited: not for the new cache
    if len(_resolved) >= _MAX_RESOLVED:
        _resolved.clear()
    _resolved[(host.lower(), port)] = (time.monotonic() + ttl, addresses)
    return addresses


def cached_addresses(host: str, port: int) -> list[str] | None:
    """The cached answer for ``host`` (``[]``: it did not resolve), or None if there is none."""
    hit = _resolved.get((host.lower(), port))
    if hit is None or hit[0] <= time.monotonic():
        return None
    return hit[1]


# --- checking ---------------------------------------------------------------------------------


def _host_and_port(url: str, field: str) -> tuple[str, int]:
    try:
        parts = urlsplit(url)
        scheme, host, port = parts.scheme, parts.hostname, parts.port
    except ValueError:  # a bad port or a broken IPv6 literal
        scheme, host, port = "", None, None
    if scheme not in ("http", "https") or not host:
        raise ValidationError(f"'{field}' must be an http(s) URL or an email address.", field=field)
    return host, port or (443 if scheme == "https" else 80)


def check_url(url: str, *, field: str, policy: TargetPolicy, resolve: bool = False) -> str:
    """Raise ``ValidationError`` naming ``field`` unless ``url`` is an http(s) URL to a host
    that ``policy`` lets us call (a public one, unless private ones are allowed).

    A host name is judged by its cached DNS answer; with ``resolve`` a missing answer is looked
    up now (never inside a transaction). A name with no answer (not looked up, or it did not
    resolve) is let through: the request will fail at connect, or be refused there.
    """
    host, port = _host_and_port(url, field)
    if policy.allow_private:
        return url
    lowered = host.lower()
    if lowered in ("localhost", "localhost.localdomain") or lowered.endswith(".localhost"):
        raise _refused(field, host)
    literal = _literal(host)
    if literal is not None:
        if forbidden(literal):
            raise _refused(field, host)
        return url
    addresses = resolve_host(host, port) if resolve else cached_addresses(host, port)
    if any(forbidden(ipaddress.ip_address(a)) for a in addresses or ()):
        raise _refused(field, host)
    return url


def check_callback_target(target: str, *, field: str, policy: TargetPolicy) -> str:
    """A callback target is an email address or an http(s) URL that ``check_url`` lets
    through. Reads the DNS cache only (see the module docstring)."""
    if is_email(target):
        return target
    return check_url(target, field=field, policy=policy)


def check_callback_form(target: str, *, field: str) -> str:
    """The form of a callback target alone: an email address or an http(s) URL with a host.

    What a service checks when it stores a target. Whether its address may be called depends
    on the app's policy and on DNS, so the edge judges that before the transaction
    (``callbacks.targets.prepare``), and delivery judges it again when it sends.
    """
    if not is_email(target):
        _host_and_port(target, field)
    return target


def lookup_needed(target: str, *, policy: TargetPolicy) -> tuple[str, int] | None:
    """The ``(host, port)`` that checking ``target`` would want looked up now (a host name with
    no fresh answer in the cache), else None."""
    if policy.allow_private or is_email(target):
        return None
    try:
        host, port = _host_and_port(target, "url")
    except ValidationError:
        return None
    if _literal(host) is not None or cached_addresses(host, port) is not None:
        return None
    return host, port


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _refused(field: str, host: str) -> ValidationError:
    return ValidationError(
        f"'{field}' points at '{host}', which is not a public address (loopback, private, "
        "shared, link-local, reserved or one that embeds such an address); this server only "
        "calls public addresses (set STEELYARD_ALLOW_PRIVATE_CALLBACKS=1 to allow others).",
        field=field,
    )
