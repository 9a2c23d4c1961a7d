"""The CLI as a script drives it: JSON output, idempotent demo, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from steelyard.cli.main import app


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("STEELYARD_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("STEELYARD_DATABASE_URL", raising=False)
    return tmp_path


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout


def test_org_user_key_create_json(env: Path) -> None:
    code, out = run("org", "create", "acme", "--json")
    assert code == 0, out
    org = json.loads(out)
    assert set(org) >= {"org", "live_api_key", "test_api_key", "callback_auth_key"}
    assert org["org"] == "acme"
    assert org["live_api_key"].startswith("live_") and org["test_api_key"].startswith("test_")

    code, out = run(
        "user",
        "create",
        "--org",
        "acme",
        "--email",
        "ann@example.com",
        "--password",
        "long-password",
        "--role",
        "annotator",
        "--json",
    )
    assert code == 0, out
    assert json.loads(out)["email"] == "ann@example.com"

    code, out = run("key", "create", "--org", "acme", "--test", "--json")
    assert code == 0, out
    assert json.loads(out)["api_key"].startswith("test_")


def test_errors_exit_non_zero(env: Path) -> None:
    assert run("org", "create", "dup", "--json")[0] == 0
    assert run("org", "create", "dup", "--json")[0] != 0
    assert (
        run("user", "create", "--org", "nope", "--email", "a@b.co", "--password", "long-password")[
            0
        ]
        != 0
    )
    assert (
        run(
            "user",
            "create",
            "--org",
            "dup",
            "--email",
            "a@b.co",
            "--password",
            "x",
            "--role",
            "annotator",
        )[0]
        != 0
    )
    assert (
        run(
            "user",
            "create",
            "--org",
            "dup",
            "--email",
            "a@b.co",
            "--password",
            "long-password",
            "--role",
            "king",
        )[0]
        != 0
    )


def test_demo_is_idempotent(env: Path) -> None:
    code, first = run("demo", "--json")
    assert code == 0, first
    code, second = run("demo", "--json")
    assert code == 0, second
    a, b = json.loads(first), json.loads(second)
    assert a["live_api_key"] == b["live_api_key"] and a["test_api_key"] == b["test_api_key"]
    assert a["org_id"] == b["org_id"]


def test_demo_keys_authenticate(env: Path) -> None:
    from steelyard.accounts.service import authenticate_api_key
    from steelyard.config import load_settings
    from steelyard.db.engine import Database

    code, out = run("demo", "--json")
    assert code == 0, out
    info = json.loads(out)
    db = Database(load_settings().resolved_database_url)
    with db.unit_of_work(write=False) as session:
        live = authenticate_api_key(session, info["live_api_key"])
        test = authenticate_api_key(session, info["test_api_key"])
    db.dispose()
    assert live.org_id == test.org_id == info["org_id"]
    assert not live.is_test and test.is_test
