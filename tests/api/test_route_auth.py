"""Every route of the application takes the credential its API takes, walked from the route table.

The table comes from ``api.auth.route_table`` (mounted routes included), so a route added later
is walked too: one that declares no credential, or the wrong one, fails here. Public routes are
listed below, each with the reason it needs no credential.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from fastapi import APIRouter, FastAPI

from steelyard.api.auth import Credential, RouteEntry, credential_router, route_table
from steelyard.db.engine import Database
from tests.api.helpers import auth, login, make_worker
from tests.conftest import LiveServer, Org

#: (method, path) → why it takes no credential. ``*`` stands for every method (a mount).
PUBLIC: dict[tuple[str, str], str] = {
    ("GET", "/about"): "says what runs here and how to point the client at it",
    ("GET", "/"): "the labeling app's page (its data comes from /api, with a session)",
    ("GET", "/login"): "the labeling app's sign-in page",
    ("GET", "/label"): "the labeling app's page (its data comes from /api, with a session)",
    ("*", "/assets"): "the labeling app's scripts and styles",
    ("GET", "/healthz"): "load balancers and orchestrators probe it without credentials",
    ("POST", "/api/auth/login"): "signing in is how a worker gets a session token",
    ("POST", "/api/invitations/accept"): "the invitation's own token is the credential",
    ("GET", "/openapi.json"): "the API's description: no data of anyone's",
    ("HEAD", "/openapi.json"): "the API's description: no data of anyone's",
    ("GET", "/docs"): "the API reference page (renders /openapi.json)",
    ("GET", "/docs/oauth2-redirect"): "part of the API reference page",
    ("GET", "/redoc"): "the API reference page (renders /openapi.json)",
    ("*", "/docs-assets"): "the reference pages' scripts and styles",
}

#: Routes that take something other than what their API's prefix says.
EXCEPTIONS: dict[tuple[str, str], Credential] = {
    # Signed download links carry their own signature (browsers send no key for an <img>);
    # without one the route takes an API key like the rest of /v1.
    ("GET", "/v1/files/{file_id}"): Credential.SIGNED_LINK,
    ("HEAD", "/v1/files/{file_id}"): Credential.SIGNED_LINK,
    # Reports read by customers (an API key) and by their operators (a manager's, admin's or
    # owner's session), never by annotators.
    ("GET", "/api/projects/{name}/progress"): Credential.OPERATOR,
    ("GET", "/api/projects/{name}/agreement"): Credential.OPERATOR,
    ("GET", "/api/projects/{name}/workers"): Credential.OPERATOR,
    ("GET", "/api/tasks/{task_id}/labels"): Credential.OPERATOR,
    ("GET", "/api/projects/{name}/review-queue"): Credential.OPERATOR,
    # Pauses for quality: operators list them and decide (the decision itself needs a person).
    ("GET", "/api/pauses"): Credential.OPERATOR,
    ("POST", "/api/pauses/{pause_id}/decide"): Credential.OPERATOR,
}

PREFIXES: dict[str, Credential] = {
    "/v1/": Credential.API_KEY,
    "/v2/": Credential.API_KEY,
    "/api/": Credential.SESSION,
}

_PARAM = re.compile(r"{([^}:]+)(:[^}]*)?}")


def _operations(app: FastAPI) -> Iterator[tuple[str, str, RouteEntry]]:
    for entry in route_table(app):
        for method in sorted(entry.methods) or ["*"]:
            yield method, entry.path, entry


def expected(method: str, path: str) -> Credential:
    if (method, path) in PUBLIC:
        return Credential.PUBLIC
    if (method, path) in EXCEPTIONS:
        return EXCEPTIONS[(method, path)]
    for prefix, credential in PREFIXES.items():
        if path.startswith(prefix):
            return credential
    raise AssertionError(
        f"{method} {path} is under no API prefix and not listed as public: "
        "say what it takes in PREFIXES, EXCEPTIONS or PUBLIC (with a reason)"
    )


def declaration_problems(app: FastAPI) -> list[str]:
    """Every route whose declared credential is not what this file expects of it."""
    problems = []
    for method, path, entry in _operations(app):
        want = expected(method, path)
        got = entry.credential
        if got is None and want is Credential.PUBLIC and not _is_api_route(entry):
            continue  # a framework route (the OpenAPI document, a static mount), listed above
        if got is not want:
            problems.append(
                f"{method} {path}: declares {got and got.value}, should take {want.value} "
                "(build its router with api.auth.credential_router)"
            )
    return problems


def _is_api_route(entry: RouteEntry) -> bool:
    from fastapi.routing import APIRoute

    return isinstance(getattr(entry.route, "original_route", None), APIRoute)


def concrete(path: str) -> str:
    return _PARAM.sub(
        lambda m: "imageannotation" if m.group(1) == "task_type" else "x-" + m.group(1), path
    )


def test_every_route_declares_the_credential_its_api_takes(server: LiveServer) -> None:
    problems = declaration_problems(server.app)
    assert not problems, "\n".join(problems)
    served = {(m, p) for m, p, _ in _operations(server.app)}
    stale = sorted(set(PUBLIC) - served)
    assert not stale, f"listed as public but not served (remove them): {stale}"


def test_a_route_that_declares_nothing_or_the_wrong_thing_is_caught() -> None:
    """The check above is not vacuous: a plain router, or a wrong declaration, fails it."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    plain = APIRouter()
    plain.add_api_route("/v1/new_thing/{thing_id}", lambda thing_id: thing_id, methods=["GET"])
    public = credential_router(Credential.PUBLIC)
    public.add_api_route("/api/work/peek", lambda: None, methods=["GET"])
    right = credential_router(Credential.SESSION)
    right.add_api_route("/api/work/fine", lambda: None, methods=["GET"])
    app.include_router(plain)
    app.include_router(public)
    app.include_router(right)
    problems = declaration_problems(app)
    assert len(problems) == 2, problems
    assert problems[0].startswith("GET /v1/new_thing/{thing_id}: declares None"), problems
    assert problems[1].startswith("GET /api/work/peek: declares public"), problems


def _guarded(app: FastAPI) -> list[tuple[str, str, Credential]]:
    return [
        (method, path, expected(method, path))
        for method, path, _ in _operations(app)
        if expected(method, path) is not Credential.PUBLIC
    ]


def _call(http: httpx.Client, method: str, path: str, **kwargs: object) -> httpx.Response:
    return http.request(method, concrete(path), **kwargs)  # type: ignore[arg-type]


def _message(response: httpx.Response) -> str:
    body = response.json()
    if isinstance(body.get("error"), dict):
        return str(body["error"]["message"])
    return str(body["error"])


def test_every_route_refuses_a_request_without_credentials(
    server: LiveServer, http: httpx.Client
) -> None:
    guarded = _guarded(server.app)
    assert len(guarded) > 50, guarded  # the walk found the application's routes
    wrong = []
    for method, path, credential in guarded:
        r = _call(http, method, path)
        if r.status_code != 401:
            wrong.append(f"{method} {path}: {r.status_code} {r.text[:200]}")
            continue
        if method == "HEAD":
            continue
        # /api challenges with Bearer (an operator's key works as Bearer too); /v1 and /v2 Basic.
        scheme = "Bearer" if path.startswith("/api/") else "Basic"
        if not r.headers.get("www-authenticate", "").startswith(scheme):
            wrong.append(f"{method} {path}: WWW-Authenticate {r.headers.get('www-authenticate')}")
        text = _message(r)
        # Each API names the credential it takes (an operator's route: both).
        words = {
            Credential.SESSION: ["POST /api/auth/login"],
            Credential.OPERATOR: ["API key", "POST /api/auth/login"],
        }.get(credential, ["API key"])
        for word in words:
            if word not in text:
                wrong.append(f"{method} {path}: the message does not say {word!r}: {text}")
    assert not wrong, "\n".join(wrong)


def test_public_routes_answer_without_credentials(server: LiveServer, http: httpx.Client) -> None:
    for method, path in PUBLIC:
        if method == "*":
            continue
        r = _call(http, method, path)
        # Login with no body is a 422, the rest answer 200: neither asks for credentials.
        assert r.status_code in (200, 422), (method, path, r.status_code, r.text[:200])


@pytest.fixture
def session_headers(http: httpx.Client, org: Org, db: Database) -> dict[str, str]:
    return login(http, make_worker(db, org.org_id))


def test_each_api_refuses_the_other_apis_credential(
    server: LiveServer, http: httpx.Client, org: Org, session_headers: dict[str, str]
) -> None:
    """A worker's session token is not an API key (it would let an annotator act as its
    organization on /v1), and an API key is not a session (401, as for any credential of the
    wrong kind for the API: the caller should sign in)."""
    wrong = []
    for method, path, credential in _guarded(server.app):
        if credential is Credential.OPERATOR:
            continue  # takes both (test_operator_routes_...)
        if credential is Credential.SESSION:
            attempts = {
                "Basic key": {"auth": auth(org.live_key)},
                "Bearer key": {"headers": {"Authorization": f"Bearer {org.test_key}"}},
            }
            word = "session token"
        else:
            attempts = {"session": {"headers": session_headers}}
            word = "not a session token"
        for label, kwargs in attempts.items():
            r = _call(http, method, path, **kwargs)
            if r.status_code != 401 or (method != "HEAD" and word not in _message(r)):
                wrong.append(f"{method} {path} with {label}: {r.status_code} {r.text[:200]}")
    assert not wrong, "\n".join(wrong)


def test_operator_routes_take_a_key_or_an_operators_session_never_an_annotators(
    server: LiveServer, http: httpx.Client, org: Org, db: Database, session_headers: dict[str, str]
) -> None:
    """An ``OPERATOR`` route lets an API key (Basic or Bearer) and a manager's session through
    authentication (the made-up names in the path then answer 404, a route without names
    200), and refuses an annotator's
    or a reviewer's session with 403 before it looks at the path."""
    operator_routes = [
        (method, path) for method, path, c in _guarded(server.app) if c is Credential.OPERATOR
    ]
    assert operator_routes, "no operator route found"
    reviewer = login(http, make_worker(db, org.org_id, role="reviewer"))
    manager = login(http, make_worker(db, org.org_id, role="manager"))
    wrong = []
    for method, path in operator_routes:
        let_in = {
            "Basic key": {"auth": auth(org.live_key)},
            "Bearer key": {"headers": {"Authorization": f"Bearer {org.test_key}"}},
            "manager session": {"headers": manager},
        }
        # A made-up name in the path is not found; a route that names nothing answers.
        through = 404 if "{" in path else 200
        for label, kwargs in let_in.items():
            r = _call(http, method, path, **kwargs)
            if r.status_code != through:
                wrong.append(f"{method} {path} with {label}: {r.status_code} {r.text[:200]}")
        for label, headers in {"annotator": session_headers, "reviewer": reviewer}.items():
            r = _call(http, method, path, headers=headers)
            if r.status_code != 403 or label not in _message(r):
                wrong.append(f"{method} {path} as {label}: {r.status_code} {r.text[:200]}")
    assert not wrong, "\n".join(wrong)
