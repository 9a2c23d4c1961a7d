"""``steelyard aggregate`` through typer's CliRunner, on a tiny app of its own."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from steelyard.cli.aggregate import aggregate

app = typer.Typer()
app.command("aggregate")(aggregate)
runner = CliRunner()

LABELS = """worker,task,label,extra
w1,t1,cat,x
w2,t1,cat,x
w3,t1,dog,x
w1,t2,dog,x
w2,t2,dog,x
w3,t2,dog,x
w1,t3,cat,x
w2,t3,dog,x
w3,t3,cat,x
"""


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    labels = tmp_path / "labels.csv"
    labels.write_text(LABELS)
    gold = tmp_path / "gold.csv"
    gold.write_text("task,label\nt1,cat\nt2,cat\nt9,dog\n")
    return {"labels": labels, "gold": gold, "out": tmp_path / "out.csv"}


def rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_csv_to_stdout(files: dict[str, Path]) -> None:
    result = runner.invoke(app, [str(files["labels"]), "--method", "mv"])
    assert result.exit_code == 0, result.output
    got = rows(result.stdout)
    assert [r["task"] for r in got] == ["t1", "t2", "t3"]
    assert [r["label"] for r in got] == ["cat", "dog", "cat"]
    assert [float(r["confidence"]) for r in got] == pytest.approx([2 / 3, 1.0, 2 / 3], abs=1e-6)


def test_json_is_pure_and_has_exactly_the_documented_keys(files: dict[str, Path]) -> None:
    args = [str(files["labels"]), "--gold", str(files["gold"]), "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)  # nothing but the JSON on stdout
    assert set(report) == {"method", "tasks", "labels", "seconds", "total_seconds", "accuracy"}
    assert report["method"] == "default"
    assert report["tasks"] == 3 and report["labels"] == 9
    assert report["seconds"] >= 0
    assert report["accuracy"] == pytest.approx(0.5)  # t1 right, t2 wrong, t9 has no labels


def test_json_without_gold_has_null_accuracy(files: dict[str, Path]) -> None:
    result = runner.invoke(app, [str(files["labels"]), "--json", "-m", "ds"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["accuracy"] is None


def test_out_file_with_json(files: dict[str, Path]) -> None:
    args = [str(files["labels"]), "--out", str(files["out"]), "--json", "-m", "wawa"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["method"] == "wawa"
    got = rows(files["out"].read_text())
    assert [r["label"] for r in got] == ["cat", "dog", "cat"]


@pytest.mark.parametrize(
    "method", ["mv", "wawa", "ds", "onecoin", "glad", "mace", "bayes_ds", "select", "default"]
)
def test_every_method_runs(files: dict[str, Path], method: str) -> None:
    result = runner.invoke(app, [str(files["labels"]), "-m", method, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["tasks"] == 3


def test_unknown_method_exits_2_listing_the_valid_names(files: dict[str, Path]) -> None:
    result = runner.invoke(app, [str(files["labels"]), "--method", "nope"])
    assert result.exit_code == 2
    assert "unknown method 'nope'" in result.stderr
    assert "bayes_ds, default, ds, glad, mace, mv, onecoin, select, wawa" in result.stderr
    assert result.stdout == ""


def test_bad_input_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("worker,item,label\nw,t,x\n")
    result = runner.invoke(app, [str(bad)])
    assert result.exit_code == 1
    assert "missing column(s) task" in result.stderr
    missing = runner.invoke(app, [str(tmp_path / "nope.csv")])
    assert missing.exit_code == 1
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert runner.invoke(app, [str(empty)]).exit_code == 1


def test_header_only_gives_an_empty_result(tmp_path: Path) -> None:
    only = tmp_path / "only.csv"
    only.write_text("worker,task,label\n")
    result = runner.invoke(app, [str(only), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["tasks"] == 0


def test_ids_stay_strings_and_csv_quirks_are_read(tmp_path: Path) -> None:
    """Leading zeros kept, BOM and padded header names, quoted commas, blank lines, CRLF."""
    path = tmp_path / "quirks.csv"
    body = (
        "\ufeff label , worker,task,note\r\n"
        '"a, b",w1,007,x\r\n'
        '"a, b",w2,007,"y, z"\r\n'
        "\r\n"
        "c,w1,7,x\r\n"
        "c,w2,7,x\r\n"
    )
    path.write_bytes(body.encode("utf-8"))
    result = runner.invoke(app, [str(path), "-m", "mv"])
    assert result.exit_code == 0, result.output
    got = rows(result.stdout)
    assert [(r["task"], r["label"]) for r in got] == [("007", "a, b"), ("7", "c")]


def test_ragged_row_exits_1_naming_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "ragged.csv"
    bad.write_text("worker,task,label\nw1,t1,a\nw2,t1\n")
    result = runner.invoke(app, [str(bad)])
    assert result.exit_code == 1
    assert "ragged.csv" in result.stderr


def test_gold_with_string_ids_scores_the_answers(tmp_path: Path) -> None:
    labels = tmp_path / "l.csv"
    labels.write_text("worker,task,label\na,01,x\nb,01,x\na,1,y\nb,1,y\n")
    gold = tmp_path / "g.csv"
    gold.write_text("task,label\n01,x\n1,x\n")
    result = runner.invoke(app, [str(labels), "--gold", str(gold), "--json", "-m", "mv"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["accuracy"] == pytest.approx(0.5)
