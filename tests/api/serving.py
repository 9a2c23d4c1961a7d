"""A real ``steelyard serve`` in a child process, for tests of what the CLI passes to uvicorn."""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import free_port


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
