"""Slow clients against a real ``steelyard serve``: stalled heads and bodies are cut off.

As probed: a connection that sent its headers slowly was held open without limit. The server
here is the CLI's, so the settings reach uvicorn the way they do for users; it runs with few
file descriptors, so that a slow-loris which is never cut off starves it of connections.

The machine running the suite may be busy: responses are read whole however TCP splits them,
waits for the server have generous deadlines of their own, and what is asserted about time is
bounded well away from both the configured value and uvicorn's defaults (which would show a
setting that did not reach the server).
"""

from __future__ import annotations

import re
import select
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
#: Longest wait for the server to answer or close before a test gives up (a busy machine may be
#: slow, but a server that never answers must still fail the test rather than hang it).
PATIENCE = 30.0


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
    return socket.create_connection((host, int(port)), timeout=PATIENCE)


def _until_closed(sock: socket.socket) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and how long that took.

    A reset counts as closing: the server may close while bytes it will never read are still
    arriving (a head it refused), and the kernel then answers them with a reset.
    """
    start, received = time.monotonic(), b""
    deadline = start + PATIENCE
    while True:
        sock.settimeout(max(deadline - time.monotonic(), 0.01))
        try:
            chunk = sock.recv(4096)
        except ConnectionResetError:
            break
        except TimeoutError:
            pytest.fail(f"the server did not close within {PATIENCE} s (got {received!r})")
        if not chunk:
            break
        received += chunk
    return received, time.monotonic() - start


def _response(sock: socket.socket) -> tuple[bytes, bytes]:
    """One whole response, head and body (by its Content-Length), however it was split."""
    sock.settimeout(PATIENCE)
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = sock.recv(4096)
        assert chunk, f"closed before the end of the response head: {received!r}"
        received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    length = re.search(rb"(?im)^content-length:\s*(\d+)\r?$", head)
    assert length is not None, head
    while len(body) < int(length.group(1)):
        chunk = sock.recv(4096)
        assert chunk, f"closed before the end of the response body: {head + body!r}"
        body += chunk
    assert len(body) == int(length.group(1)), (head, body)
    return head, body


def _answered(sock: socket.socket) -> bool:
    """Whether the server has sent something (or closed) without our reading it."""
    return bool(select.select([sock], [], [], 0)[0])


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
    # uvicorn's default is never (and Steelyard's 10 s): well below either.
    assert HEAD_TIMEOUT * 0.9 <= took <= HEAD_TIMEOUT + 5, took


def test_a_head_sent_a_byte_at_a_time_has_one_deadline(served: str) -> None:
    request = b"GET /v1/projects HTTP/1.1\r\nHost: x\r\n\r\n"
    with _connect(served) as sock:
        start = time.monotonic()
        for byte in request:
            # Stop once the server has answered: bytes sent after it closed would be reset.
            if _answered(sock):
                break
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
    # Steelyard's default is 30 s: well above.
    assert received == b"" and BODY_TIMEOUT * 0.9 <= took <= BODY_TIMEOUT + 5, (received, took)
    with _connect(served) as sock:
        sock.sendall(head)
        # 12 pauses of a quarter of the timeout: three times the timeout in all, and each pause
        # leaves a busy machine most of the timeout to spare.
        for i in range(0, len(body), 5):
            time.sleep(BODY_TIMEOUT * 0.25)
            sock.sendall(body[i : i + 5])
        answer, _ = _response(sock)
    assert answer.startswith(b"HTTP/1.1 401 "), answer


def test_an_oversized_head_is_refused(served: str) -> None:
    with _connect(served) as sock:
        sock.sendall(b"GET /v1/projects HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 8000 + b"\r\n")
        received, _ = _until_closed(sock)
    assert received.startswith(b"HTTP/1.1 431 "), received


def test_an_idle_kept_alive_connection_is_closed(served: str) -> None:
    with _connect(served) as sock:
        sock.sendall(b"GET /v1/projects HTTP/1.1\r\nHost: x\r\n\r\n")
        head, _ = _response(sock)
        rest, took = _until_closed(sock)
    assert head.startswith(b"HTTP/1.1 401 "), head
    assert b"connection: close" not in head.lower()  # kept alive: the idle timeout closes it
    # uvicorn's default keep-alive is 5 s: the setting reached the server.
    assert rest == b"" and KEEP_ALIVE * 0.9 <= took <= KEEP_ALIVE + 3, (rest, took)


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
        deadline = time.monotonic() + PATIENCE
        answer = None
        while answer is None and time.monotonic() < deadline:
            try:
                answer = httpx.get(f"http://{served}/v1/projects", timeout=PATIENCE)
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
            timeout=PATIENCE,  # a busy machine hashes slowly (low-priority threads)
        ).status_code
        for i in range(5)
    ]
    # Sign-in is limited to 3 a minute per address: five "different" addresses share one.
    assert statuses[-1] == 429, statuses
