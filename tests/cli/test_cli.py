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
        "violet tugboat sings",
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
        run(
            "user",
            "create",
            "--org",
            "nope",
            "--email",
            "a@b.co",
            "--password",
            "violet tugboat sings",
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
            "violet tugboat sings",
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


def _user(org: str, email: str, *extra: str) -> tuple[int, str]:
    return run("user", "create", "--org", org, "--email", email, *extra, "--json")


def test_user_create_never_changes_an_existing_account(env: Path) -> None:
    """Defect 5: creating an existing email for another organization reset its password and
    added a membership silently."""
    from steelyard.accounts import signin
    from steelyard.clock import SYSTEM_CLOCK
    from steelyard.config import load_settings
    from steelyard.db.engine import Database
    from steelyard.errors import Unauthorized

    assert run("org", "create", "a", "--json")[0] == 0
    assert run("org", "create", "b", "--json")[0] == 0
    assert _user("a", "new@example.com", "--password", "violet tugboat sings")[0] == 0
    code, _ = _user("b", "new@example.com", "--password", "another fine passphrase")
    assert code != 0
    # the refusal says what to do instead
    result = CliRunner().invoke(
        app,
        ["user", "create", "--org", "b", "--email", "new@example.com", "--password", "x" * 20],
    )
    assert result.exit_code != 0 and "--existing" in result.output
    assert _user("b", "new@example.com", "--existing", "--password", "another fine one")[0] != 0
    code, out = _user("b", "new@example.com", "--existing", "--role", "reviewer")
    assert code == 0, out
    assert json.loads(out)["org"] == "b" and not json.loads(out)["created"]

    db = Database(load_settings().resolved_database_url)
    try:
        now = SYSTEM_CLOCK.now()
        signed = signin.sign_in(
            db, email="new@example.com", password="violet tugboat sings", org="b", now=now
        )
        assert signed.role == "reviewer"
        with pytest.raises(Unauthorized):
            signin.sign_in(
                db, email="new@example.com", password="another fine passphrase", org="b", now=now
            )
    finally:
        db.dispose()
    # an email with no account cannot be added "as it is"
    assert _user("b", "nobody@example.com", "--existing")[0] != 0
    assert _user("b", "weak@example.com", "--password", "password")[0] != 0


def test_key_list_and_revoke(env: Path) -> None:
    from steelyard.accounts.service import authenticate_api_key
    from steelyard.config import load_settings
    from steelyard.db.engine import Database
    from steelyard.errors import Unauthorized

    org = json.loads(run("org", "create", "keys", "--json")[1])
    code, out = run("key", "list", "--org", "keys", "--json")
    assert code == 0, out
    keys = json.loads(out)
    assert {k["environment"] for k in keys} == {"live", "test"}
    live = next(k for k in keys if k["environment"] == "live")
    assert live["last4"] == org["live_api_key"][-4:] and live["revoked_at"] is None
    assert org["live_api_key"] not in out  # never the key itself

    code, out = run("key", "revoke", "--org", "keys", live["id"], "--json")
    assert code == 0, out
    assert json.loads(out)["revoked_at"]
    assert run("key", "revoke", "--org", "keys", "nope", "--json")[0] != 0
    assert run("key", "revoke", "--org", "other", live["id"], "--json")[0] != 0
    listed = {k["id"]: k for k in json.loads(run("key", "list", "--org", "keys", "--json")[1])}
    assert listed[live["id"]]["revoked_at"]

    db = Database(load_settings().resolved_database_url)
    try:
        with db.unit_of_work(write=False) as session:
            with pytest.raises(Unauthorized):
                authenticate_api_key(session, org["live_api_key"])
            authenticate_api_key(session, org["test_api_key"])
    finally:
        db.dispose()


def test_user_invite_deactivate_and_remove(env: Path) -> None:
    assert run("org", "create", "team", "--json")[0] == 0
    code, out = run(
        "user",
        "invite",
        "--org",
        "team",
        "--email",
        "Guest@Example.com",
        "--role",
        "reviewer",
        "--json",
    )
    assert code == 0, out
    invited = json.loads(out)
    assert invited["email"] == "guest@example.com" and invited["token"]
    assert _user("team", "m@example.com", "--password", "violet tugboat sings")[0] == 0
    assert run("user", "invite", "--org", "team", "--email", "m@example.com")[0] != 0  # member

    code, out = run("user", "deactivate", "--email", "m@example.com", "--json")
    assert code == 0 and json.loads(out) == {"email": "m@example.com", "active": False}
    assert run("user", "activate", "--email", "m@example.com", "--json")[0] == 0
    code, out = run("user", "remove", "--org", "team", "--email", "m@example.com", "--json")
    assert code == 0, out
    assert run("user", "remove", "--org", "team", "--email", "m@example.com", "--json")[0] != 0
    assert run("user", "deactivate", "--email", "nobody@example.com")[0] != 0
