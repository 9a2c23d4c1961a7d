"""Schemathesis over the server's own OpenAPI document: no generated request answers 5xx.

Every operation under ``/v1``, ``/v2`` and ``/api`` is fuzzed twice, once as a customer (the
organization's live API key) and once as a worker (a session token), against the live test
server over HTTP. Half of the generated names and ids are those of real resources seeded first
(a project, a batch, a task, a file, a leased assignment, an invitation, a session), so requests
reach the code behind the 404s; the other half are whatever Schemathesis makes up. The
operations that end the worker's session (sign-out, revoking a session) run last, on their own,
so that the rest of the worker's run is not answered 401.

The run is bounded (a fixed number of cases per operation, Hypothesis' deterministic mode), so
the same cases run each time and it fits CI's budget; set ``STEELYARD_FUZZ_EXAMPLES`` higher to
search further by hand. Schemathesis runs as its own process (its command line prints the
totals and a ``curl`` line per failure, what a person needs to reproduce one) while the server
answers from this one, so the suite's checks on the server (the write-lock guard) still apply.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from steelyard.db.engine import Database
from tests.api.helpers import login, make_worker
from tests.conftest import LiveServer, Org, basic

EXAMPLES = int(os.environ.get("STEELYARD_FUZZ_EXAMPLES", "40"))
TIMEOUT_SECONDS = 600
TASK_TYPES = ["categorization", "imageannotation", "textcollection", "comparison"]
FUZZED = "^/(v1|v2|api)/"
ENDS_THE_SESSION = "^/api/auth/(logout|sessions/)"


def _ok(r: httpx.Response) -> dict[str, object]:
    assert r.is_success, (r.request.url, r.status_code, r.text)
    body: dict[str, object] = r.json()
    return body


def seed(
    http: httpx.Client, org: Org, other_org: Org, worker: str, worker_token: str
) -> dict[str, list[object]]:
    """Real resources for the generated requests to find, by dictionary of values."""
    auth = basic(org.live_key)
    as_worker = {"Authorization": worker_token}
    ids: dict[str, list[object]] = {"names": ["fuzz"], "types": list(TASK_TYPES)}
    params = {"instruction": "Pick one"}
    for name in ("fuzz", "fuzz-work"):  # the worker leases from its own project
        project = _ok(
            http.post(
                "/v1/projects",
                json={"name": name, "type": "categorization", "params": params},
                auth=auth,
            )
        )
        _ok(http.post("/v1/batches", json={"project": name, "name": name}, auth=auth))
        task = _ok(
            http.post(
                "/v1/task/categorization",
                json={
                    "project": name,
                    "batch": name,
                    "attachment": "Is this fuzz?",
                    "attachment_type": "text",
                    "categories": ["yes", "no"],
                    "unique_id": f"{name}-1",
                },
                auth=auth,
            )
        )
        if name == "fuzz":
            ids["project_ids"] = [str(project["id"])]
            ids["task_ids"] = [str(task["task_id"])]
    batch = _ok(http.get("/v1/batches/fuzz", auth=auth))
    ids["batch_ids"] = [str(batch["id"])]
    upload = _ok(http.post("/v1/files/upload", files={"file": ("a.txt", b"fuzz")}, auth=auth))
    ids["file_ids"] = [str(upload["id"])]
    lease = http.post("/api/work/next", params={"project": "fuzz-work"}, headers=as_worker)
    ids["assignment_ids"] = [str(_ok(lease)["assignment_id"])]
    invite = {"emails": [worker], "team_role": "labeler"}
    _ok(http.post("/v1/teams/invite", json=invite, auth=basic(other_org.live_key)))
    invitations = http.get("/api/invitations", headers=as_worker)
    ids["invitation_ids"] = [str(i["id"]) for i in _list(invitations)]
    ids["session_ids"] = [
        str(s["id"]) for s in _list(http.get("/api/auth/sessions", headers=as_worker))
    ]
    return ids


def _list(r: httpx.Response) -> list[dict[str, object]]:
    assert r.is_success and r.json(), (r.request.url, r.status_code, r.text)
    body: list[dict[str, object]] = r.json()
    return body


# Which dictionary feeds which parameter (path, query or JSON body field).
BINDINGS = {
    "names": [
        "path.name",
        "path.project",
        "path.batch",
        "query.project",
        "query.batch",
        "query.project_name",
        "query.batch_name",
        "body.project",
        "body.batch",
    ],
    "types": ["path.task_type", "query.type"],
    "project_ids": ["query.project_id"],
    "batch_ids": ["query.batch_id"],
    "task_ids": ["path.task_id", "query.task_id"],
    "file_ids": ["path.file_id"],
    "assignment_ids": ["path.assignment_id"],
    "invitation_ids": ["path.invitation_id"],
    "session_ids": ["path.session_id"],
}


def config(ids: dict[str, list[object]]) -> str:
    """schemathesis.toml: each bound parameter takes a real value in half of the cases."""
    lines = []
    for dictionary, values in ids.items():
        lines += [f"[dictionaries.{dictionary}]", f"values = {json.dumps(values)}", ""]
    lines.append("[parameters]")
    for dictionary, keys in BINDINGS.items():
        for key in keys:
            lines.append(f'"{key}" = {{ dictionary = "{dictionary}", probability = 0.5 }}')
    return "\n".join(lines) + "\n"


def run_schemathesis(url: str, options: list[str], folder: Path) -> tuple[int, str]:
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--config-file",
        str(folder / "schemathesis.toml"),
        "run",
        f"{url}/openapi.json",
        "--checks",
        "not_a_server_error",
        "--max-examples",
        str(EXAMPLES),
        "--generation-deterministic",  # the same cases every run (and no example database)
        "--workers",
        "1",
        "--request-timeout",
        "30",
        "--no-color",
        *options,
    ]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=False, cwd=folder
    )
    return done.returncode, done.stdout + done.stderr


@pytest.mark.slow
def test_generated_requests_never_answer_5xx(
    server: LiveServer,
    http: httpx.Client,
    org: Org,
    other_org: Org,
    db: Database,
    tmp_path: Path,
) -> None:
    worker = make_worker(db, org.org_id)
    token = login(http, worker)["Authorization"]
    (tmp_path / "schemathesis.toml").write_text(config(seed(http, org, other_org, worker, token)))
    as_worker = ["--header", f"Authorization: {token}"]
    runs = {
        "API key": ["--auth", f"{org.live_key}:", "--include-path-regex", FUZZED],
        "worker token": [
            *as_worker,
            "--include-path-regex",
            FUZZED,
            "--exclude-path-regex",
            ENDS_THE_SESSION,
        ],
        "worker token, ending its session": [*as_worker, "--include-path-regex", ENDS_THE_SESSION],
    }
    failures = []
    for name, options in runs.items():
        code, output = run_schemathesis(server.url, options, tmp_path)
        print(f"--- Schemathesis as {name} (exit {code})\n{output}")  # shown with -rP
        if code != 0:
            failures.append(f"--- Schemathesis as {name} (exit {code})\n{output}")
    assert not failures, "\n".join(failures)
