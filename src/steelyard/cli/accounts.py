"""``steelyard org|user|key …``: the operator's account commands.

Passwords are checked and hashed before a transaction opens (hashing is slow on purpose). An
email that already has an account is never given a new password here, nor added to another
organization without ``--existing``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from sqlalchemy.orm import Session

from steelyard.clock import SYSTEM_CLOCK
from steelyard.db.engine import Database
from steelyard.errors import Duplicate, SteelyardError

org_app = typer.Typer(help="Organizations.")
user_app = typer.Typer(help="Users: create, invite, deactivate, remove from an organization.")
key_app = typer.Typer(help="API keys: create, list, revoke.")
console = Console(stderr=True)
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
OrgOption = Annotated[str, typer.Option("--org", help="Organization name.")]
T = TypeVar("T")


def _fail(message: str, code: int = 1) -> NoReturn:
    console.print(f"[red]error:[/red] {message}")
    raise typer.Exit(code)


def _database() -> Database:
    from steelyard.cli.main import _database as migrated

    return migrated()


def _write(fn: Callable[[Session], T]) -> T:
    """``fn`` in one write transaction, a domain error printed and turned into exit code 1."""
    try:
        with _database().unit_of_work() as session:
            return fn(session)
    except SteelyardError as exc:
        _fail(exc.message)


def _emit(out: dict[str, Any] | list[dict[str, Any]], json_out: bool, text: str) -> None:
    typer.echo(json.dumps(out) if json_out else text)


@org_app.command("create")
def org_create(name: str, json_out: JsonFlag = False) -> None:
    """Create an organization with a live and a test API key (shown once)."""
    from steelyard.accounts import service

    def create(session: Session) -> dict[str, Any]:
        created = service.create_organization(session, name)
        return {
            "org": created.org.name,
            "org_id": created.org.id,
            "live_api_key": created.live_api_key,
            "test_api_key": created.test_api_key,
            "callback_auth_key": created.org.callback_auth_key,
        }

    out = _write(create)
    _emit(out, json_out, "\n".join(f"{k}: {v}" for k, v in out.items()))


@user_app.command("create")
def user_create(
    org: OrgOption,
    email: Annotated[str, typer.Option()],
    password: Annotated[
        str | None, typer.Option(help="The new account's password (not with --existing).")
    ] = None,
    role: Annotated[
        str, typer.Option(help="owner, admin, manager, reviewer or annotator.")
    ] = "annotator",
    existing: Annotated[
        bool,
        typer.Option(
            "--existing",
            help="The email already has an account: add it to ORG as it is (its password and "
            "other memberships are not touched).",
        ),
    ] = False,
    json_out: JsonFlag = False,
) -> None:
    """Create an account in an organization, or with --existing add an existing one to it."""
    from steelyard.accounts import passwords, service
    from steelyard.config import load_settings

    try:
        email = service.normalize_email(email)
        with _database().unit_of_work(write=False) as session:
            known = service.find_user(session, email) is not None
    except SteelyardError as exc:
        _fail(exc.message)
    if known and not existing:
        _fail(
            f"{email} already has an account; its password is never changed here. To add it "
            f"to {org} as it is, run again with --existing (and without --password), or invite "
            "it (steelyard user invite) so the person accepts."
        )
    if existing and password is not None:
        _fail("--existing never changes a password: leave out --password.")
    if not known and existing:
        _fail(f"{email} has no account yet: leave out --existing and give --password.")
    password_hash = None
    if not known:
        if password is None:
            _fail("A new account needs --password.")
        try:
            password_hash = passwords.new_password_hash(
                password, email=email, min_length=load_settings().password_min_length
            )
        except SteelyardError as exc:
            _fail(exc.message)

    def create(session: Session) -> dict[str, Any]:
        organization = service.get_organization_by_name(session, org)
        user = service.create_user(
            session,
            org_id=organization.id,
            email=email,
            password_hash=password_hash,
            role=role,
            existing=existing,
        )
        return {"user_id": user.id, "email": user.email, "org": organization.name, "role": role}

    out = _write(create)
    what = "Added the existing account" if existing else "Created"
    _emit({**out, "created": not existing}, json_out, f"{what} {email} ({role}) in {org}.")


@user_app.command("invite")
def user_invite(
    org: OrgOption,
    email: Annotated[str, typer.Option()],
    role: Annotated[str, typer.Option(help="The role offered.")] = "annotator",
    json_out: JsonFlag = False,
) -> None:
    """Invite an email to an organization and print the invitation token (shown once; inviting
    again renews it). The person accepts with POST /api/invitations/accept, or, signed in,
    from GET /api/invitations."""
    from steelyard.accounts import invitations, service

    def invite(session: Session) -> dict[str, Any]:
        organization = service.get_organization_by_name(session, org)
        token = invitations.invite(session, organization.id, email, role, now=SYSTEM_CLOCK.now())
        if token is None:
            raise Duplicate(f"{email} is already a member of {org}.", field="email")
        return {
            "org": organization.name,
            "email": email.strip().lower(),
            "role": role,
            "token": token,
        }

    out = _write(invite)
    _emit(out, json_out, f"Invited {out['email']} ({role}) to {org}. Token: {out['token']}")


def _set_active(email: str, active: bool, json_out: bool) -> None:
    from steelyard.accounts import service

    def change(session: Session) -> dict[str, Any]:
        user = service.set_user_active(session, email, active, now=SYSTEM_CLOCK.now())
        return {"email": user.email, "active": user.is_active}

    out = _write(change)
    state = "active again" if active else "deactivated; every session of it has ended"
    _emit(out, json_out, f"{out['email']} is {state}.")


@user_app.command("deactivate")
def user_deactivate(email: Annotated[str, typer.Option()], json_out: JsonFlag = False) -> None:
    """Deactivate an account: it can no longer sign in and its sessions end at once."""
    _set_active(email, False, json_out)


@user_app.command("activate")
def user_activate(email: Annotated[str, typer.Option()], json_out: JsonFlag = False) -> None:
    """Let a deactivated account sign in again."""
    _set_active(email, True, json_out)


@user_app.command("remove")
def user_remove(
    org: OrgOption, email: Annotated[str, typer.Option()], json_out: JsonFlag = False
) -> None:
    """Remove a member from an organization; its sessions there end at once."""
    from steelyard.accounts import service

    def remove(session: Session) -> dict[str, Any]:
        organization = service.get_organization_by_name(session, org)
        user = service.remove_member(session, organization.id, email, now=SYSTEM_CLOCK.now())
        return {"email": user.email, "org": organization.name, "removed": True}

    out = _write(remove)
    _emit(out, json_out, f"Removed {out['email']} from {org}.")


@key_app.command("create")
def key_create(
    org: OrgOption,
    test: Annotated[bool, typer.Option("--test", help="A test-environment key.")] = False,
    name: Annotated[str | None, typer.Option(help="A name to recognise the key by.")] = None,
    json_out: JsonFlag = False,
) -> None:
    """Create another API key for an organization (shown once)."""
    from steelyard.accounts import service

    def create(session: Session) -> str:
        organization = service.get_organization_by_name(session, org)
        return service.create_api_key(session, organization.id, is_test=test, name=name)

    key = _write(create)
    out = {"org": org, "api_key": key, "environment": "test" if test else "live"}
    _emit(out, json_out, key)


def _key_out(key: Any) -> dict[str, Any]:
    from steelyard.timefmt import iso

    return {
        "id": key.id,
        "last4": key.last4,
        "environment": "test" if key.is_test else "live",
        "name": key.name,
        "created_at": iso(key.created_at),
        "revoked_at": iso(key.revoked_at) if key.revoked_at else None,
    }


@key_app.command("list")
def key_list(org: OrgOption, json_out: JsonFlag = False) -> None:
    """List an organization's API keys (never the keys themselves: id, last 4, state)."""
    from steelyard.accounts import service

    def listing(session: Session) -> list[dict[str, Any]]:
        organization = service.get_organization_by_name(session, org)
        return [_key_out(k) for k in service.list_api_keys(session, organization.id)]

    keys = _write(listing)
    lines = [
        f"{k['id']}  …{k['last4']}  {k['environment']:4}  "
        f"{'revoked ' + k['revoked_at'] if k['revoked_at'] else 'active':32}  {k['name'] or ''}"
        for k in keys
    ]
    _emit(keys, json_out, "\n".join(lines) if lines else "No keys.")


@key_app.command("revoke")
def key_revoke(
    org: OrgOption,
    key_id: Annotated[str, typer.Argument(help="The key's id (see key list).")],
    json_out: JsonFlag = False,
) -> None:
    """Revoke an API key; it stops working at once on every serving process."""
    from steelyard.accounts import service

    def revoke(session: Session) -> dict[str, Any]:
        organization = service.get_organization_by_name(session, org)
        return _key_out(
            service.revoke_api_key(session, organization.id, key_id, now=SYSTEM_CLOCK.now())
        )

    out = _write(revoke)
    _emit(out, json_out, f"Revoked key {out['id']} (…{out['last4']}).")
