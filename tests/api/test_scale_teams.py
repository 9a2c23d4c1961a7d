"""Teams (the teammates part of scenario 10) with the real client."""

from __future__ import annotations

import uuid

import httpx
import pytest
from scaleapi.exceptions import ScaleInvalidRequest, ScaleResourceNotFound, ScaleUnauthorized
from scaleapi.teams import TeammateRole

from steelyard.db.engine import Database
from tests.api.helpers import auth, client, login, make_worker, scale_error
from tests.conftest import LiveServer, Org


def _email() -> str:
    return f"t-{uuid.uuid4().hex[:10]}@example.com"


def test_invite_and_change_roles(server: LiveServer, org: Org) -> None:
    c = client(server, org.live_key)
    assert c.list_teammates() == []
    x, y = _email(), _email()
    team = c.invite_teammates([x, y.upper()], TeammateRole.Labeler)  # emails are case-insensitive
    roles = {t.email: t.role for t in team}
    assert roles == {x: "labeler", y: "labeler"}
    assert all(t.is_studio_labeler for t in team)

    team = c.update_teammates_role([x], TeammateRole.Manager)
    assert {t.email: t.role for t in team} == {x: "manager", y: "labeler"}
    assert {t.email: t.role for t in c.list_teammates()} == {x: "manager", y: "labeler"}
    member = next(t for t in c.list_teammates() if t.email == y)
    member.update_teammate_role(TeammateRole.Admin)
    assert {t.email: t.role for t in c.list_teammates()}[y] == "admin"

    # inviting someone who is already a member changes nothing
    again = c.invite_teammates([x], TeammateRole.Labeler)
    assert {t.email: t.role for t in again}[x] == "manager"
    # the test key sees the same team: teams belong to the organization
    assert {t.email for t in client(server, org.test_key).list_teammates()} == {x, y}


def test_team_errors(server: LiveServer, org: Org, http: httpx.Client) -> None:
    c = client(server, org.live_key)
    with pytest.raises(ScaleResourceNotFound) as info:
        c.update_teammates_role([_email()], TeammateRole.Admin)
    assert "member" in info.value.message
    with pytest.raises(ScaleInvalidRequest):
        c.invite_teammates([], TeammateRole.Labeler)
    with pytest.raises(ScaleInvalidRequest) as bad:
        c.invite_teammates(["not-an-email"], TeammateRole.Labeler)
    assert "not-an-email" in bad.value.message
    key = auth(org.live_key)
    scale_error(
        http.post("/v1/teams/invite", json={"emails": [_email()], "team_role": "boss"}, auth=key),
        400,
        "team_role",
    )
    scale_error(
        http.post("/v1/teams/invite", json={"emails": [_email()]}, auth=key), 400, "team_role"
    )
    scale_error(
        http.post("/v1/teams/invite", json={"emails": "a@b.co", "team_role": "labeler"}, auth=key),
        400,
        "emails",
    )
    scale_error(http.post("/v1/teams/set_role", json=["x"], auth=key), 400, "body")
    assert c.list_teammates() == []


def test_teams_are_per_organization(server: LiveServer, org: Org, other_org: Org) -> None:
    email = _email()
    client(server, org.live_key).invite_teammates([email], TeammateRole.Member)
    other = client(server, other_org.live_key)
    assert other.list_teammates() == []
    with pytest.raises(ScaleResourceNotFound):
        other.update_teammates_role([email], TeammateRole.Admin)
    # the same person may belong to two organizations, with different roles
    assert {t.email: t.role for t in other.invite_teammates([email], TeammateRole.Admin)} == {
        email: "admin"
    }
    assert {t.email: t.role for t in client(server, org.live_key).list_teammates()} == {
        email: "member"
    }


def test_worker_sessions_cannot_use_the_scale_api(
    http: httpx.Client, org: Org, db: Database
) -> None:
    """The Scale API takes API keys; a worker's session token must not reach it (an annotator
    could otherwise promote itself with ``teams/set_role``)."""
    email = make_worker(db, org.org_id)
    headers = login(http, email)
    scale_error(http.get("/v1/teams", headers=headers), 401)
    scale_error(
        http.post(
            "/v1/teams/set_role", json={"emails": [email], "team_role": "admin"}, headers=headers
        ),
        401,
    )
    scale_error(http.get("/v1/tasks", headers=headers), 401)
    scale_error(
        http.post("/v1/projects", json={"name": "x", "type": "imageannotation"}, headers=headers),
        401,
    )
    # Task create checks the key in its own handler (it skips the router's dependencies).
    task = {
        "attachment": "https://example.com/a.jpg",
        "geometries": {"box": {"objects_to_annotate": ["x"]}},
    }
    scale_error(http.post("/v1/task/imageannotation", json=task, headers=headers), 401)
    roles = {t["email"]: t["role"] for t in http.get("/v1/teams", auth=auth(org.live_key)).json()}
    assert roles == {email: "labeler"}


def test_unauthorized_team_calls(server: LiveServer) -> None:
    import scaleapi

    c = scaleapi.ScaleClient("live_" + "0" * 48, api_instance_url=server.v1)
    with pytest.raises(ScaleUnauthorized):
        c.list_teammates()
