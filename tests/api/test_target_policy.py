"""Each app keeps its own rule for private callback and import targets.

The rule (``STEELYARD_ALLOW_PRIVATE_CALLBACKS``) used to be one process-wide switch that every
``create_app`` and every job runner set: building a strict app turned private targets off for
every other app in the process too (the suite's shared server then refused its own tests'
``127.0.0.1`` callbacks, depending on test order), and two apps in one process could not
differ. Here two apps with opposite settings run side by side, built in either order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from steelyard.api.app import create_app
from steelyard.config import load_settings
from tests.conftest import LiveServer, Org, basic
from tests.jobs.helpers import NewOrg, create_org, serve

PRIVATE_HOOK = "http://127.0.0.1:9/hook"
#: Nothing listens on port 9 here: an app that may call it fails to connect, after the check.
PRIVATE_FILE = "http://127.0.0.1:9/cat.png"


def _app(tmp: Path, *, allow_private: bool) -> FastAPI:
    settings = load_settings(
        data_dir=tmp / "data",
        database_url=f"sqlite:///{tmp / 'steelyard.db'}",
        allow_private_callbacks=allow_private,
        rate_limit_per_key=10**9,
        rate_limit_per_address=10**9,
        login_rate_limit_per_address=10**9,
    )
    return create_app(settings, run_jobs=False)


def _task(callback_url: str) -> dict[str, Any]:
    return {
        "attachment": "Is this positive?",
        "attachment_type": "text",
        "categories": ["yes", "no"],
        "callback_url": callback_url,
    }


def _create_task(url: str, key: str) -> httpx.Response:
    return httpx.post(
        f"{url}/v1/task/categorization", auth=basic(key), json=_task(PRIVATE_HOOK), timeout=30
    )


def _assert_strict(url: str, org: NewOrg) -> None:
    r = _create_task(url, org.live_key)
    assert r.status_code == 400, r.text
    assert r.json()["field"] == "callback_url"
    assert "not a public address" in r.json()["error"]
    r = httpx.post(
        f"{url}/v1/files/import",
        auth=basic(org.live_key),
        json={"file_url": PRIVATE_FILE},
        timeout=30,
    )
    assert r.status_code == 400, r.text
    assert "not a public address" in r.json()["error"]


def _assert_permissive(url: str, org: NewOrg) -> None:
    r = _create_task(url, org.live_key)
    assert r.status_code == 200, r.text
    assert r.json()["callback_url"] == PRIVATE_HOOK
    r = httpx.post(
        f"{url}/v1/files/import",
        auth=basic(org.live_key),
        json={"file_url": PRIVATE_FILE},
        timeout=30,
    )
    # Allowed, so it is dialled: nothing listens there.
    assert r.status_code == 400, r.text
    assert r.json()["field"] == "file_url"
    assert "not a public address" not in r.json()["error"]


@pytest.mark.parametrize("strict_first", [True, False], ids=["strict-first", "permissive-first"])
def test_two_apps_in_one_process_keep_their_own_rule(
    tmp_path: Path, server: LiveServer, org: Org, strict_first: bool
) -> None:
    if strict_first:
        strict = _app(tmp_path / "strict", allow_private=False)
        permissive = _app(tmp_path / "permissive", allow_private=True)
    else:
        permissive = _app(tmp_path / "permissive", allow_private=True)
        strict = _app(tmp_path / "strict", allow_private=False)
    with serve(strict) as s, serve(permissive) as p:
        s_org, p_org = create_org(strict.state.db), create_org(permissive.state.db)
        for _ in range(2):  # and again after the other app has answered
            _assert_strict(s.url, s_org)
            _assert_permissive(p.url, p_org)
    # The suite's shared server allows private targets, whatever was built since.
    r = _create_task(server.url, org.live_key)
    assert r.status_code == 200, r.text
