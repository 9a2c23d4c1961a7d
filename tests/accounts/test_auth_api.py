"""Sign-in, sign-out, sessions, revocation and invitations over HTTP against the live server.

Every revocation must hold on the very next request (no cache may outlive it).
"""

from __future__ import annotations

import secrets
import statistics
import time

import httpx

from steelyard.accounts import invitations, signin
from steelyard.accounts import service as accounts
from steelyard.clock import SYSTEM_CLOCK
from steelyard.db.engine import Database
from tests.accounts.helpers import PASSWORD, person
from tests.api.helpers import auth, client, image_project, image_task
from tests.conftest import LiveServer, Org


def _login(http: httpx.Client, email: str, org: str | None = None, **extra: str) -> httpx.Response:
    body = {"email": email, "password": PASSWORD, **extra}
    if org is not None:
        body["org"] = org
    return http.post("/api/auth/login", json=body)


def _bearer(r: httpx.Response) -> dict[str, str]:
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def _works(http: httpx.Client, headers: dict[str, str]) -> int:
    return http.get("/api/auth/sessions", headers=headers).status_code


def test_sign_out_ends_the_session_at_once(http: httpx.Client, org: Org, db: Database) -> None:
    email = person(db, org.org_id)
    headers = _bearer(_login(http, email))
    assert _works(http, headers) == 200
    assert http.post("/api/auth/logout", headers=headers).status_code == 204
    assert _works(http, headers) == 401
    assert http.post("/api/work/next", headers=headers).status_code == 401


def test_my_sessions_can_be_listed_and_revoked(
    http: httpx.Client, org: Org, other_org: Org, db: Database
) -> None:
    email = person(db, org.org_id, other_org.org_id)
    here = _bearer(
        _login(
            http,
            email,
            org.name,
        )
    )
    there = _bearer(_login(http, email, other_org.org_id))
    listed = http.get("/api/auth/sessions", headers=here).json()
    assert {s["org"] for s in listed} == {org.name, other_org.name}
    assert [s["current"] for s in listed if s["org"] == org.name] == [True]
    theirs = next(s["id"] for s in listed if s["org"] == other_org.name)
    # nobody else can end my sessions
    stranger = _bearer(_login(http, person(db, org.org_id)))
    assert http.delete(f"/api/auth/sessions/{theirs}", headers=stranger).status_code == 404
    assert _works(http, there) == 200
    assert http.delete(f"/api/auth/sessions/{theirs}", headers=here).status_code == 204
    assert _works(http, there) == 401
    assert _works(http, here) == 200
    # an API key is not a session: nothing to list or sign out
    assert http.get("/api/auth/sessions", auth=auth(org.live_key)).status_code == 401


def test_deactivation_and_removal_end_sessions_at_once(
    http: httpx.Client, org: Org, other_org: Org, db: Database
) -> None:
    email = person(db, org.org_id, other_org.org_id)
    here = _bearer(_login(http, email, org.name))
    there = _bearer(_login(http, email, other_org.name))
    with db.unit_of_work() as session:
        accounts.remove_member(session, org.org_id, email, now=SYSTEM_CLOCK.now())
    assert _works(http, here) == 401
    assert _works(http, there) == 200  # another organization's session is not touched
    with db.unit_of_work() as session:
        accounts.set_user_active(session, email, False, now=SYSTEM_CLOCK.now())
    assert _works(http, there) == 401
    assert _login(http, email).status_code == 401
    with db.unit_of_work() as session:
        accounts.set_user_active(session, email, True, now=SYSTEM_CLOCK.now())
    assert _works(http, there) == 401  # reactivating does not bring old sessions back
    assert _login(http, email).status_code == 200  # the one organization left needs no choice


def test_a_revoked_key_fails_on_the_next_request(
    server: LiveServer, http: httpx.Client, org: Org, db: Database
) -> None:
    key = auth(org.live_key)
    assert http.get("/v1/projects", auth=key).status_code == 200  # now cached by the server
    with db.unit_of_work(write=False) as session:
        (live,) = [k for k in accounts.list_api_keys(session, org.org_id) if not k.is_test]
    with db.unit_of_work() as session:
        accounts.revoke_api_key(session, org.org_id, live.id, now=SYSTEM_CLOCK.now())
    assert http.get("/v1/projects", auth=key).status_code == 401
    assert http.get("/v1/projects", auth=auth(org.test_key)).status_code == 200


def test_the_token_is_valid_for_the_chosen_organization_only(
    server: LiveServer, http: httpx.Client, org: Org, other_org: Org, db: Database
) -> None:
    email = person(db, org.org_id, other_org.org_id)
    r = _login(http, email)
    assert r.status_code == 422 and r.json()["error"]["field"] == "org"
    assert org.name in r.json()["error"]["message"]
    assert other_org.name in r.json()["error"]["message"]
    c = client(server, org.live_key)
    image_project(c, "p1")
    task = image_task(c, project="p1")
    there = _bearer(_login(http, email, other_org.name))
    assert r.status_code == 422
    assert http.post("/api/work/next", headers=there).status_code == 204
    here = _bearer(_login(http, email, org.name))
    lease = http.post("/api/work/next", headers=here)
    assert lease.status_code == 200 and lease.json()["task"]["task_id"] == task.id


def test_failed_sign_ins_get_429_with_retry_after(
    http: httpx.Client, org: Org, db: Database
) -> None:
    email = person(db, org.org_id)
    for _ in range(signin.FREE_FAILURES):
        r = http.post("/api/auth/login", json={"email": email, "password": "not the password"})
        assert r.status_code == 401
    r = _login(http, email)
    assert r.status_code == 429, r.text
    assert 55 <= int(r.headers["Retry-After"]) <= 60
    assert r.json()["error"]["code"] == "rate_limited"


def _wrong_login_seconds(http: httpx.Client, email: str) -> float:
    start = time.perf_counter()
    r = http.post("/api/auth/login", json={"email": email, "password": "wrong password!"})
    elapsed = time.perf_counter() - start
    assert r.status_code == 401
    return elapsed


def test_an_unknown_email_costs_what_a_wrong_password_costs(
    http: httpx.Client, org: Org, db: Database
) -> None:
    """Unknown emails answered in 8 ms and wrong passwords in 114 ms: enumeration by timing."""
    real = person(db, org.org_id)
    _wrong_login_seconds(http, real)  # warm-up (the dummy hash is made on first use)
    # Interleaved, so that a busy machine slows both kinds alike; 7 + 1 failures stay under
    # the per-email throttle.
    unknown, wrong = [], []
    for _ in range(7):
        unknown.append(_wrong_login_seconds(http, f"nobody-{secrets.token_hex(6)}@example.com"))
        wrong.append(_wrong_login_seconds(http, real))
    u, w = statistics.median(unknown), statistics.median(wrong)
    assert abs(u - w) < 0.5 * max(u, w), (u, w)


def test_invitations_listed_accepted_and_declined_when_signed_in(
    http: httpx.Client, org: Org, other_org: Org, db: Database
) -> None:
    email = person(db, other_org.org_id)
    headers = _bearer(_login(http, email))
    with db.unit_of_work() as session:
        invitations.invite(session, org.org_id, email, "reviewer", now=SYSTEM_CLOCK.now())
    (mine,) = http.get("/api/invitations", headers=headers).json()
    assert (mine["org"], mine["role"]) == (org.name, "reviewer")
    # an API key or another person cannot accept it
    stranger = _bearer(_login(http, person(db, other_org.org_id)))
    assert http.post(f"/api/invitations/{mine['id']}/accept", headers=stranger).status_code == 404
    assert _login(http, email, org.name).status_code == 422  # not a member yet
    accepted = http.post(f"/api/invitations/{mine['id']}/accept", headers=headers)
    assert accepted.status_code == 200 and accepted.json()["org_id"] == org.org_id
    assert http.get("/api/invitations", headers=headers).json() == []
    assert _login(http, email, org.name).json()["role"] == "reviewer"
    # declining
    third = f"x-{secrets.token_hex(4)}"
    with db.unit_of_work() as session:
        created = accounts.create_organization(session, third)
        invitations.invite(session, created.org.id, email, "annotator", now=SYSTEM_CLOCK.now())
    (offer,) = http.get("/api/invitations", headers=headers).json()
    assert http.post(f"/api/invitations/{offer['id']}/decline", headers=headers).status_code == 204
    assert http.get("/api/invitations", headers=headers).json() == []
    assert _login(http, email, third).status_code == 422


def test_accepting_by_token_sets_a_password_that_follows_the_policy(
    http: httpx.Client, org: Org, db: Database
) -> None:
    email = f"new-{secrets.token_hex(5)}@example.com"
    with db.unit_of_work() as session:
        token = invitations.invite(session, org.org_id, email, "annotator", now=SYSTEM_CLOCK.now())
    for weak in ("password", "12345678", " " * 8, "x" * 20):
        r = http.post("/api/invitations/accept", json={"token": token, "password": weak})
        assert r.status_code == 422, r.text
        assert r.json()["error"]["field"] == "password"
    r = http.post("/api/invitations/accept", json={"token": token, "password": PASSWORD})
    assert r.status_code == 200, r.text
    assert r.json()["org_id"] == org.org_id
    assert _works(http, {"Authorization": f"Bearer {r.json()['token']}"}) == 200
    assert _login(http, email).status_code == 200


def test_changing_my_password_checks_both_and_ends_my_other_sessions(
    http: httpx.Client, org: Org, db: Database
) -> None:
    email = person(db, org.org_id)
    here, elsewhere = _bearer(_login(http, email)), _bearer(_login(http, email))

    def change(current: str, new: str) -> httpx.Response:
        body = {"current_password": current, "new_password": new}
        return http.post("/api/auth/password", json=body, headers=here)

    r = change("not my password", "a much better passphrase")
    assert r.status_code == 422 and r.json()["error"]["field"] == "current_password"
    r = change(PASSWORD, "password")
    assert r.status_code == 422 and r.json()["error"]["field"] == "password"
    assert _works(http, elsewhere) == 200
    assert change(PASSWORD, "a much better passphrase").status_code == 204
    assert _works(http, elsewhere) == 401
    assert _works(http, here) == 200
    assert _login(http, email).status_code == 401
    new = http.post(
        "/api/auth/login", json={"email": email, "password": "a much better passphrase"}
    )
    assert new.status_code == 200
