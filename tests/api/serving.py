"""Servers for tests: an app served from a thread of the test process (``serving_app``), or a
real ``steelyard serve`` in a child process, for tests of what the CLI passes to uvicorn."""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn

from tests.conftest import free_port


@contextmanager
def serving_app(app: Any) -> Iterator[str]:
    """Serve ``app`` from a thread until the block ends; yields its URL. Client addresses are
    the TCP peer's (no proxy headers), as rate-limit tests need."""
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=free_port(),
            log_level="warning",
            lifespan="on",
            proxy_headers=False,
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{server.config.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _limit_files(count: int) -> Callable[[], None]:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (count, count))

    return apply


@contextmanager
def steelyard_serve(
    data_dir: Path, env: dict[str, str], *args: str, files: int | None = None
) -> Iterator[str]:
    """Serve a fresh SQLite database under ``data_dir`` with ``STEELYARD_`` settings ``env``;
    yields ``host:port``. ``files``: the server's file-descriptor limit."""
    port = free_port()
    environment = {**os.environ, "STEELYARD_DATA_DIR": str(data_dir), "STEELYARD_DATABASE_URL": ""}
    environment.update(env)
    command = [sys.executable, "-m", "steelyard.cli.main", "serve", "--port", str(port)]
    log_path = data_dir / "server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [*command, "--no-jobs", "--log-level", "warning", *args],
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_limit_files(files) if files else None,
        )
        try:
            deadline = time.monotonic() + 120
            while True:
                assert proc.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, "steelyard serve did not start"
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=1):
                        break
                except OSError:
                    time.sleep(0.1)
            yield f"127.0.0.1:{port}"
        finally:
            proc.terminate()
            proc.wait(timeout=30)
