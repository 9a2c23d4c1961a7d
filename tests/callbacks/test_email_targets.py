"""An email callback without SMTP is refused at create, naming the field (issue 7, item 12).

The shared test server has no ``STEELYARD_SMTP_URL``; the configured case is in
``tests/api/test_batch_callback_dns.py`` (an app with SMTP) and ``test_targets.py``.
"""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import Org, basic

EMAIL = "ops@example.com"


@pytest.fixture
def project(http: httpx.Client, org: Org) -> str:
    r = http.post(
        "/v1/projects", auth=basic(org.live_key), json={"name": "p", "type": "categorization"}
    )
    assert r.status_code == 200, r.text
    return "p"


def _refused(r: httpx.Response, field: str) -> None:
    assert r.status_code == 400, r.text
    assert r.json()["field"] == field
    assert "STEELYARD_SMTP_URL" in r.json()["error"]


def test_a_task_with_an_email_callback_is_refused(
    http: httpx.Client, org: Org, project: str
) -> None:
    body = {
        "project": project,
        "attachment": "Is this positive?",
        "attachment_type": "text",
        "categories": ["yes", "no"],
        "callback_url": EMAIL,
    }
    _refused(
        http.post("/v1/task/categorization", auth=basic(org.live_key), json=body), "callback_url"
    )
    assert http.get("/v1/tasks", auth=basic(org.live_key)).json()["docs"] == []


def test_a_batch_with_an_email_callback_is_refused_on_v1_and_v2(
    http: httpx.Client, org: Org, project: str
) -> None:
    auth = basic(org.live_key)
    v1 = {"project": project, "name": "b1", "callback": EMAIL}
    _refused(http.post("/v1/batches", auth=auth, json=v1), "callback")
    v2 = {"project_name": project, "name": "b2", "callback": EMAIL}
    _refused(http.post("/v2/batch", auth=auth, json=v2), "callback")
    assert http.get("/v1/batches", auth=auth).json()["docs"] == []
