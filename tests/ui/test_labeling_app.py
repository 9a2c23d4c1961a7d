"""A worker signs in and labels categorization tasks in a real browser, by keyboard only; the
labels are read back through the API. Also: no page load between tasks, a submit made offline
is sent once the network returns and stored exactly once, and task data never runs as script."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page, expect

from steelyard.api.app import create_app
from steelyard.db.engine import Database
from tests.api.helpers import PASSWORD, auth, make_worker
from tests.api.serving import serving_app
from tests.conftest import LiveServer, Org
from tests.ui.conftest import axe_violations, screenshot

CATEGORIES = ["positive", "negative", "neutral"]


@dataclass
class Shop:
    server: LiveServer
    http: httpx.Client
    org: Org

    def project(self, **params: Any) -> str:
        name = f"ui-{uuid.uuid4().hex[:8]}"
        body = {"type": "categorization", "name": name, "params": {"categories": CATEGORIES}}
        body["params"].update(params)
        r = self.http.post("/v1/projects", json=body, auth=auth(self.org.live_key))
        assert r.status_code == 200, r.text
        return name

    def task(self, project: str, attachment: str, **extra: Any) -> str:
        body = {"project": project, "attachment": attachment, "attachment_type": "text", **extra}
        r = self.http.post("/v1/task/categorization", json=body, auth=auth(self.org.live_key))
        assert r.status_code == 200, r.text
        return str(r.json()["task_id"])

    def labels(self, task_id: str) -> list[dict[str, Any]]:
        r = self.http.get(f"/api/tasks/{task_id}/labels", auth=auth(self.org.live_key))
        assert r.status_code == 200, r.text
        return list(r.json())


@pytest.fixture
def shop(server: LiveServer, http: httpx.Client, org: Org) -> Shop:
    return Shop(server, http, org)


@pytest.fixture
def email(db: Database, org: Org) -> str:
    return make_worker(db, org.org_id)


def sign_in(page: Page, server: LiveServer, email: str, to: str = "/") -> None:
    page.goto(server.url + to)
    # Signed out, any page shows the sign-in form and remembers where it was going.
    expect(page).to_have_url(f"{server.url}/login?next={quote(to, safe='')}")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def mark_document(page: Page) -> None:
    """A flag that only a page load clears."""
    page.evaluate("window.__sameDocument = true")


def same_document(page: Page) -> bool:
    return bool(page.evaluate("window.__sameDocument === true"))


def outbox(page: Page) -> list[dict[str, Any]]:
    """Every queued submit on this browser (each worker has a queue of their own)."""
    raw = page.evaluate(
        "JSON.stringify(Object.keys(localStorage).filter(k => k.startsWith('steelyard.outbox'))"
        ".flatMap(k => JSON.parse(localStorage.getItem(k))))"
    )
    return list(json.loads(raw))


def test_sign_in_home_reload_and_sign_out(shop: Shop, page: Page, email: str) -> None:
    project = shop.project()
    sign_in(page, shop.server, email)
    expect(page.get_by_role("heading", name="Your projects")).to_be_visible()
    row = page.get_by_role("row").filter(has_text=project)
    expect(row).to_contain_text("categorization")
    expect(row).to_contain_text("open")
    screenshot(page, "home")
    page.reload()  # the session survives it
    expect(page.get_by_role("button", name=f"Start {project}")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    page.goto(shop.server.url + "/")
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()  # signed out for good


def test_keyboard_only_labeling_goes_to_the_next_task_without_a_page_load(
    shop: Shop, page: Page, email: str
) -> None:
    project = shop.project()
    tasks = [
        shop.task(project, f"review number {i}", instruction="Pick the tone") for i in range(3)
    ]
    sign_in(page, shop.server, email, f"/label?project={project}")
    task = page.get_by_test_id("task")
    expect(task).to_be_visible()
    mark_document(page)
    page.keyboard.press("?")
    expect(page.get_by_test_id("help")).to_contain_text("Ctrl + Enter")
    page.keyboard.press("Escape")
    page.keyboard.press("i")
    expect(page.get_by_test_id("instruction")).to_have_text("Pick the tone")
    screenshot(page, "label-categorization")
    seen: list[str] = []
    chosen = {}
    for i in range(3):
        expect(task).to_have_attribute("data-task-id", tasks[i])
        task_id = task.get_attribute("data-task-id")
        assert task_id is not None
        seen.append(task_id)
        key = str(i % 3 + 1)
        page.keyboard.press(key)
        expect(page.get_by_label(CATEGORIES[i % 3])).to_be_checked()
        chosen[task_id] = CATEGORIES[i % 3]
        page.keyboard.press("Control+Enter")
    expect(page.get_by_test_id("empty")).to_be_visible()
    assert same_document(page), "a submit loaded a page"
    assert seen == tasks
    for task_id, category in chosen.items():
        labels = shop.labels(task_id)
        assert [label["response"] for label in labels] == [{"category": category}]


def test_multiple_choice_toggles_and_skip_by_key(shop: Shop, page: Page, email: str) -> None:
    project = shop.project(allow_multiple=True)
    first = shop.task(project, "first")
    second = shop.task(project, "second")
    sign_in(page, shop.server, email, f"/label?project={project}")
    task = page.get_by_test_id("task")
    expect(task).to_have_attribute("data-task-id", first)
    page.keyboard.press("Control+Space")  # skip: never offered again
    expect(task).to_have_attribute("data-task-id", second)
    for key, chosen in (("1", True), ("3", True), ("2", True), ("2", False)):
        page.keyboard.press(key)  # the second 2 unchooses
        box = expect(page.get_by_label(CATEGORIES[int(key) - 1]))
        box.to_be_checked() if chosen else box.not_to_be_checked()
    page.keyboard.press("Control+Enter")
    expect(page.get_by_test_id("empty")).to_be_visible()
    assert shop.labels(first) == []
    assert [label["response"] for label in shop.labels(second)] == [
        {"category": ["positive", "neutral"]}
    ]


def test_an_offline_submit_is_sent_when_the_network_returns_and_stored_once(
    shop: Shop, page: Page, context: BrowserContext, email: str
) -> None:
    project = shop.project()
    first = shop.task(project, "offline one")
    second = shop.task(project, "online two")
    sign_in(page, shop.server, email, f"/label?project={project}")
    task = page.get_by_test_id("task")
    expect(task).to_have_attribute("data-task-id", first)
    mark_document(page)
    page.keyboard.press("2")
    context.set_offline(True)
    page.keyboard.press("Control+Enter")
    expect(page.get_by_test_id("waiting")).to_be_visible()
    assert [p["response"] for p in outbox(page)] == [{"category": "negative"}]
    assert shop.labels(first) == []
    context.set_offline(False)
    expect(task).to_have_attribute("data-task-id", second, timeout=20_000)
    assert outbox(page) == []
    assert [label["response"] for label in shop.labels(first)] == [{"category": "negative"}]
    assert same_document(page)


def test_a_submit_whose_answer_is_lost_is_resent_and_counted_once(
    shop: Shop, page: Page, email: str
) -> None:
    """The server stores the label but the answer never reaches the browser: the resend is
    answered 409 already_submitted, which the app takes as done."""
    project = shop.project()
    first = shop.task(project, "lost answer")
    second = shop.task(project, "next one")
    sign_in(page, shop.server, email, f"/label?project={project}")
    task = page.get_by_test_id("task")
    expect(task).to_have_attribute("data-task-id", first)
    submits: list[int] = []

    def drop_answer(route: Any) -> None:
        response = route.fetch()  # the server stores it...
        submits.append(response.status)
        if len(submits) == 1:
            route.abort()  # ...and the browser never hears
        else:
            route.fulfill(response=response)

    page.route("**/api/work/*/submit", drop_answer)
    page.keyboard.press("3")
    page.keyboard.press("Control+Enter")
    expect(task).to_have_attribute("data-task-id", second, timeout=20_000)
    assert submits == [200, 409]
    assert [label["response"] for label in shop.labels(first)] == [{"category": "neutral"}]
    assert outbox(page) == []


def test_script_in_task_data_never_runs(shop: Shop, page: Page, email: str) -> None:
    project = shop.project()
    evil = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'
    shop.task(project, evil, instruction=evil.replace("__pwned=", "__pwnedInstruction="))
    sign_in(page, shop.server, email, f"/label?project={project}")
    expect(page.get_by_test_id("attachment")).to_have_text(evil)  # shown as text
    page.keyboard.press("i")
    expect(page.get_by_test_id("instruction")).to_contain_text("<script>")
    page.wait_for_timeout(200)
    assert page.evaluate("[window.__pwned, window.__pwnedInstruction]") == [None, None]


def test_training_shows_the_expected_answer_then_live_work(
    shop: Shop, page: Page, email: str
) -> None:
    project = shop.project(qualification={"pass_mark": 0.5, "tasks": 1})
    r = shop.http.post(
        "/v1/training_tasks/categorization",
        auth=auth(shop.org.live_key),
        json={
            "project": project,
            "attachment": "a training review",
            "attachment_type": "text",
            "expected_response": {"category": "negative"},
        },
    )
    assert r.status_code == 200, r.text
    live = shop.task(project, "a live review")
    sign_in(page, shop.server, email)
    row = page.get_by_role("row").filter(has_text=project)
    expect(row).to_contain_text("training first: 1 task, pass mark 50%")
    page.get_by_role("button", name=f"Start {project}").click()
    expect(page.get_by_test_id("task")).to_contain_text("training 1 of 1")
    expect(page.get_by_test_id("attachment")).to_have_text("a training review")
    page.keyboard.press("2")
    page.keyboard.press("Control+Enter")
    feedback = page.get_by_test_id("feedback")
    expect(feedback).to_contain_text("Correct")
    expect(feedback).to_contain_text("expected negative")
    expect(feedback).to_contain_text("status passed")
    screenshot(page, "label-training-feedback")
    page.keyboard.press("Control+Enter")
    expect(page.get_by_test_id("task")).to_have_attribute("data-task-id", live)


def test_no_wcag_violations_on_sign_in_home_and_labeling(
    shop: Shop, page: Page, email: str
) -> None:
    project = shop.project()
    shop.task(project, "an accessible review", instruction="Pick the tone")
    page.goto(shop.server.url + "/login")
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    assert axe_violations(page) == []
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name=f"Start {project}")).to_be_visible()
    assert axe_violations(page) == []
    page.get_by_role("button", name=f"Start {project}").click()
    expect(page.get_by_test_id("task")).to_be_visible()
    page.keyboard.press("1")
    page.keyboard.press("i")
    page.keyboard.press("?")
    expect(page.get_by_test_id("help")).to_be_visible()
    assert axe_violations(page) == []


def test_heartbeat_while_visible_and_none_while_hidden(shop: Shop, page: Page, email: str) -> None:
    """On a server whose leases last 12 s the page beats every 5 s while it is visible."""
    project = shop.project()
    shop.task(project, "a slow review")
    short = shop.server.settings.model_copy(update={"lease_seconds": 12})
    app = create_app(short, run_jobs=False, migrate=False)
    beats: list[dict[str, Any]] = []
    page.on(
        "response",
        lambda r: beats.append(r.json()) if r.url.endswith("/heartbeat") and r.ok else None,
    )
    with serving_app(app) as url:
        page.goto(url + f"/label?project={project}")
        page.get_by_label("Email").fill(email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_test_id("task")).to_be_visible()
        deadline = time.monotonic() + 10
        while not beats and time.monotonic() < deadline:
            page.wait_for_timeout(200)
        assert beats and beats[0]["status"] == "active", beats
        page.evaluate(
            "Object.defineProperty(document, 'visibilityState', {get: () => 'hidden'});"
            "document.dispatchEvent(new Event('visibilitychange'))"
        )
        page.wait_for_timeout(300)  # a beat already on its way may still land
        before = len(beats)
        page.wait_for_timeout(6_000)
        assert len(beats) == before, "a hidden page beat"
