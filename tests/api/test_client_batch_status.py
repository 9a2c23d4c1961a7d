"""Batch statuses across the two APIs (defect 12 of issue 7).

Each API reports its own spelling: v1 says ``canceled`` (the spelling of every other v1 status:
task status, the ``canceled`` count of ``batch_status``), v2 says ``cancelled`` (its client's
``BatchStatus`` enum refuses anything else). Both accept either spelling as a filter, and a
paused batch can be listed on both.
"""

from __future__ import annotations

import httpx
import pytest
import scaleapi
from scaleapi.api_client.v2 import BatchOperationRequest, BatchStatus
from scaleapi.exceptions import ScaleInvalidRequest

from tests.api.helpers import auth, image_project, name, scale_error
from tests.conftest import LiveServer, Org


def _client(server: LiveServer, key: str) -> scaleapi.ScaleClient:
    c = scaleapi.ScaleClient(key, source="pytest", api_instance_url=server.v1)
    c.v2.api_client.configuration.host = server.url
    return c


def _names(batches: list[scaleapi.batches.Batch]) -> list[str]:
    return [b.name for b in batches]


def test_paused_and_cancelled_batches_list_on_both_apis(
    server: LiveServer, org: Org, http: httpx.Client
) -> None:
    c = _client(server, org.live_key)
    project = image_project(c)
    running, paused, cancelled = name("run"), name("pause"), name("cancel")
    for batch in (running, paused, cancelled):
        c.create_batch(project, batch)
    c.v2.pause_batch(BatchOperationRequest(batch_name=paused))
    c.v2.cancel_batch(BatchOperationRequest(batch_name=cancelled))

    # v1, through the client: both spellings filter, v1's own spelling is reported
    for spelling in ("canceled", "cancelled"):
        page = c.batches(status=spelling)
        assert _names(page.docs) == [cancelled], spelling
        assert page.docs[0].status == "canceled"
    assert _names(c.batches(status="paused").docs) == [paused]
    assert c.batches(status="paused").docs[0].status == "paused"
    assert _names(c.batches(status="in_progress").docs) == [running]
    assert c.get_batch(cancelled).status == "canceled"
    assert c.batch_status(cancelled)["status"] == "canceled"

    # v2, through its client: its own spelling
    listed = c.v2.get_batches(project_name=project, status=BatchStatus.CANCELLED).batches
    assert [(b.name, b.status) for b in listed] == [(cancelled, BatchStatus.CANCELLED)]
    listed = c.v2.get_batches(project_name=project, status=BatchStatus.PAUSED).batches
    assert [(b.name, b.status) for b in listed] == [(paused, BatchStatus.PAUSED)]
    assert c.v2.get_batch(batch_name=cancelled).status == BatchStatus.CANCELLED

    # v2 takes v1's spelling as a filter too (its client cannot send it; curl can)
    bearer = {"Authorization": f"Bearer {org.live_key}"}
    r = http.get("/v2/batches", params={"status": "canceled"}, headers=bearer)
    assert r.status_code == 200, r.text
    assert [(b["name"], b["status"]) for b in r.json()["batches"]] == [(cancelled, "cancelled")]


def test_unknown_batch_status_is_400_naming_the_field(
    server: LiveServer, org: Org, http: httpx.Client
) -> None:
    c = _client(server, org.live_key)
    with pytest.raises(ScaleInvalidRequest) as info:
        c.batches(status="done")
    assert "status" in info.value.message
    assert "paused" in info.value.message  # the error lists what is accepted
    scale_error(http.get("/v1/batches", params={"status": "done"}, auth=auth(org.live_key)), 400)
    bearer = {"Authorization": f"Bearer {org.live_key}"}
    r = http.get("/v2/batches", params={"status": "done"}, headers=bearer)
    scale_error(r, 400, "status")
    assert r.json()["field"] == "status"
