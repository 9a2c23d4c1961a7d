"""Rate limits over HTTP: 429 with Retry-After, per address, per key, sign-in, across instances.

Each test serves its own app (strict limits) on the suite's database, and calls it from its own
loopback address (127.x.y.z), so that no other test's traffic counts in its buckets. Where
instances share counts through their synchronising threads, the tests wait for what each
instance has seen rather than sleep for a guess at how long that takes on a busy machine.
"""

from __future__ import annotations

import base64
import random
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from steelyard.api.app import create_app
from steelyard.api.ratelimit import (
    PASSWORD_PATHS,
    RateLimitMiddleware,
    client_address,
    credential_hash,
)
from steelyard.config import Settings
from steelyard.db.engine import Database
from steelyard.ratelimit.shared import SharedLimiter
from steelyard.ratelimit.window import Check
from tests.api.helpers import auth, make_worker, scale_error
from tests.api.serving import serving_app, steelyard_serve
from tests.conftest import Org


def _strict(settings: Settings, **limits: Any) -> Settings:
    base: dict[str, Any] = {
        "rate_limit_per_key": 0,
        "rate_limit_per_address": 0,
        "login_rate_limit_per_address": 0,
        "rate_limit_sync_seconds": 0.1,
    }
    return settings.model_copy(update={**base, **limits})


#: Longest wait for something a busy machine may be slow to do (a test fails after it).
PATIENCE = 30.0


def _app(settings: Settings) -> Any:
    return create_app(settings, run_jobs=False, migrate=False)


@contextmanager
def serving(settings: Settings) -> Iterator[str]:
    """An app of its own on the suite's database, served until the block ends; yields its URL."""
    with serving_app(_app(settings)) as url:
        yield url


def _limiter(app: Any) -> SharedLimiter:
    (limiter,) = [m.kwargs["limiter"] for m in app.user_middleware if m.cls is RateLimitMiddleware]
    return limiter  # type: ignore[no-any-return]


def _until_seen(limiter: SharedLimiter, bucket: str, count: int) -> None:
    """Wait until ``limiter`` counts at least ``count`` requests in ``bucket`` (as shared
    totals read back by its thread, or its own), asking without counting one more."""
    deadline = time.monotonic() + PATIENCE
    while limiter.check([Check(bucket, count, record=False)]).allowed:
        assert time.monotonic() < deadline, f"{bucket} never reached {count} in this instance"
        time.sleep(0.02)


def _until_closed(sock: socket.socket) -> bytes:
    sock.settimeout(PATIENCE)
    received = b""
    while chunk := sock.recv(4096):
        received += chunk
    return received


def _address() -> str:
    """A loopback address of this test's own (Linux routes all of 127/8 to lo)."""
    return f"127.{random.randint(1, 254)}.{random.randint(1, 254)}.{random.randint(2, 254)}"


@contextmanager
def calling(url: str, address: str) -> Iterator[httpx.Client]:
    transport = httpx.HTTPTransport(local_address=address)
    with httpx.Client(base_url=url, transport=transport, timeout=30) as client:
        yield client


def _retry_after(response: httpx.Response) -> int:
    seconds = int(response.headers["retry-after"])
    assert 1 <= seconds <= 120, seconds
    return seconds


def _login(client: httpx.Client, email: str = "", **headers: str) -> httpx.Response:
    """A wrong password (for a fresh unknown email unless one is given: accounts have their
    own throttle, which must not be what answers here)."""
    email = email or f"nobody-{uuid.uuid4().hex[:12]}@example.com"
    return client.post(
        "/api/auth/login", json={"email": email, "password": "not the password"}, headers=headers
    )


def test_a_login_flood_from_one_address_is_refused(
    settings: Settings, db: Database, org: Org
) -> None:
    """As probed: 150 wrong passwords in 24 s were all answered 401."""
    email = make_worker(db, org.org_id)
    attacker, neighbour = _address(), _address()
    with serving(_strict(settings, login_rate_limit_per_address=5)) as url:
        with calling(url, attacker) as client:
            statuses = [_login(client, email if i % 2 else "").status_code for i in range(30)]
            refused = _login(client, email)
        with calling(url, neighbour) as client:
            other = _login(client)
    assert statuses == [401] * 5 + [429] * 25
    assert refused.status_code == 429
    _retry_after(refused)
    error = refused.json()["error"]
    assert error["code"] == "rate_limited" and "from this address" in error["message"]
    assert other.status_code == 401  # another address has its own budget


def test_one_key_over_its_limit_leaves_the_other_keys_alone(settings: Settings, org: Org) -> None:
    with (
        serving(_strict(settings, rate_limit_per_key=5)) as url,
        calling(url, _address()) as client,
    ):
        statuses = [
            client.get("/v1/projects", auth=auth(org.live_key)).status_code for _ in range(8)
        ]
        refused = client.get("/v1/projects", auth=auth(org.live_key))
        other_key = client.get("/v1/projects", auth=auth(org.test_key))
        # The password half of Basic is not part of the key: it cannot open a new budget.
        same_key = client.get("/v1/projects", auth=httpx.BasicAuth(org.live_key, "x"))
    assert statuses == [200] * 5 + [429] * 3
    scale_error(refused, 429, "credential")
    _retry_after(refused)
    assert other_key.status_code == 200
    assert same_key.status_code == 429


def test_two_instances_share_the_login_budget(settings: Settings, org: Org) -> None:
    strict = _strict(settings, login_rate_limit_per_address=7)
    address = _address()
    with (
        serving(strict) as first,
        serving(strict) as second,
        calling(first, address) as a,
        calling(second, address) as b,
    ):
        statuses = [_login((a, b)[i % 2]).status_code for i in range(24)]
    assert statuses == [401] * 7 + [429] * 17, statuses  # refused on both instances


def test_two_instances_share_the_address_budget(settings: Settings, org: Org) -> None:
    strict = _strict(settings, rate_limit_per_address=20)
    address = _address()
    bucket = "a:" + address
    apps = _app(strict), _app(strict)
    with (
        serving_app(apps[0]) as first,
        serving_app(apps[1]) as second,
        calling(first, address) as a,
        calling(second, address) as b,
    ):
        on_first = [a.get("/v1/projects").status_code for _ in range(14)]
        # An instance reads back the buckets it has seen: once it has, and both have
        # synchronised (every 0.1 s here), each counts what the other admitted.
        first_on_second = b.get("/v1/projects").status_code
        for app in apps:
            _until_seen(_limiter(app), bucket, 15)
        on_second = [b.get("/v1/projects").status_code for _ in range(15)]
        _until_seen(_limiter(apps[0]), bucket, 20)
        back_on_first = a.get("/v1/projects").status_code
    assert on_first == [401] * 14 and first_on_second == 401
    assert on_second == [401] * 5 + [429] * 10
    assert back_on_first == 429


@pytest.mark.parametrize("trusted", ["", "127.0.0.0/8"])
def test_forwarded_for_counts_only_behind_a_trusted_proxy(
    settings: Settings, org: Org, trusted: str
) -> None:
    strict = _strict(settings, login_rate_limit_per_address=2, trusted_proxies=trusted)
    with serving(strict) as url, calling(url, _address()) as client:
        varied = [_login(client, **{"X-Forwarded-For": _address()}).status_code for _ in range(3)]
        forwarded = _address()
        same = [_login(client, **{"X-Forwarded-For": forwarded}).status_code for _ in range(3)]
    if trusted:
        assert varied == [401, 401, 401]  # three clients behind the proxy
        assert same == [401, 401, 429]
    else:
        # The header is anyone's to write: the peer's address is what counts.
        assert varied == [401, 401, 429]
        assert same == [429, 429, 429]


def test_limits_of_zero_add_no_middleware(settings: Settings) -> None:
    app = create_app(_strict(settings), run_jobs=False, migrate=False)
    assert RateLimitMiddleware not in [getattr(m, "cls", None) for m in app.user_middleware]


def test_only_routes_that_check_a_password_share_the_sign_in_budget(settings: Settings) -> None:
    app = create_app(settings, run_jobs=False, migrate=False)
    posts = {path for path, ops in app.openapi()["paths"].items() if "post" in ops}
    assert posts >= PASSWORD_PATHS  # a renamed route would escape the limit
    with (
        serving(_strict(settings, login_rate_limit_per_address=2)) as url,
        calling(url, _address()) as client,
    ):
        listing = [client.get("/api/auth/sessions").status_code for _ in range(4)]
        changes = [
            client.post(
                "/api/auth/password", json={"current_password": "a", "new_password": "b"}
            ).status_code
            for _ in range(3)
        ]
    assert listing == [401] * 4
    assert changes == [401, 401, 429]


def test_serve_with_workers_shares_the_sign_in_budget_and_bounds_slow_heads(
    tmp_path: Path,
) -> None:
    """``steelyard serve --workers 2``: the worker processes build their settings from the
    environment; sign-ins over fresh connections (spread over both) share one budget."""
    env = {
        "STEELYARD_LOGIN_RATE_LIMIT_PER_ADDRESS": "5",
        "STEELYARD_REQUEST_HEAD_TIMEOUT_SECONDS": "1",
    }
    with steelyard_serve(tmp_path, env, "--workers", "2") as address:
        statuses = [
            httpx.post(
                f"http://{address}/api/auth/login",
                json={"email": f"n-{uuid.uuid4().hex[:8]}@example.com", "password": "wrong one"},
                headers={"Connection": "close"},
                timeout=PATIENCE,  # a busy machine hashes slowly (low-priority threads)
            ).status_code
            for _ in range(16)
        ]
        host, port = address.split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(b"GET /v1/projects HTTP/1.1\r\nHost: x\r\n")
            started = time.monotonic()
            stalled = _until_closed(sock)
            waited = time.monotonic() - started
    assert statuses == [401] * 5 + [429] * 11
    # The default deadline is 10 s: well above, so the setting reached both workers.
    assert stalled.startswith(b"HTTP/1.1 408 ") and waited <= 6, (stalled, waited)


def test_addresses_and_credentials_name_their_buckets() -> None:
    assert client_address(("203.0.113.9", 1)) == "203.0.113.9"
    assert client_address(("::ffff:203.0.113.9", 1)) == "203.0.113.9"
    # One subscriber holds a whole /64: its addresses share one budget.
    assert client_address(("2001:db8:1:2::1", 1)) == client_address(("2001:db8:1:2:ffff::9", 1))
    assert client_address(("2001:db8:1:2::1", 1)) != client_address(("2001:db8:1:3::1", 1))
    assert client_address(None) == "unknown"

    def named(header: bytes) -> str | None:
        return credential_hash({"headers": [(b"authorization", header)]})

    basic = named(b"Basic " + base64.b64encode(b"live_abc:"))
    assert basic == named(b"Basic " + base64.b64encode(b"live_abc:other"))
    assert basic is not None and "live_abc" not in basic
    assert basic == named(b"Bearer live_abc")
    assert named(b"Bearer live_abd") != basic
    assert named(b"Bearer ") is None
    assert credential_hash({"headers": [(b"host", b"x")]}) is None
