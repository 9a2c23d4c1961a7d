"""The outgoing transport checks the address it actually dials (no DNS-rebinding gap)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpcore
import httpx
import pytest

from steelyard.callbacks import transport, urls
from tests.callbacks.fakedns import Answer, FakeDns


class _Echo(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = (self.headers.get("Host") or "").encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture()
def local_server() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture()
def resolver(dns: FakeDns) -> dict[str, Answer | list[Answer]]:
    """Names this test makes up, resolved to what the test says; public checks are strict."""
    return dns.answers


def test_the_pool_httpx_builds_takes_the_checked_backend() -> None:
    pool = transport.checked_transport(urls.PUBLIC_ONLY)._pool
    assert isinstance(pool._network_backend, transport._CheckedBackend)


def test_a_name_that_rebinds_to_loopback_after_the_check_is_not_dialled(
    resolver: dict[str, Answer | list[Answer]], local_server: int
) -> None:
    url = f"http://rebind.example:{local_server}/hook"
    # The check sees a public address, and then the name points at this machine.
    resolver["rebind.example"] = ["93.184.216.34", "127.0.0.1"]
    urls.check_url(url, field="callback_url", policy=urls.PUBLIC_ONLY, resolve=True)
    with (
        httpx.Client(transport=transport.checked_transport(urls.PUBLIC_ONLY)) as client,
        pytest.raises(httpx.ConnectError, match="not public"),
    ):
        client.get(url)


def test_literal_private_addresses_are_refused_at_connect(
    resolver: dict[str, Answer | list[Answer]], local_server: int
) -> None:
    with (
        httpx.Client(transport=transport.checked_transport(urls.PUBLIC_ONLY)) as client,
        pytest.raises(httpx.ConnectError),
    ):
        client.get(f"http://127.0.0.1:{local_server}/")


def test_the_checked_address_is_dialled_with_the_original_host(
    resolver: dict[str, Answer | list[Answer]], local_server: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Stand-in for a public host: the name resolves to the local server, which counts as
    # public for this test only.
    resolver["hooks.example"] = "127.0.0.1"
    monkeypatch.setattr(urls, "forbidden", lambda ip: False)
    with httpx.Client(transport=transport.checked_transport(urls.PUBLIC_ONLY)) as client:
        r = client.get(f"http://hooks.example:{local_server}/")
    assert r.status_code == 200
    assert r.text == f"hooks.example:{local_server}"


def test_private_targets_pass_when_the_deployment_allows_them(
    resolver: dict[str, Answer | list[Answer]], local_server: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    allowed = urls.TargetPolicy(allow_private=True)
    with httpx.Client(transport=transport.checked_transport(allowed)) as client:
        assert client.get(f"http://127.0.0.1:{local_server}/").status_code == 200


def test_an_unresolvable_name_is_a_connect_error(
    resolver: dict[str, Answer | list[Answer]],
) -> None:
    backend = transport._CheckedBackend(urls.PUBLIC_ONLY)
    with pytest.raises(httpcore.ConnectError, match="cannot resolve"):
        backend.connect_tcp("no-such-host.invalid", 80, timeout=2)
