"""A DNS for tests, plugged in through ``urls.use_resolver`` (the resolver seam)."""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from steelyard.callbacks import urls

Answer = str | tuple[str, ...]


class FakeDns:
    """Made-up names answer what the test says; numeric hosts themselves; others do not
    resolve.

    ``answers[name]`` is an address, a tuple of addresses (one answer with several), or a list
    of those answered in turn (the last repeats: a name that rebinds). A name in ``stalls``
    waits that many seconds before it answers, like a DNS server that does not answer. The
    answer is built by the real ``getaddrinfo`` from the numeric address (no network), so the
    suite's write-lock guard sees every lookup.
    """

    def __init__(self) -> None:
        self.answers: dict[str, Answer | list[Answer]] = {}
        self.stalls: dict[str, float] = {}
        self.calls: list[str] = []
        self.stalled = threading.Event()
        self._lock = threading.Lock()

    def __call__(self, host: str, port: int) -> list[str]:
        with self._lock:
            self.calls.append(host)
            turn = self.calls.count(host) - 1
        delay = self.stalls.get(host)
        if delay:
            self.stalled.set()
            time.sleep(delay)
        answers = self.answers.get(host)
        if answers is None and _is_literal(host):
            answers = host  # a numeric host "resolves" to itself, as with a real resolver
        if answers is None:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        answer = answers[min(turn, len(answers) - 1)] if isinstance(answers, list) else answers
        numeric = (answer,) if isinstance(answer, str) else answer
        return [found for a in numeric for found in urls.system_resolver(a, port)]


def _is_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@contextmanager
def fake_dns() -> Iterator[FakeDns]:
    dns = FakeDns()
    with urls.use_resolver(dns):
        yield dns
