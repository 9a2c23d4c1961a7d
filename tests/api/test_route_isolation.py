"""Another organization's objects are invisible: generated from the route table.

Every route whose path (or object-naming query parameter) names an object must have an entry
in ``CASES``: how to make such an object in organization A and call the route with it. The test
calls each route as organization B with B's credential (404, never 200, 403 or 500, which would
tell B the object exists) and then as A (it works: the object was there all along and B's call
changed nothing). A new route with such a parameter and no entry fails the first test.
"""

from __future__ import annotations

import io
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from fastapi import FastAPI

from steelyard.accounts import invitations
from steelyard.accounts import service as accounts
from steelyard.api.auth import Credential, credential_router, route_table
from steelyard.db.engine import Database
from tests.api.helpers import BOXES, IMAGE, auth, login, make_worker
from tests.api.quality_helpers import (
    answer_gold,
    categorization_project,
    gold_item,
    project_id,
    user_id,
)
from tests.conftest import LiveServer, Org

#: Query parameters that name an object (filters by value, such as tags, do not).
OBJECT_QUERY = {
    "project",
    "batch",
    "task_id",
    "project_id",
    "project_name",
    "batch_id",
    "batch_name",
}
_PARAM = re.compile(r"{([^}:]+)(:[^}]*)?}")
PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
    b"\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7\x35\x81\x84"
    b"\x00\x00\x00\x00IEND\xaeB`\x82"
)


@dataclass
class Call:
    """One request, made as B and then as A, with the same credential kind and environment."""

    path: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)
    json: Any = None
    ok: int = 200  # A's status
    #: Which of the organization's keys, or "session" (a signed-in worker), or "operator" (a
    #: signed-in manager).
    env: str = "live"


class World:
    """Makes organization A's objects over HTTP, as a customer and a worker would."""

    def __init__(self, http: httpx.Client, db: Database, a: Org, b: Org) -> None:
        self.http, self.db, self.a, self.b = http, db, a, b
        self._workers: dict[str, dict[str, str]] = {}
        self._operators: dict[str, dict[str, str]] = {}
        self._labeler: dict[str, str] | None = None

    def key(self, org: Org, env: str) -> httpx.BasicAuth:
        return auth(org.test_key if env == "test" else org.live_key)

    def as_a(self, method: str, path: str, env: str = "live", **kwargs: Any) -> Any:
        r = self.http.request(method, path, auth=self.key(self.a, env), **kwargs)
        assert r.status_code == 200, (method, path, r.status_code, r.text)
        return r.json() if r.content else None

    def project(
        self,
        env: str = "live",
        kind: str = "imageannotation",
        *,
        studio: bool = False,
        params: dict[str, Any] | None = None,
    ) -> str:
        name = f"p-{uuid.uuid4().hex[:8]}"
        body = {"type": kind, "name": name, "studio": studio, "params": params}
        self.as_a("POST", "/v1/projects", env, json=body)
        return name

    def project_id(self, name: str, env: str = "live") -> str:
        return str(self.as_a("GET", "/v2/project", env, params={"project_name": name})["id"])

    def batch(self, env: str = "live", *, staging: bool = False, studio: bool = False) -> str:
        name = f"b-{uuid.uuid4().hex[:8]}"
        project = self.project(env, studio=studio)
        body = {"project": project, "name": name, "staging_batch": staging}
        self.as_a("POST", "/v1/batches", env, json=body)
        return name

    def batch_id(self, name: str, env: str = "live") -> str:
        return str(self.as_a("GET", "/v2/batch", env, params={"batch_name": name})["id"])

    def task(self, env: str = "live", **extra: Any) -> str:
        body = {"attachment": IMAGE, "geometries": BOXES, **extra}
        return str(self.as_a("POST", "/v1/task/imageannotation", env, json=body)["task_id"])

    def completed_task(self) -> str:
        return self.task("test")  # test-mode tasks complete at once

    def file(self) -> str:
        files = {"file": ("a.png", io.BytesIO(PNG), "image/png")}
        return str(self.as_a("POST", "/v1/files/upload", files=files)["id"])

    def group(self, project: str) -> str:
        name = f"g-{uuid.uuid4().hex[:6]}"
        self.as_a("POST", f"/v1/studio/projects/{project}/groups", json={"name": name})
        return name

    def worker(self, org: Org) -> dict[str, str]:
        if org.org_id not in self._workers:
            self._workers[org.org_id] = login(self.http, make_worker(self.db, org.org_id))
        return self._workers[org.org_id]

    def fresh_worker_of_a(self) -> str:
        """Sign A's calls in as a new worker of A's own (the cases above may leave
        ``worker(a)`` signed in to another organization); returns the email."""
        email = make_worker(self.db, self.a.org_id)
        self._workers[self.a.org_id] = login(self.http, email)
        return email

    def pause(self) -> str:
        """A pause of A's (fresh) signed-in worker, from a project of A's that pauses below
        70% from four gold answers."""
        email = self.fresh_worker_of_a()
        project = f"wq-{uuid.uuid4().hex[:8]}"
        categorization_project(
            self.http, self.a.live_key, project, worker_quality={"min_accuracy": 0.7, "min_gold": 4}
        )
        pid = project_id(self.db, self.a.org_id, project)
        user = user_id(self.db, email)
        opened = None
        for _ in range(4):
            item = gold_item(self.http, self.a.live_key, project)
            opened = answer_gold(self.db, self.a.org_id, pid, item, user, "dog", "cat")
        assert opened is not None
        return opened

    def operator(self, org: Org) -> dict[str, str]:
        if org.org_id not in self._operators:
            email = make_worker(self.db, org.org_id, role="manager")
            self._operators[org.org_id] = login(self.http, email)
        return self._operators[org.org_id]

    def labeled_task(self, project: str | None = None) -> str:
        """A's task with a label, submitted through the work path by a labeler of A's own (the
        cases above may leave ``worker(a)`` signed in to another organization)."""
        if self._labeler is None:
            self._labeler = login(self.http, make_worker(self.db, self.a.org_id))
        project = project or self.project()
        self.task(project=project)
        headers = self._labeler
        lease = self.http.post("/api/work/next", params={"project": project}, headers=headers)
        assert lease.status_code == 200, lease.text
        r = self.http.post(
            f"/api/work/{lease.json()['assignment_id']}/submit",
            json={"response": {"annotations": []}},
            headers=headers,
        )
        assert r.status_code == 200, r.text
        return str(r.json()["task_id"])

    def review(self) -> str:
        """A's task waiting for review, leased to A's manager (who makes the calls)."""
        project = self.project(params={"review": {"mode": "all"}})
        self.labeled_task(project)
        r = self.http.post(
            "/api/review/next", params={"project": project}, headers=self.operator(self.a)
        )
        assert r.status_code == 200, r.text
        return str(r.json()["review_id"])

    def assignment(self) -> str:
        project = self.project()
        self.task(project=project)
        r = self.http.post(
            "/api/work/next", params={"project": project}, headers=self.worker(self.a)
        )
        assert r.status_code == 200, r.text
        return str(r.json()["assignment_id"])

    def other_session_of_a(self) -> str:
        """A second session of A's worker (the first one makes the calls)."""
        headers = self.worker(self.a)
        email = make_worker(self.db, self.a.org_id)
        self._workers[self.a.org_id] = headers = login(self.http, email)
        login(self.http, email)
        r = self.http.get("/api/auth/sessions", headers=headers)
        assert r.status_code == 200, r.text
        return str(next(s["id"] for s in r.json() if not s["current"]))

    def invitation(self) -> str:
        """An invitation from A to a person signed in elsewhere, who becomes A's worker here."""
        with self.db.unit_of_work() as session:
            elsewhere = accounts.create_organization(session, f"inv-{uuid.uuid4().hex[:8]}")
        email = make_worker(self.db, elsewhere.org.id)
        with self.db.unit_of_work() as session:
            invitations.invite(session, self.a.org_id, email, "annotator", now=datetime.now(UTC))
        self._workers[self.a.org_id] = headers = login(self.http, email)
        r = self.http.get("/api/invitations", headers=headers)
        assert r.status_code == 200, r.text
        (invitation,) = r.json()
        return str(invitation["id"])


def _tasks(w: World) -> list[Call]:
    project, batch = w.project(), w.batch()
    return [Call(query={"project": project}), Call(query={"batch": batch})]


def _v2_tasks(w: World) -> list[Call]:
    project, batch = w.project(), w.batch()
    return [
        Call(query={"project_name": project}),
        Call(query={"project_id": w.project_id(project)}),
        Call(query={"batch_name": batch}),
        Call(query={"batch_id": w.batch_id(batch)}),
    ]


def _v2_project(w: World) -> list[Call]:
    project = w.project()
    return [
        Call(query={"project_name": project}),
        Call(query={"project_id": w.project_id(project)}),
    ]


def _v2_batch_action(
    w: World, *, staging: bool = False, paused: bool = False, **extra: Any
) -> Call:
    batch_id = w.batch_id(w.batch(staging=staging))
    if paused:
        w.as_a("POST", "/v2/batch/pause", json={"batch_id": batch_id})
    return Call(json={"batch_id": batch_id, **extra})


def _report(w: World) -> list[Call]:
    """A project with a labeled task, read with A's live key and by A's manager."""
    project = w.project()
    w.labeled_task(project)
    return [Call(path={"name": project}, env=env) for env in ("live", "operator")]


Case = Callable[[World], Call | list[Call]] | str

#: (method, path) → how to call it with A's object, or why the route names no one's object.
CASES: dict[tuple[str, str], Case] = {
    # --- v1 tasks
    ("POST", "/v1/task/{task_type}"): lambda w: Call(
        path={"task_type": "imageannotation"},
        json={"attachment": IMAGE, "geometries": BOXES, "project": w.project()},
    ),
    ("POST", "/v1/evaluation_tasks/{task_type}"): "task_type names a task type, not an object",
    ("POST", "/v1/training_tasks/{task_type}"): "task_type names a task type, not an object",
    ("GET", "/v1/task/{task_id}"): lambda w: Call(path={"task_id": w.task()}),
    ("POST", "/v1/task/{task_id}/cancel"): lambda w: Call(path={"task_id": w.task()}),
    ("POST", "/v1/task/{task_id}/audit"): lambda w: Call(
        path={"task_id": w.completed_task()}, json={"accepted": True}, env="test"
    ),
    ("POST", "/v1/task/{task_id}/unique_id"): lambda w: Call(
        path={"task_id": w.task()}, json={"unique_id": uuid.uuid4().hex}
    ),
    ("DELETE", "/v1/task/{task_id}/unique_id"): lambda w: Call(
        path={"task_id": w.task(unique_id=uuid.uuid4().hex)}
    ),
    ("POST", "/v1/task/{task_id}/setMetadata"): lambda w: Call(
        path={"task_id": w.task()}, json={"k": "v"}
    ),
    ("POST", "/v1/task/{task_id}/tags"): lambda w: Call(path={"task_id": w.task()}, json=["t"]),
    ("PUT", "/v1/task/{task_id}/tags"): lambda w: Call(path={"task_id": w.task()}, json=["t"]),
    ("DELETE", "/v1/task/{task_id}/tags"): lambda w: Call(
        path={"task_id": w.task(tags=["t"])}, json=["t"]
    ),
    ("GET", "/v1/tasks"): _tasks,
    # --- v1 projects and batches
    ("GET", "/v1/projects/{name}"): lambda w: Call(path={"name": w.project()}),
    ("POST", "/v1/projects/{name}/setParams"): lambda w: Call(
        path={"name": w.project()}, json={"instruction": "new"}
    ),
    ("GET", "/v1/projects/{name}/taskTemplates"): lambda w: Call(
        path={"name": w.project(kind="textcollection")}
    ),
    ("GET", "/v1/batches"): lambda w: Call(query={"project": w.project()}),
    ("GET", "/v1/batches/{name}"): lambda w: Call(path={"name": w.batch()}),
    ("POST", "/v1/batches/{name}/finalize"): lambda w: Call(path={"name": w.batch(staging=True)}),
    ("GET", "/v1/batches/{name}/status"): lambda w: Call(path={"name": w.batch()}),
    ("POST", "/v1/batches/{name}/setMetadata"): lambda w: Call(
        path={"name": w.batch()}, json={"k": "v"}
    ),
    # --- v1 Studio
    ("GET", "/v1/studio/projects/{project}/groups"): lambda w: Call(path={"project": w.project()}),
    ("POST", "/v1/studio/projects/{project}/groups"): lambda w: Call(
        path={"project": w.project()}, json={"name": "g"}
    ),
    ("PUT", "/v1/studio/projects/{project}/groups/{group}"): lambda w: (
        lambda project: Call(path={"project": project, "group": w.group(project)}, json={})
    )(w.project()),
    ("PUT", "/v1/studio/batches/{batch}"): lambda w: Call(
        path={"batch": w.batch(studio=True)}, json={"groups": []}
    ),
    # --- v1 files
    ("GET", "/v1/files/{file_id}"): lambda w: Call(path={"file_id": w.file()}),
    ("HEAD", "/v1/files/{file_id}"): lambda w: Call(path={"file_id": w.file()}),
    # --- v2
    ("GET", "/v2/task"): lambda w: Call(query={"task_id": w.task()}),
    ("GET", "/v2/tasks"): _v2_tasks,
    ("POST", "/v2/task/metadata"): lambda w: Call(
        json={"task_id": w.task(), "metadata": {"k": "v"}}
    ),
    ("GET", "/v2/batch"): lambda w: Call(query={"batch_id": w.batch_id(w.batch())}),
    ("GET", "/v2/batches"): lambda w: Call(query={"project_name": w.project()}),
    ("POST", "/v2/batch"): lambda w: Call(
        json={"project_id": w.project_id(w.project()), "name": uuid.uuid4().hex}
    ),
    ("POST", "/v2/batch/finalize"): lambda w: _v2_batch_action(w, staging=True),
    ("POST", "/v2/batch/pause"): lambda w: _v2_batch_action(w),
    ("POST", "/v2/batch/resume"): lambda w: _v2_batch_action(w, paused=True),
    ("POST", "/v2/batch/cancel"): lambda w: _v2_batch_action(w),
    ("POST", "/v2/batch/metadata"): lambda w: _v2_batch_action(w, metadata={"k": "v"}),
    ("GET", "/v2/project"): _v2_project,
    # --- the worker API (a worker of B signed in, against A's objects)
    ("POST", "/api/work/next"): lambda w: Call(
        query={"project": w.project()}, env="session", ok=204
    ),
    ("POST", "/api/work/{assignment_id}/submit"): lambda w: Call(
        path={"assignment_id": w.assignment()},
        json={"response": {"annotations": []}},
        env="session",
    ),
    # A's worker holds one lease at a time: the heartbeat leaves it held, the release ends it.
    ("POST", "/api/work/{assignment_id}/heartbeat"): lambda w: Call(
        path={"assignment_id": w.assignment()}, env="session"
    ),
    ("POST", "/api/work/{assignment_id}/release"): lambda w: Call(
        path={"assignment_id": w.assignment()}, env="session"
    ),
    ("POST", "/api/work/{assignment_id}/skip"): lambda w: Call(
        path={"assignment_id": w.assignment()}, env="session"
    ),
    ("DELETE", "/api/auth/sessions/{session_id}"): lambda w: Call(
        path={"session_id": w.other_session_of_a()}, env="session", ok=204
    ),
    ("POST", "/api/invitations/{invitation_id}/accept"): lambda w: Call(
        path={"invitation_id": w.invitation()}, env="session"
    ),
    ("POST", "/api/invitations/{invitation_id}/decline"): lambda w: Call(
        path={"invitation_id": w.invitation()}, env="session", ok=204
    ),
    # --- the reviewer's path (a manager of B signed in, against A's reviews)
    ("POST", "/api/review/next"): lambda w: Call(
        query={"project": w.project()}, env="operator", ok=204
    ),
    # The heartbeat leaves the review held (the next case's review() returns it), the release
    # ends it.
    ("POST", "/api/review/{review_id}/heartbeat"): lambda w: Call(
        path={"review_id": w.review()}, env="operator"
    ),
    ("POST", "/api/review/{review_id}/release"): lambda w: Call(
        path={"review_id": w.review()}, env="operator"
    ),
    ("POST", "/api/review/{review_id}/accept"): lambda w: Call(
        path={"review_id": w.review()}, env="operator"
    ),
    ("POST", "/api/review/{review_id}/fix"): lambda w: Call(
        path={"review_id": w.review()},
        json={"response": {"annotations": []}},
        env="operator",
    ),
    ("POST", "/api/review/{review_id}/reject"): lambda w: Call(
        path={"review_id": w.review()}, json={"reason": "no"}, env="operator"
    ),
    # --- reports (an organization's key or its manager's session)
    ("GET", "/api/projects/{name}/progress"): _report,
    ("GET", "/api/projects/{name}/agreement"): _report,
    ("GET", "/api/projects/{name}/workers"): _report,
    ("GET", "/api/projects/{name}/review-queue"): _report,
    ("GET", "/api/tasks/{task_id}/labels"): lambda w: (
        lambda task: [Call(path={"task_id": task}, env=env) for env in ("live", "operator")]
    )(w.labeled_task()),
    # --- worker quality
    ("GET", "/api/work/quality"): lambda w: (
        lambda project: Call(query={"project": project}, env="session")
    )((w.fresh_worker_of_a(), w.project())[1]),
    ("POST", "/api/work/pauses/{pause_id}/appeal"): lambda w: Call(
        path={"pause_id": w.pause()}, json={"appeal": "please"}, env="session"
    ),
    ("GET", "/api/pauses"): lambda w: [
        Call(query={"project": w.project()}, env=env) for env in ("live", "operator")
    ],
    ("POST", "/api/pauses/{pause_id}/decide"): lambda w: Call(
        path={"pause_id": w.pause()}, json={"decision": "lift"}, env="operator"
    ),
}


def _object_params(entry: Any) -> list[str]:
    names = [m.group(1) for m in _PARAM.finditer(entry.path)]
    dependant = getattr(entry.route, "dependant", None)
    if dependant is not None:
        names += [q.alias for q in dependant.query_params if q.alias in OBJECT_QUERY]
    return names


def _guarded_operations(app: FastAPI) -> list[tuple[str, str, list[str]]]:
    return [
        (method, entry.path, _object_params(entry))
        for entry in route_table(app)
        if entry.credential not in (None, Credential.PUBLIC)
        for method in sorted(entry.methods)
    ]


def missing_cases(app: FastAPI) -> list[str]:
    return [
        f"{method} {path} (names {', '.join(params)})"
        for method, path, params in _guarded_operations(app)
        if params and (method, path) not in CASES
    ]


def test_every_route_that_names_an_object_has_an_isolation_case(server: LiveServer) -> None:
    missing = missing_cases(server.app)
    assert not missing, (
        "add an isolation case (tests/api/test_route_isolation.py CASES) for:\n"
        + "\n".join(missing)
    )
    served = {(method, path) for method, path, _ in _guarded_operations(server.app)}
    stale = sorted(set(CASES) - served)
    assert not stale, f"cases for routes that are not served (remove them): {stale}"


def test_the_case_check_catches_a_new_object_route() -> None:
    """The check above is not vacuous: new routes naming an object by path or query fail it."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    router = credential_router(Credential.API_KEY)

    @router.get("/v1/widgets/{widget_id}")
    async def widget(widget_id: str) -> None: ...

    @router.get("/v2/widgets")
    async def widgets(project_id: str | None = None, color: str | None = None) -> None: ...

    @router.get("/v1/task/{task_id}")
    async def listed(task_id: str) -> None: ...

    app.include_router(router)
    assert missing_cases(app) == [
        "GET /v1/widgets/{widget_id} (names widget_id)",
        "GET /v2/widgets (names project_id)",
    ]


def _request(w: World, org: Org, method: str, path: str, call: Call) -> httpx.Response:
    url = path
    for name, value in call.path.items():
        url = url.replace("{" + name + "}", value)
    credentials: dict[str, Any]
    if call.env == "session":
        credentials = {"headers": w.worker(org)}
    elif call.env == "operator":
        credentials = {"headers": w.operator(org)}
    else:
        credentials = {"auth": w.key(org, call.env)}
    return w.http.request(method, url, params=call.query, json=call.json, **credentials)


def test_another_organization_gets_404_for_every_object_of_an_organization(
    server: LiveServer, http: httpx.Client, db: Database, org: Org, other_org: Org
) -> None:
    world = World(http, db, org, other_org)
    wrong: list[str] = []
    for (method, path), case in CASES.items():
        if isinstance(case, str):
            continue
        built = case(world)
        for call in built if isinstance(built, list) else [built]:
            what = f"{method} {path} {call.path or ''}{call.query or ''}"
            as_b = _request(world, other_org, method, path, call)
            if as_b.status_code != 404:
                wrong.append(f"{what} as B: {as_b.status_code} {as_b.text[:160]}")
            elif method != "HEAD" and "error" not in as_b.json():
                wrong.append(f"{what} as B: 404 without an error body: {as_b.text[:160]}")
            as_a = _request(world, org, method, path, call)
            if as_a.status_code != call.ok:
                wrong.append(f"{what} as A: {as_a.status_code} {as_a.text[:160]}")
    assert not wrong, "\n".join(wrong)
