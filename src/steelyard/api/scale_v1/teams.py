"""Scale v1 teams: an organization's members and pending invitations (``accounts.team``).

Team management is a live-environment operation: a test key lists an empty team (so a client's
test-mode code keeps working) and is refused (403) when it invites or changes roles.
"""

from __future__ import annotations

from typing import Any

from steelyard.accounts import team
from steelyard.accounts.schemas import Actor
from steelyard.api.auth import Credential, credential_router
from steelyard.api.deps import ActorDep, BodyDep, ClockDep, DbDep
from steelyard.api.scale_v1 import wire
from steelyard.errors import Forbidden, ValidationError
from steelyard.validation import json_object

router = credential_router(Credential.API_KEY, tags=["teams"])


def _body(body: Any, *, invite: bool = False) -> team.TeamChange:
    """Checked before the transaction (emails normalized and bounded, the role known)."""
    body = json_object(body)
    role = body.get("team_role")
    if not isinstance(role, str):
        raise ValidationError("'team_role' is required.", field="team_role")
    return team.read_team_change(body.get("emails"), role, invite=invite)


def _live(actor: Actor) -> None:
    if actor.is_test:
        raise Forbidden(
            "Team management is a live operation: use a live API key (test keys see an empty "
            "team and cannot invite or change roles)."
        )


@router.get("/teams", summary="List teammates (members and pending invitations)")
def list_teammates(actor: ActorDep, db: DbDep, clock: ClockDep) -> list[dict[str, Any]]:
    if actor.is_test:
        return []
    with db.unit_of_work(write=False) as session:
        return [wire.teammate(t) for t in team.list_team(session, actor.org_id, now=clock.now())]


@router.post("/teams/invite", summary="Invite teammates (they accept to join)")
def invite(actor: ActorDep, body: BodyDep, db: DbDep, clock: ClockDep) -> list[dict[str, Any]]:
    _live(actor)
    change = _body(body, invite=True)
    with db.unit_of_work() as session:
        return [
            wire.teammate(t)
            for t in team.invite_teammates(session, actor.org_id, change, now=clock.now())
        ]


@router.post("/teams/set_role", summary="Change teammates' (or pending invitations') role")
def set_role(actor: ActorDep, body: BodyDep, db: DbDep, clock: ClockDep) -> list[dict[str, Any]]:
    _live(actor)
    change = _body(body)
    with db.unit_of_work() as session:
        return [
            wire.teammate(t)
            for t in team.set_teammate_roles(session, actor.org_id, change, now=clock.now())
        ]
