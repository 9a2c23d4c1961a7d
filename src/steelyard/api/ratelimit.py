"""Rate limits at the edge: refuse with 429 before authentication, body reading or routing.

Buckets (limits per minute from settings; ``0`` turns one off):

- ``a:<address>`` every request from one client address (an IPv6 client counts by its /64,
  which one subscriber usually holds whole);
- ``k:<hash>`` every request made with one credential (an API key, or a worker's session
  token), per credential rather than per organization: counted before the caller is looked up,
  so a flood of made-up keys costs no query, and one runaway script does not throttle the
  organization's other keys. Only a hash of the credential is kept;
- ``l:<address>`` every request to a route that checks a password (``PASSWORD_PATHS``: sign-in,
  password change, accepting an invitation with a password) per address, counted exactly in
  the shared table. Other ``/api/auth`` routes (sign-out, sessions) are ordinary calls.

The address is the TCP peer's, or the one ``X-Forwarded-For`` names when the peer is a trusted
proxy (``STEELYARD_TRUSTED_PROXIES``, applied by the proxy-headers middleware outside this one).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import ipaddress
from functools import lru_cache

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from steelyard.api import transactions
from steelyard.api.errors import domain_response
from steelyard.config import Settings
from steelyard.errors import RateLimited
from steelyard.ratelimit.shared import SharedLimiter
from steelyard.ratelimit.window import Check, Verdict

#: Routes that check a password: the password-guessing surface.
PASSWORD_PATHS = frozenset({"/api/auth/login", "/api/auth/password", "/api/invitations/accept"})

_MESSAGES = {
    "a": "Too many requests from this address",
    "k": "Too many requests with this credential",
    "l": "Too many sign-in attempts from this address",
}


class RateLimitMiddleware:
    def __init__(self, app: ASGIApp, *, limiter: SharedLimiter, settings: Settings) -> None:
        self.app = app
        self.limiter = limiter
        self.per_address = settings.rate_limit_per_address
        self.per_key = settings.rate_limit_per_key
        self.login_per_address = settings.login_rate_limit_per_address

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        address = client_address(scope.get("client"))
        checks = []
        if self.per_address:
            checks.append(Check("a:" + address, self.per_address))
        if self.per_key:
            credential = credential_hash(scope)
            if credential is not None:
                checks.append(Check("k:" + credential, self.per_key))
        login = bool(self.login_per_address) and scope["path"].rstrip("/") in PASSWORD_PATHS
        if login:
            # Asked here first (no I/O): once this process knows the address is over, a flood
            # of sign-ins is refused without touching the database.
            checks.append(Check("l:" + address, self.login_per_address, record=False))
        verdict = self.limiter.check(checks)
        if verdict.allowed and login:
            verdict = await transactions.write(
                self.limiter.db, self.limiter.take_exact, "l:" + address, self.login_per_address
            )
        if verdict.allowed:
            await self.app(scope, receive, send)
            return
        await _refuse(verdict)(scope, receive, send)


def _refuse(verdict: Verdict) -> ASGIApp:
    seconds = RateLimited("", retry_after=verdict.retry_after).retry_after
    message = f"{_MESSAGES[verdict.bucket[0]]}; try again in {seconds} s."
    exc = RateLimited(message, retry_after=verdict.retry_after)

    async def respond(scope: Scope, receive: Receive, send: Send) -> None:
        await domain_response(Request(scope), exc)(scope, receive, send)

    return respond


@lru_cache(maxsize=4096)
def _bucket_of(host: str) -> str:
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def client_address(client: tuple[str, int] | None) -> str:
    """The bucket name of a client address."""
    return _bucket_of(client[0]) if client else "unknown"


def credential_hash(scope: Scope) -> str | None:
    """A stable name for the credential in ``Authorization``, whether or not it is valid."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            known = _hashes.get(value)
            if known is None:
                if len(_hashes) >= _HASHES_KEPT:
                    _hashes.clear()
                known = _hashes[value] = _hash_of(value)
            return known or None
    return None


#: Authorization header → its bucket name: the same few keys call again and again.
_hashes: dict[bytes, str] = {}
_HASHES_KEPT = 10_000


def _hash_of(header: bytes) -> str:
    """Basic carries the key as the username (the password part is ignored by authentication,
    so it must not make a new bucket); Bearer carries a key or a session token."""
    scheme, _, rest = header.strip().partition(b" ")
    secret = rest.strip()
    if scheme.lower() == b"basic":
        with contextlib.suppress(binascii.Error, ValueError):
            secret = base64.b64decode(secret, validate=True).partition(b":")[0]
    return hashlib.sha256(secret).hexdigest()[:32] if secret else ""
