"""Races over real HTTP, on SQLite and PostgreSQL: threads released together by a barrier."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import httpx
import pytest
from sqlalchemy import func, select

from steelyard.accounts import security
from steelyard.accounts import service as accounts
from steelyard.db.engine import Database
from steelyard.workflow.models import Label
from tests.api.helpers import BOXES, IMAGE, PASSWORD, auth, make_worker
from tests.conftest import LiveServer, Org

T = TypeVar("T")
WORKERS = 50
TASK: dict[str, Any] = {"attachment": IMAGE, "geometries": BOXES}


def _submit_at_once(
    server: LiveServer, headers: dict[str, str], assignment_id: str, barrier: threading.Barrier
) -> int:
    """Submit an empty annotation the moment every racer is ready; the status code."""
    with httpx.Client(base_url=server.url, timeout=60) as c:
        c.get("/healthz")  # connect before the barrier, so the race is the requests
        barrier.wait()
        body = {"response": {"annotations": []}}
        return c.post(f"/api/work/{assignment_id}/submit", json=body, headers=headers).status_code


def race(n: int, job: Callable[[int, threading.Barrier], T]) -> list[T]:
    """Run ``job(i, barrier)`` in ``n`` threads; each calls ``barrier.wait()`` right before the
    request that races. Returns the results in thread order; re-raises a thread's exception."""
    barrier = threading.Barrier(n, timeout=60)
    results: list[Any] = [None] * n
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            results[i] = job(i, barrier)
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    if errors:
        raise errors[0]
    return results


def _post(
    server: LiveServer, path: str, body: Any, key: str, barrier: threading.Barrier
) -> httpx.Response:
    with httpx.Client(base_url=server.url, timeout=60) as http:
        http.get("/healthz")  # open the connection before the race
        barrier.wait()
        return http.post(path, json=body, auth=auth(key))


@pytest.mark.parametrize("attempt", range(4))
def test_one_unique_id_two_creates(
    server: LiveServer, org: Org, http: httpx.Client, attempt: int
) -> None:
    unique_id = f"race-{attempt}-{uuid.uuid4().hex[:6]}"
    body = {**TASK, "unique_id": unique_id}
    key = org.live_key if attempt % 2 else org.test_key
    responses = race(2, lambda _i, b: _post(server, "/v1/task/imageannotation", body, key, b))
    assert sorted(r.status_code for r in responses) == [200, 409], [r.text for r in responses]
    winner = next(r for r in responses if r.status_code == 200).json()
    loser = next(r for r in responses if r.status_code == 409).json()
    assert winner["task_id"] in loser["error"]
    found = http.get("/v1/tasks", params={"unique_id": unique_id}, auth=auth(key)).json()
    assert [d["task_id"] for d in found["docs"]] == [winner["task_id"]]
    assert http.get("/v1/tasks", params={"limit": 1}, auth=auth(key)).json()["total"] == 1


def test_many_creates_one_unique_id(server: LiveServer, org: Org, http: httpx.Client) -> None:
    body = {**TASK, "unique_id": "crowded"}
    responses = race(
        8, lambda _i, b: _post(server, "/v1/task/imageannotation", body, org.live_key, b)
    )
    assert Counter(r.status_code for r in responses) == {200: 1, 409: 7}, [
        r.text for r in responses
    ]
    assert http.get("/v1/tasks", params={"limit": 1}, auth=auth(org.live_key)).json()["total"] == 1


def test_one_unique_id_two_renames(server: LiveServer, org: Org, http: httpx.Client) -> None:
    key = auth(org.live_key)
    ids = [
        http.post("/v1/task/imageannotation", json=TASK, auth=key).json()["task_id"]
        for _ in range(2)
    ]
    responses = race(
        2,
        lambda i, b: _post(
            server, f"/v1/task/{ids[i]}/unique_id", {"unique_id": "wanted"}, org.live_key, b
        ),
    )
    assert sorted(r.status_code for r in responses) == [200, 409], [r.text for r in responses]
    holders = http.get("/v1/tasks", params={"unique_id": "wanted"}, auth=key).json()["docs"]
    assert len(holders) == 1


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/projects", {"name": "same-project", "type": "imageannotation"}),
        ("/v1/batches", {"name": "same-batch", "project": "base"}),
    ],
    ids=["project", "batch"],
)
def test_one_name_two_creates(
    server: LiveServer, org: Org, http: httpx.Client, path: str, body: dict[str, Any]
) -> None:
    key = auth(org.live_key)
    assert (
        http.post(
            "/v1/projects", json={"name": "base", "type": "imageannotation"}, auth=key
        ).status_code
        == 200
    )
    for attempt in range(3):
        named = {**body, "name": f"{body['name']}-{attempt}"}
        responses = race(2, lambda _i, b, named=named: _post(server, path, named, org.live_key, b))
        assert sorted(r.status_code for r in responses) == [200, 409], [r.text for r in responses]
        assert named["name"] in next(r for r in responses if r.status_code == 409).json()["error"]


# --- the labeling queue ------------------------------------------------------------------


@pytest.fixture(scope="module")
def password_hash() -> str:
    return security.hash_password(PASSWORD)


@pytest.fixture
def crowd(db: Database, password_hash: str) -> tuple[Org, list[str]]:
    """A fresh organization with fifty annotators (emails; the password is ``PASSWORD``)."""
    with db.unit_of_work() as session:
        created = accounts.create_organization(session, f"crowd-{uuid.uuid4().hex[:10]}")
        org = Org(
            name=created.org.name,
            org_id=created.org.id,
            live_key=created.live_api_key,
            test_key=created.test_api_key,
            callback_auth_key=created.org.callback_auth_key,
        )
    emails = [make_worker(db, org.org_id, password_hash=password_hash) for _ in range(WORKERS)]
    return org, emails


def _login_then_next(
    server: LiveServer, email: str, barrier: threading.Barrier
) -> tuple[dict[str, str], httpx.Response]:
    with httpx.Client(base_url=server.url, timeout=60) as http:
        r = http.post("/api/auth/login", json={"email": email, "password": PASSWORD})
        assert r.status_code == 200, r.text
        headers = {"Authorization": f"Bearer {r.json()['token']}"}
    # The race goes on a new connection: on a loaded machine the 50 sign-ins can take longer
    # than the server keeps an idle connection, and a request sent as it closes is reset.
    with httpx.Client(base_url=server.url, timeout=60) as http:
        barrier.wait()
        return headers, http.post("/api/work/next", headers=headers)


def _leases(
    server: LiveServer, emails: list[str]
) -> Iterator[tuple[dict[str, str], httpx.Response]]:
    yield from race(len(emails), lambda i, b: _login_then_next(server, emails[i], b))


def test_fifty_workers_one_task(
    server: LiveServer, http: httpx.Client, crowd: tuple[Org, list[str]]
) -> None:
    org, emails = crowd
    task = http.post("/v1/task/imageannotation", json=TASK, auth=auth(org.live_key)).json()
    results = list(_leases(server, emails))
    codes = Counter(r.status_code for _, r in results)
    assert codes == {200: 1, 204: WORKERS - 1}, codes
    headers, winner = next((h, r) for h, r in results if r.status_code == 200)
    assert winner.json()["task"]["task_id"] == task["task_id"]
    # the winner finishes it; nobody else ever held it
    done = http.post(
        f"/api/work/{winner.json()['assignment_id']}/submit",
        json={"response": {"annotations": []}},
        headers=headers,
    )
    assert done.status_code == 200, done.text
    assert (
        http.get(f"/v1/task/{task['task_id']}", auth=auth(org.live_key)).json()["status"]
        == "completed"
    )


def test_twenty_tasks_fifty_workers(
    server: LiveServer, http: httpx.Client, db: Database, crowd: tuple[Org, list[str]]
) -> None:
    org, emails = crowd
    created = {
        http.post("/v1/task/imageannotation", json=TASK, auth=auth(org.live_key)).json()["task_id"]
        for _ in range(20)
    }
    results = list(_leases(server, emails))
    codes = Counter(r.status_code for _, r in results)
    assert codes == {200: 20, 204: WORKERS - 20}, codes
    leased = [r.json()["task"]["task_id"] for _, r in results if r.status_code == 200]
    assert len(set(leased)) == 20, Counter(leased).most_common(3)
    assert set(leased) == created
    assignments = {r.json()["assignment_id"] for _, r in results if r.status_code == 200}
    assert len(assignments) == 20

    # everyone submits at once, and each submits twice: every label is stored exactly once
    winners = [(h, r.json()["assignment_id"]) for h, r in results if r.status_code == 200]

    def submit(i: int, barrier: threading.Barrier) -> int:
        return _submit_at_once(server, *winners[i // 2], barrier)

    statuses = race(2 * len(winners), submit)
    assert Counter(statuses) == {200: 20, 409: 20}, Counter(statuses)
    with db.unit_of_work(write=False) as session:
        labels = session.scalar(
            select(func.count()).select_from(Label).where(Label.org_id == org.org_id)
        )
    assert labels == 20
    done = http.get(
        "/v1/tasks", params={"status": "completed", "limit": 1}, auth=auth(org.live_key)
    ).json()
    assert done["total"] == 20


def test_last_tasks_finishing_together_complete_the_batch(
    server: LiveServer, http: httpx.Client, crowd: tuple[Org, list[str]]
) -> None:
    """Each submit counts the batch's pending tasks; two finishing at once must not each see
    the other still pending (PostgreSQL, read committed) and leave the batch in progress."""
    org, emails = crowd
    key = auth(org.live_key)
    assert (
        http.post(
            "/v1/projects", json={"name": "p", "type": "imageannotation"}, auth=key
        ).status_code
        == 200
    )
    for attempt in range(2):  # the window is narrow: this catches a regression only sometimes
        batch = f"b{attempt}"
        assert (
            http.post("/v1/batches", json={"project": "p", "name": batch}, auth=key).status_code
            == 200
        )
        for _ in range(10):
            assert (
                http.post(
                    "/v1/task/imageannotation", json={**TASK, "batch": batch}, auth=key
                ).status_code
                == 200
            )
        workers = emails[attempt * 10 : attempt * 10 + 10]
        leases = [(h, r.json()["assignment_id"]) for h, r in _leases(server, workers)]

        def submit(i: int, barrier: threading.Barrier, leases: Any = leases) -> int:
            return _submit_at_once(server, *leases[i], barrier)

        assert race(10, submit) == [200] * 10
        status = http.get(f"/v1/batches/{batch}/status", auth=key).json()
        assert (status["status"], status["completed"], status["pending"]) == ("completed", 10, 0)


def test_a_key_seen_by_many_requests_at_once_is_looked_up_once(
    server: LiveServer, org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The key cache is empty for a new key (as after it expires): concurrent requests with it
    share one database lookup, and a wrong key fails all of them alike."""
    authn = server.app.state.auth
    lookups: Counter[str] = Counter()
    real = authn._lookup

    def counting(kind: str, secret: str) -> Any:
        lookups[secret] += 1
        import time

        time.sleep(0.2)  # hold the lookup open while the others arrive
        return real(kind, secret)

    monkeypatch.setattr(authn, "_lookup", counting)

    def get(key: str) -> Callable[[int, threading.Barrier], int]:
        def job(_i: int, barrier: threading.Barrier) -> int:
            with httpx.Client(base_url=server.v1, timeout=30) as http:
                barrier.wait()
                return http.get("/projects", auth=auth(key)).status_code

        return job

    assert race(20, get(org.live_key)) == [200] * 20
    assert lookups[org.live_key] == 1
    assert race(20, get("live_" + "0" * 48)) == [401] * 20
    assert lookups["live_" + "0" * 48] <= 2  # failures are not cached; stragglers may retry
