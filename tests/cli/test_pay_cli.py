"""``steelyard pay``: close-period prints the period and its workers as JSON, twice the same;
bad periods and unknown organizations exit non-zero with the reason."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from steelyard.cli.main import app
from steelyard.pay import rules


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("STEELYARD_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("STEELYARD_DATABASE_URL", raising=False)
    return tmp_path


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout + result.stderr


def test_close_period_json_and_idempotent(env: Path) -> None:
    assert run("org", "create", "acme", "--json")[0] == 0
    code, out = run("pay", "close-period", "--org", "acme", "--json")
    assert code == 0, out
    first = json.loads(out)
    assert first["period"] == rules.week_of(datetime.now(UTC))
    assert first["workers"] == [] and first["currency"] == "USD"
    assert first["floor_hourly_minor"] == 1500
    code, again = run("pay", "close-period", "--org", "acme", "--json", "--period", first["period"])
    assert code == 0 and json.loads(again) == first
    # Without --period again: the current week, already closed, is reported as it was.
    code, out = run("pay", "close-period", "--org", "acme")
    assert code == 0 and first["period"] in out, out
    # The next week has not begun.
    code, out = run(
        "pay", "close-period", "--org", "acme", "--period", rules.next_week(first["period"])
    )
    assert code != 0 and "has not started" in out
    code, out = run("pay", "sweep", "--org", "acme", "--json")
    assert code == 0 and json.loads(out) == {"entries": 0}
    csv_file = env / "payouts.csv"
    code, out = run(
        "pay", "payouts", "--org", "acme", "--period", first["period"], "--out", str(csv_file)
    )
    assert code == 0, out
    assert csv_file.read_text().splitlines() == ["worker,amount,currency,reference"]
    code, out = run("pay", "payouts", "--org", "acme", "--period", "2026-W01", "--json")
    assert code != 0 and "not closed" in out


@pytest.mark.parametrize(
    ("args", "mention"),
    [
        (("--org", "acme", "--period", "2026-49"), "is not a week"),
        (("--org", "acme", "--period", "2999-W01"), "has not started"),
        (("--org", "nobody"), "nobody"),
    ],
)
def test_close_period_refusals(env: Path, args: tuple[str, ...], mention: str) -> None:
    assert run("org", "create", "acme", "--json")[0] == 0
    code, out = run("pay", "close-period", *args, "--json")
    assert code != 0 and mention in out, out


def test_an_organizations_currency_and_higher_floor(env: Path) -> None:
    assert run("org", "create", "acme", "--json")[0] == 0
    code, out = run("pay", "settings", "--org", "acme", "--json")
    assert code == 0 and json.loads(out) == {
        "org": "acme",
        "currency": "USD",
        "min_hourly_minor": 1500,
    }
    code, out = run("pay", "settings", "--org", "acme", "--min-hourly", "14.99")
    assert code != 0 and "only raise" in out
    code, out = run("pay", "settings", "--org", "acme", "--min-hourly", "16.50", "--json")
    assert code == 0 and json.loads(out)["min_hourly_minor"] == 1650
    # Another currency: the floor is the global one in its units (yen have no minor unit)
    # until the organization gives its own again.
    code, out = run("pay", "settings", "--org", "acme", "--currency", "JPY", "--json")
    assert code == 0 and json.loads(out) == {
        "org": "acme",
        "currency": "JPY",
        "min_hourly_minor": 15,
    }
    code, out = run("pay", "settings", "--org", "acme", "--currency", "ZZZ")
    assert code != 0 and "ISO 4217" in out
