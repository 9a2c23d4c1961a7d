"""bench/queue.py at a tiny size, so that it does not rot: the load is exactly what the API
creates, and a short run over a real server counts labels and finds no double hand-out."""

from __future__ import annotations

from pathlib import Path

import pytest
from queue_setup import (
    BATCH,
    PIPELINE,
    PROJECT,
    bulk_load,
    check_loaded,
    create_accounts,
    task_body,
)
from sqlalchemy import update

from steelyard.db.engine import Database
from steelyard.tasks.models import Task, TaskCount
from tests.bench.conftest import load_script

bench = load_script("queue", "queue_bench")


@pytest.mark.slow
def test_a_short_run_counts_labels_and_finds_no_double_hand_out() -> None:
    args = bench.parse_args(["--workers", "4", "--seconds", "2", "--gold-tasks", "3"])
    result = bench.run_one("sqlite", 300, args)
    assert result["submitted"] > 0
    assert result["labels_per_s"] > 0
    assert result["next"][0] > 0 and result["submit"][0] > 0
    assert result["doubles_seen"] == [0, 0] and result["doubles_stored"] == [0, 0, 0]
    # The server applies some redundancy (1 until the workflow engine's k arrives).
    assert result["k_effective"] in (1, 3)
    assert result["generator_cpu"] > 0 and result["server_cpu"] > 0
    # Gold is served (the project's gold_rate 0.1), hidden under ids that are no customer
    # task, and the server counted each such lease.
    assert result["gold_served"] > 0
    assert result["gold_counted"][0] == result["gold_served"]
    assert result["other_answers"] == {}
    bench.report([result])  # the table prints from what a run returns


def test_check_loaded_catches_a_loaded_task_unlike_the_template(tmp_path: Path) -> None:
    # The template here comes from the service the API calls (no server: the smoke test above
    # loads from a template made over HTTP); what is checked is that a difference is caught.
    from datetime import UTC, datetime

    from steelyard.accounts.schemas import Actor
    from steelyard.projects import service as projects
    from steelyard.tasks import create

    url = f"sqlite:///{tmp_path / 'steelyard.db'}"
    org_id, _key, _emails = create_accounts(url, 1)
    actor = Actor(org_id=org_id, is_test=False, kind="api_key", role="admin")
    now = datetime.now(UTC)
    db = Database(url)
    try:
        with db.unit_of_work() as s:
            projects.create_project(
                s, actor, {"name": PROJECT, "type": "categorization", "params": PIPELINE}, now
            )
            projects.create_batch(s, actor, {"project": PROJECT, "name": BATCH}, now)
            template = create.create_task(s, actor, "categorization", task_body("t"), now)
            template_id = template.task.task_id
        bulk_load(url, org_id, template_id, 50)
        check_loaded(url, org_id, template_id, 50)
        with db.unit_of_work() as s:
            s.execute(update(Task).where(Task.seq == 50).values(params={"categories": ["a"]}))
        with pytest.raises(AssertionError, match="params"):
            check_loaded(url, org_id, template_id, 50)
        with db.unit_of_work() as s:
            s.execute(update(Task).where(Task.seq == 50).values(params=template.task.params))
        check_loaded(url, org_id, template_id, 50)
        with db.unit_of_work() as s:
            s.execute(update(TaskCount).values(n=TaskCount.n + 1))
        with pytest.raises(AssertionError, match="task_counts"):
            check_loaded(url, org_id, template_id, 50)
    finally:
        db.dispose()


def test_a_kept_database_comes_back_with_its_setup(tmp_path: Path) -> None:
    import sqlite3

    from queue_cache import cache_key, restore, save
    from queue_setup import Setup

    source, target, cache = tmp_path / "a", tmp_path / "b", tmp_path / "cache"
    source.mkdir()
    target.mkdir()
    org_id, key, emails = create_accounts(f"sqlite:///{source / 'steelyard.db'}", 2)
    (source / "secret_key").write_text("s3cret")
    setup = Setup(key, org_id, emails, "template", ["gold"], "note")
    name = cache_key(10, 2, 1, 0.1)
    assert name != cache_key(11, 2, 1, 0.1)
    assert restore(cache, name, target) is None
    save(cache, name, source, setup)
    assert restore(cache, name, target) == setup
    assert (target / "secret_key").read_text() == "s3cret"
    conn = sqlite3.connect(target / "steelyard.db")
    try:
        assert conn.execute("SELECT count(*) FROM users").fetchone() == (2,)
    finally:
        conn.close()
