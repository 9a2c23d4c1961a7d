"""What ``make run`` seeds and prints: the real address, a usable worker login, a demo project
that the README's worker example labels out of the box."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from steelyard.api.app import create_app
from steelyard.cli.demo import base_url
from steelyard.cli.main import app
from steelyard.config import load_settings
from tests.api.serving import serving_app


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("STEELYARD_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("STEELYARD_DATABASE_URL", raising=False)
    return tmp_path


def run(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def test_the_banner_gives_the_port_and_host_the_server_listens_on(env: Path) -> None:
    out = run("demo", "--host", "127.0.0.2", "--port", "9000")
    assert 'api_instance_url="http://127.0.0.2:9000/v1"' in out
    assert "http://127.0.0.2:9000/docs" in out
    assert "8080" not in out
    assert "demo-sentiment" in out


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("0.0.0.0", "http://127.0.0.1:9000"),  # listening everywhere: loopback reaches it
        ("::", "http://127.0.0.1:9000"),
        ("::1", "http://[::1]:9000"),
        ("localhost", "http://localhost:9000"),
    ],
)
def test_base_url(host: str, url: str) -> None:
    assert base_url(host, 9000) == url


def test_the_worker_password_is_generated_once_and_kept_private(env: Path) -> None:
    first = json.loads(run("demo", "--json"))
    second = json.loads(run("demo", "--json"))
    password = first["worker_password"]
    assert len(password) >= 15  # NIST SP 800-63B's minimum for a single-factor password
    assert second["worker_password"] == password
    assert password in run("demo")
    assert (env / "demo-keys.json").stat().st_mode & 0o777 == 0o600
    other = env / "other"
    other.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STEELYARD_DATA_DIR", str(other))
        assert json.loads(run("demo", "--json"))["worker_password"] != password


@pytest.fixture
def served(env: Path) -> Iterator[str]:
    with serving_app(create_app(load_settings(), run_jobs=False)) as url:
        yield url


def test_the_demo_worker_labels_the_demo_project(env: Path, served: str) -> None:
    # The README's "Workers label" example, with the login the banner prints.
    info = json.loads(run("demo", "--json"))
    with httpx.Client(base_url=served, timeout=30) as http:
        login = {"email": info["worker_email"], "password": info["worker_password"]}
        r = http.post("/api/auth/login", json=login)
        assert r.status_code == 200, r.text
        auth = {"authorization": f"Bearer {r.json()['token']}"}
        offer = http.post("/api/work/next", params={"project": info["project"]}, headers=auth)
        assert offer.status_code == 200, offer.text
        task = offer.json()["task"]
        assert task["project"] == "demo-sentiment"
        assert "positive" in task["params"]["categories"]
        done = http.post(
            f"/api/work/{offer.json()['assignment_id']}/submit",
            json={"response": {"category": "positive"}},
            headers=auth,
        )
        assert done.status_code == 200, done.text
