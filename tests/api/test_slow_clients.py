"""Slow clients against a real ``steelyard serve``: stalled heads and bodies are cut off.

As probed: a connection that sent its headers slowly was held open without limit. The server
here is the CLI's, so the settings reach uvicorn the way they do for users; it runs with few
file descriptors, so that a slow-loris which is never cut off starves it of connections.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.api.serving import steelyard_serve

HEAD_TIMEOUT = 1.0
BODY_TIMEOUT = 1.0
KEEP_ALIVE = 1
FILES = 256  # the server's descriptor limit


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    env = {
        "STEELYARD_REQUEST_HEAD_TIMEOUT_SECONDS": str(HEAD_TIMEOUT),
        "STEELYARD_REQUEST_BODY_TIMEOUT_SECONDS": str(BODY_TIMEOUT),
        "STEELYARD_KEEP_ALIVE_TIMEOUT_SECONDS": str(KEEP_ALIVE),
        "STEELYARD_MAX_REQUEST_HEAD_BYTES": "4096",
        "STEELYARD_LOGIN_RATE_LIMIT_PER_ADDRESS": "3",
    }
    with steelyard_serve(tmp_path_factory.mktemp("slow-clients"), env, files=FILES) as address:
        yield address


def _connect(served: str) -> socket.socket:
    host, port = served.split(":")
    sock = socket.create_connection((host, int(port)), timeout=HEAD_TIMEOUT + 10)
    return sock


def _until_closed(sock: socket.socket) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and how long that took."""
    start, received = time.monotonic(), b""
    while chunk := sock.recv(4096):
        received += chunk
    return received, time.monotonic() - start


@pytest.mark.parametrize(
    "partial",
    [
        b"",  # connects and says nothing
        b"GET /v1/proj",  # half a request line
        b"GET /v1/projects HTTP/1.1\r\nHost: x\r\nX-Slow: ",  # headers that never end
    ],
    ids=["silent", "request-line", "headers"],
)
def test_a_stalled_request_head_is_closed_in_time(served: str, partial: bytes) -> None:
    with _connect(served) as sock:
        sock.sendall(partial)
        received, took = _until_closed(sock)
    assert received.startswith(b"HTTP/1.1 408 "), received
    assert HEAD_TIMEOUT * 0.9 <= took <= HEAD_TIMEOUT + 3, took


def test_a_head_sent_a_byte_at_a_time_has_one_deadline(served: str) -> None:
    request = b"GET /v1/projects HTTP/1.1\r\nHost: x\r\n\r\n"
    with _connect(served) as sock:
        start = time.monotonic()
        for byte in request:
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                break
            time.sleep(0.1)  # ~4 s in all, each pause well under the deadline
        received, _ = _until_closed(sock)
    assert received.startswith(b"HTTP/1.1 408 "), received
    assert time.monotonic() - start <= HEAD_TIMEOUT + 5


def test_a_stalled_body_is_cut_off_but_a_slow_one_is_not(served: str) -> None:
    body = b'{"email": "a@example.com", "password": "wrong password"}'
    head = (
        b"POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body)
    )
    with _connect(served) as sock:
        sock.sendall(head + body[:10])
        received, took = _until_closed(sock)
    assert received == b"" and took <= BODY_TIMEOUT + 3, (received, took)
    with _connect(served) as sock:
        sock.sendall(head)
        for i in range(0, len(body), 10):  # 6 pauses of 0.4 s: slower in all than the timeout
            time.sleep(BODY_TIMEOUT * 0.4)
            sock.sendall(body[i : i + 10])
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 401 "), answer


def test_an_oversized_head_is_refused(served: str) -> None:
    with _connect(served) as sock:
        sock.sendall(b"GET /v1/projects HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 8000 + b"\r\n")
        received, _ = _until_closed(sock)
    assert received.startswith(b"HTTP/1.1 431 "), received


def test_an_idle_kept_alive_connection_is_closed(served: str) -> None:
    with _connect(served) as sock:
        sock.sendall(b"GET /v1/projects HTTP/1.1\r\nHost: x\r\n\r\n")
        first = sock.recv(4096)
        rest, took = _until_closed(sock)
    assert first.startswith(b"HTTP/1.1 401 ")
    assert rest == b"" and took <= KEEP_ALIVE + 3


def test_a_slow_loris_does_not_stop_normal_requests(served: str) -> None:
    """More stalled connections than the server has descriptors: they are cut off, and a
    normal request is served once they are."""
    loris = []
    try:
        for _ in range(FILES + 50):
            sock = _connect(served)
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
            loris.append(sock)
        # Out of descriptors, the server drops new connections at once; until the stalled
        # ones are cut off (before: never), a client retrying gets nowhere.
        deadline = time.monotonic() + HEAD_TIMEOUT * 2 + 5
        answer = None
        while answer is None and time.monotonic() < deadline:
            try:
                answer = httpx.get(f"http://{served}/v1/projects", timeout=5)
            except httpx.TransportError:
                time.sleep(0.1)
        assert answer is not None, "a normal request was not served while the loris stalled"
        assert answer.status_code == 401
    finally:
        for sock in loris:
            sock.close()


def test_serve_ignores_forwarded_for_unless_told_to_trust(served: str) -> None:
    """``serve`` used to pass uvicorn ``proxy_headers=True``, which trusts 127.0.0.1: anyone on
    the machine (or a proxy passing the header through) could pick the address rate limits see."""
    statuses = [
        httpx.post(
            f"http://{served}/api/auth/login",
            json={"email": f"n{i}@example.com", "password": "wrong password"},
            headers={"X-Forwarded-For": f"203.0.113.{i}"},
        ).status_code
        for i in range(5)
    ]
    # Sign-in is limited to 3 a minute per address: five "different" addresses share one.
    assert statuses[-1] == 429, statuses
