"""Sign-in, sign-out, my sessions and my invitations (``/api/auth``, ``/api/invitations``).

The sign-in handlers are plain ``def``: FastAPI runs them in a worker thread, where
``accounts.signin`` verifies the password with no transaction open.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from pydantic import BaseModel, Field

from steelyard.accounts import invitations, sessions, signin
from steelyard.accounts.invitations import MyInvitation
from steelyard.accounts.sessions import SessionInfo
from steelyard.api.auth import Credential, credential_router
from steelyard.api.deps import ActorDep, ClockDep, DbDep, SettingsDep
from steelyard.timefmt import iso

#: Included by ``api.native.router`` (which adds the ``/api`` prefix). Signing out, sessions
#: and one's invitations take the session token; signing in (``public``) takes none.
router = credential_router(Credential.SESSION)
public = credential_router(Credential.PUBLIC)

#: Generous (the policy allows 1024 characters, and NFKC may expand), but bounded.
_MAX_PASSWORD = 4096


class LoginBody(BaseModel):
    email: str = Field(max_length=320)
    password: str = Field(max_length=_MAX_PASSWORD)
    org: str | None = Field(
        None,
        max_length=200,
        description="Organization (name or id) to sign in to; required when you belong to "
        "several. The token is valid for that organization only.",
    )


class TokenOut(BaseModel):
    token: str
    org: str
    org_id: str
    role: str


def _token_out(signed: signin.SignedIn) -> TokenOut:
    return TokenOut(token=signed.token, org=signed.org_name, org_id=signed.org_id, role=signed.role)


def _agent(request: Request) -> str | None:
    return request.headers.get("user-agent")


@public.post("/auth/login", tags=["auth"], summary="Sign in to one organization; returns a token")
def login(
    body: LoginBody, request: Request, db: DbDep, clock: ClockDep, settings: SettingsDep
) -> TokenOut:
    return _token_out(
        signin.sign_in(
            db,
            email=body.email,
            password=body.password,
            org=body.org,
            now=clock.now(),
            user_agent=_agent(request),
            free_failures=settings.login_failures_before_throttle,
        )
    )


@router.post("/auth/logout", tags=["auth"], summary="Sign out (revoke this token)", status_code=204)
def logout(actor: ActorDep, db: DbDep, clock: ClockDep) -> Response:
    with db.unit_of_work() as session:
        sessions.sign_out(session, actor, now=clock.now())
    return Response(status_code=204)


class PasswordBody(BaseModel):
    current_password: str = Field(max_length=_MAX_PASSWORD)
    new_password: str = Field(max_length=_MAX_PASSWORD)


@router.post(
    "/auth/password",
    tags=["auth"],
    summary="Change my password (my other sessions end)",
    status_code=204,
)
def change_password(
    body: PasswordBody, actor: ActorDep, db: DbDep, clock: ClockDep, settings: SettingsDep
) -> Response:
    signin.change_password(
        db,
        user_id=sessions.signed_in(actor),
        session_id=actor.session_id,
        current=body.current_password,
        new=body.new_password,
        now=clock.now(),
        min_length=settings.password_min_length,
        free_failures=settings.login_failures_before_throttle,
    )
    return Response(status_code=204)


def _session_out(s: SessionInfo) -> dict[str, Any]:
    return {
        "id": s.id,
        "org": s.org_name,
        "org_id": s.org_id,
        "created_at": iso(s.created_at),
        "expires_at": iso(s.expires_at),
        "user_agent": s.user_agent,
        "current": s.current,
    }


@router.get("/auth/sessions", tags=["auth"], summary="My active sessions")
def list_sessions(actor: ActorDep, db: DbDep, clock: ClockDep) -> list[dict[str, Any]]:
    with db.unit_of_work(write=False) as session:
        return [_session_out(s) for s in sessions.list_sessions(session, actor, now=clock.now())]


@router.delete(
    "/auth/sessions/{session_id}",
    tags=["auth"],
    summary="Revoke one of my sessions",
    status_code=204,
)
def revoke_session(session_id: str, actor: ActorDep, db: DbDep, clock: ClockDep) -> Response:
    with db.unit_of_work() as session:
        sessions.revoke_session(session, actor, session_id, now=clock.now())
    return Response(status_code=204)


def _invitation_out(i: MyInvitation) -> dict[str, Any]:
    return {
        "id": i.id,
        "org": i.org_name,
        "org_id": i.org_id,
        "role": i.role,
        "expires_at": iso(i.expires_at),
    }


@router.get("/invitations", tags=["invitations"], summary="Invitations to my email")
def my_invitations(actor: ActorDep, db: DbDep, clock: ClockDep) -> list[dict[str, Any]]:
    with db.unit_of_work(write=False) as session:
        return [_invitation_out(i) for i in invitations.list_mine(session, actor, now=clock.now())]


@router.post(
    "/invitations/{invitation_id}/accept", tags=["invitations"], summary="Accept an invitation"
)
def accept(invitation_id: str, actor: ActorDep, db: DbDep, clock: ClockDep) -> dict[str, Any]:
    with db.unit_of_work() as session:
        return _invitation_out(invitations.accept(session, actor, invitation_id, now=clock.now()))


@router.post(
    "/invitations/{invitation_id}/decline",
    tags=["invitations"],
    summary="Decline an invitation",
    status_code=204,
)
def decline(invitation_id: str, actor: ActorDep, db: DbDep, clock: ClockDep) -> Response:
    with db.unit_of_work() as session:
        invitations.decline(session, actor, invitation_id, now=clock.now())
    return Response(status_code=204)


class AcceptBody(BaseModel):
    token: str = Field(max_length=200, description="The invitation's token.")
    password: str = Field(
        max_length=_MAX_PASSWORD,
        description="A new password if you have no account yet; else your current password "
        "(it is not changed).",
    )


@public.post(
    "/invitations/accept",
    tags=["invitations"],
    summary="Accept an invitation by its token and sign in to that organization",
)
def accept_by_token(
    body: AcceptBody, request: Request, db: DbDep, clock: ClockDep, settings: SettingsDep
) -> TokenOut:
    return _token_out(
        signin.accept_invitation(
            db,
            token=body.token,
            password=body.password,
            now=clock.now(),
            min_length=settings.password_min_length,
            user_agent=_agent(request),
            free_failures=settings.login_failures_before_throttle,
        )
    )


router.include_router(public)
