"""Scale v1 teams (teammates of the organization)."""

from __future__ import annotations

from typing import Any

from steelyard.accounts import service
from steelyard.api.auth import Credential, credential_router
from steelyard.api.deps import ActorDep, BodyDep, DbDep
from steelyard.api.scale_v1 import wire
from steelyard.errors import ValidationError
from steelyard.validation import json_object

router = credential_router(Credential.API_KEY, tags=["teams"])


def _body(body: Any) -> tuple[Any, str]:
    body = json_object(body)
    role = body.get("team_role")
    if not isinstance(role, str):
        raise ValidationError("'team_role' is required.", field="team_role")
    return body.get("emails"), role


@router.get("/teams", summary="List teammates")
def list_teammates(actor: ActorDep, db: DbDep) -> list[dict[str, Any]]:
    with db.unit_of_work(write=False) as session:
        return [wire.teammate(t) for t in service.list_team(session, actor.org_id)]


@router.post("/teams/invite", summary="Invite teammates")
def invite(actor: ActorDep, body: BodyDep, db: DbDep) -> list[dict[str, Any]]:
    emails, role = _body(body)
    with db.unit_of_work() as session:
        return [
            wire.teammate(t) for t in service.invite_teammates(session, actor.org_id, emails, role)
        ]


@router.post("/teams/set_role", summary="Change teammates' role")
def set_role(actor: ActorDep, body: BodyDep, db: DbDep) -> list[dict[str, Any]]:
    emails, role = _body(body)
    with db.unit_of_work() as session:
        return [
            wire.teammate(t)
            for t in service.set_teammate_roles(session, actor.org_id, emails, role)
        ]
