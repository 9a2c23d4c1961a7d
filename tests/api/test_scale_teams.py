"""Teams (the teammates part of scenario 10) with the real client."""

from __future__ import annotations

import uuid

import httpx
import pytest
from scaleapi.exceptions import ScaleInvalidRequest, ScaleResourceNotFound, ScaleUnauthorized
from scaleapi.teams import TeammateRole

from steelyard.db.engine import Database
from tests.api.helpers import PASSWORD, auth, client, login, make_worker, scale_error
from tests.conftest import LiveServer, Org


def _email() -> str:
    return f"t-{uuid.uuid4().hex[:10]}@example.com"


def test_invite_and_change_roles(server: LiveServer, org: Org, db: Database) -> None:
    c = client(server, org.live_key)
    assert c.list_teammates() == []
    x, y = _email(), _email()
    team = c.invite_teammates([x, y.upper()], TeammateRole.Labeler)  # emails are case-insensitive
    roles = {t.email: t.role for t in team}
    assert roles == {x: "labeler", y: "labeler"}
    assert all(t.is_studio_labeler for t in team)
    # invitees are pending until they accept: listed, with the invitation's expiry
    assert all(t.expiry for t in team)

    team = c.update_teammates_role([x], TeammateRole.Manager)  # a pending invitation's role
    assert {t.email: t.role for t in team} == {x: "manager", y: "labeler"}
    assert {t.email: t.role for t in c.list_teammates()} == {x: "manager", y: "labeler"}
    member_email = make_worker(db, org.org_id)
    member = next(t for t in c.list_teammates() if t.email == member_email)
    assert member.role == "labeler" and member.expiry is None
    member.update_teammate_role(TeammateRole.Admin)
    assert {t.email: t.role for t in c.list_teammates()}[member_email] == "admin"

    # inviting someone who is already a member changes nothing
    again = c.invite_teammates([member_email], TeammateRole.Labeler)
    assert {t.email: t.role for t in again}[member_email] == "admin"


def test_team_management_is_live_only(server: LiveServer, org: Org, http: httpx.Client) -> None:
    """A test key must not change the live team (it promoted a live annotator to admin)."""
    live = client(server, org.live_key)
    email = _email()
    live.invite_teammates([email], TeammateRole.Labeler)
    test = client(server, org.test_key)
    assert test.list_teammates() == []  # test-mode code that lists the team keeps working
    key = auth(org.test_key)
    for path in ("/v1/teams/invite", "/v1/teams/set_role"):
        r = http.post(path, json={"emails": [email], "team_role": "admin"}, auth=key)
        scale_error(r, 403, "live")
    assert {t.email: t.role for t in live.list_teammates()} == {email: "labeler"}


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
    # the same person may be invited by two organizations, with different roles
    assert {t.email: t.role for t in other.invite_teammates([email], TeammateRole.Admin)} == {
        email: "admin"
    }
    assert {t.email: t.role for t in client(server, org.live_key).list_teammates()} == {
        email: "member"
    }


def test_inviting_another_organizations_member_does_not_make_them_ours(
    server: LiveServer, org: Org, other_org: Org, http: httpx.Client, db: Database
) -> None:
    """Defect 5: any organization could add another organization's existing user to its team."""
    email = make_worker(db, other_org.org_id)
    team = client(server, org.live_key).invite_teammates([email], TeammateRole.Admin)
    assert next(t for t in team if t.email == email).expiry  # pending, not a member
    # the person still signs in to their own organization only, and cannot choose ours
    r = http.post("/api/auth/login", json={"email": email, "password": PASSWORD})
    assert r.status_code == 200 and r.json()["org_id"] == other_org.org_id
    r = http.post("/api/auth/login", json={"email": email, "password": PASSWORD, "org": org.name})
    assert r.status_code == 422 and r.json()["error"]["field"] == "org"
    assert org.name not in r.json()["error"]["message"].split(": ", 1)[1]


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
