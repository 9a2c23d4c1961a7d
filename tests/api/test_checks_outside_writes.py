"""A body is checked before its write transaction, never inside it.

Checking params or a response can be large work (a 10 MiB body of 100,000 labels), and inside a
write transaction every other writer waits for it (SQLite's write lock; on SQLite task create
even runs its write on the event loop). A probe task type, registered for each test through
``registry.registered``, records for every check whether the thread doing it was inside a
write unit of work (``db.engine.in_write_transaction``). It behaves as a categorization.

Each path that checks is driven over HTTP: task create (live and test key, small bodies checked
on the event loop and large ones in a thread, with and without a project), evaluation and
training tasks, project create and setParams, a worker's submit and a customer's audit fix.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from steelyard.db.engine import Database, in_write_transaction
from steelyard.projects.params import INLINE_BYTES
from steelyard.tasktypes import registry
from steelyard.tasktypes.categorization import Categorization
from tests.api.helpers import auth, login, make_worker, name
from tests.conftest import Org

TYPE = "writeprobe"


class Probe(Categorization):
    name = TYPE

    def __init__(self) -> None:
        self.calls: list[tuple[str, bool]] = []
        self.delay = 0.0
        self.started = threading.Event()

    def _record(self, what: str) -> None:
        self.calls.append((what, in_write_transaction()))

    def validate_params(self, params: dict[str, Any], *, alias: str | None = None) -> Any:
        self._record("validate_params")
        self.started.set()
        time.sleep(self.delay)
        return super().validate_params(params, alias=alias)

    def validate_defaults(self, params: dict[str, Any], *, alias: str | None = None) -> Any:
        self._record("validate_defaults")
        return super().validate_defaults(params, alias=alias)

    def validate_response(self, params: dict[str, Any], response: Any) -> Any:
        self._record("validate_response")
        return super().validate_response(params, response)

    def synthetic_response(self, params: dict[str, Any], rng: Any) -> Any:
        self._record("synthetic_response")
        return super().synthetic_response(params, rng)

    def checked(self, *what: str) -> list[str]:
        """The checks made since the last call; fails if any ran in a write transaction."""
        calls, self.calls = self.calls, []
        inside = [name for name, in_write in calls if in_write]
        assert not inside, f"checked inside a write transaction: {inside}"
        return [name for name, _ in calls]


@pytest.fixture
def probe() -> Iterator[Probe]:
    with registry.registered(Probe()) as spec:
        assert isinstance(spec, Probe)
        yield spec


CATEGORIES = ["yes", "no"]
#: Bigger than what is checked on the event loop: these bodies are checked in a thread.
PADDING = {"note": "x" * (2 * INLINE_BYTES)}


def _project(http: httpx.Client, key: str, **params: Any) -> str:
    project = name("probe")
    r = http.post(
        "/v1/projects", json={"name": project, "type": TYPE, "params": params}, auth=auth(key)
    )
    assert r.status_code == 200, r.text
    return project


def _create(http: httpx.Client, key: str, **body: Any) -> dict[str, Any]:
    r = http.post(f"/v1/task/{TYPE}", json=body, auth=auth(key))
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_project_create_and_set_params_check_outside_writes(
    http: httpx.Client, org: Org, probe: Probe
) -> None:
    project = _project(http, org.live_key, categories=CATEGORIES)
    assert probe.checked() == ["validate_defaults"]
    r = http.post(
        f"/v1/projects/{project}/setParams",
        json={"categories": ["a", "b", "c"], **PADDING},
        auth=auth(org.live_key),
    )
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 1 and r.json()["params"]["categories"] == ["a", "b", "c"]
    assert probe.checked() == ["validate_defaults"]


@pytest.mark.parametrize("padding", [{}, PADDING], ids=["on the loop", "in a thread"])
def test_task_create_checks_outside_writes(
    http: httpx.Client, org: Org, probe: Probe, padding: dict[str, Any]
) -> None:
    project = _project(http, org.live_key, categories=CATEGORIES)
    probe.checked()
    _create(http, org.live_key, project=project, attachment="t", **padding)
    assert probe.checked() == ["validate_params"]
    _create(http, org.live_key, attachment="t", categories=CATEGORIES, **padding)
    assert probe.checked() == ["validate_params"]
    # A test key's task completes at once with a made-up response: made outside too.
    test_project = _project(http, org.test_key, categories=CATEGORIES)
    probe.checked()
    task = _create(http, org.test_key, project=test_project, attachment="t", **padding)
    assert task["status"] == "completed"
    assert probe.checked() == ["validate_params", "synthetic_response"]


@pytest.mark.parametrize("kind", ["evaluation_tasks", "training_tasks"])
def test_quality_tasks_check_outside_writes(
    http: httpx.Client, org: Org, probe: Probe, kind: str
) -> None:
    project = _project(http, org.live_key, categories=CATEGORIES)
    probe.checked()
    r = http.post(
        f"/v1/{kind}/{TYPE}",
        json={
            "project": project,
            "attachment": "t",
            "expected_response": {"category": "yes"},
            "initial_response": {"category": "no"},
        },
        auth=auth(org.live_key),
    )
    assert r.status_code == 200, r.text
    assert probe.checked() == ["validate_params", "validate_response", "validate_response"]


def test_submit_and_audit_check_outside_writes(
    http: httpx.Client, org: Org, probe: Probe, db: Database
) -> None:
    project = _project(http, org.live_key, categories=CATEGORIES)
    task = _create(http, org.live_key, project=project, attachment="t")
    worker = login(http, make_worker(db, org.org_id))
    probe.checked()
    lease = http.post("/api/work/next", params={"project": project}, headers=worker)
    assert lease.status_code == 200, lease.text
    assignment = lease.json()["assignment_id"]
    r = http.post(
        f"/api/work/{assignment}/submit",
        json={"response": {"category": "yes"}, **PADDING},
        headers=worker,
    )
    assert r.status_code == 200, r.text
    assert probe.checked() == ["validate_response"]
    r = http.post(
        f"/v1/task/{task['task_id']}/audit",
        json={"accepted": False, "response": {"category": "no"}},
        auth=auth(org.live_key),
    )
    assert r.status_code == 200, r.text
    assert r.json()["response"] == {"category": "no"}
    assert probe.checked() == ["validate_response"]


def test_a_slow_check_does_not_hold_up_other_clients(
    http: httpx.Client, org: Org, other_org: Org, probe: Probe
) -> None:
    """While one large body takes a second to check, another organization's creates are
    answered as usual (before, on SQLite, they waited for it: the check ran under the write
    lock, on the event loop)."""
    probe.delay = 1.0
    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(
            _create, http, org.live_key, attachment="t", categories=CATEGORIES, **PADDING
        )
        assert probe.started.wait(10)
        began = time.perf_counter()
        for i in range(3):
            r = http.post(
                "/v1/task/categorization",
                json={"attachment": f"quick {i}", "categories": CATEGORIES},
                auth=auth(other_org.live_key),
            )
            assert r.status_code == 200, r.text
        quick = time.perf_counter() - began
        assert quick < 0.5, f"three creates took {quick:.2f} s while another body was checked"
        assert not slow.done(), "the slow check ended before the other creates were timed"
        slow.result()


def test_a_task_is_checked_against_the_project_params_of_now(
    http: httpx.Client, org: Org, probe: Probe
) -> None:
    """A create checks against the project's params as cached from an earlier create; once
    setParams has changed them, the write finds a newer version and the create is checked
    again against the new params."""
    project = _project(http, org.live_key, categories=CATEGORIES)
    assert (
        _create(http, org.live_key, project=project, attachment="t")["params"]["categories"]
        == CATEGORIES
    )
    r = http.post(
        f"/v1/projects/{project}/setParams",
        json={"categories": ["red", "green"]},
        auth=auth(org.live_key),
    )
    assert r.status_code == 200, r.text
    task = _create(http, org.live_key, project=project, attachment="t")
    assert task["params"]["categories"] == ["red", "green"]
    probe.checked()
