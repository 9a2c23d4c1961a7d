"""The reference pages: /docs, /openapi.json and the front page."""

from __future__ import annotations

import httpx

from tests.conftest import LiveServer

V1_PATHS = {
    "/v1/projects": {"get", "post"},
    "/v1/projects/{name}": {"get"},
    "/v1/projects/{name}/setParams": {"post"},
    "/v1/projects/{name}/taskTemplates": {"get"},
    "/v1/batches": {"get", "post"},
    "/v1/batches/{name}": {"get"},
    "/v1/batches/{name}/finalize": {"post"},
    "/v1/batches/{name}/status": {"get"},
    "/v1/batches/{name}/setMetadata": {"post"},
    "/v1/task/{task_type}": {"post"},
    "/v1/task/{task_id}": {"get"},
    "/v1/task/{task_id}/cancel": {"post"},
    "/v1/task/{task_id}/audit": {"post"},
    "/v1/task/{task_id}/unique_id": {"post", "delete"},
    "/v1/task/{task_id}/setMetadata": {"post"},
    "/v1/task/{task_id}/tags": {"post", "put", "delete"},
    "/v1/tasks": {"get"},
    "/v1/evaluation_tasks/{task_type}": {"post"},
    "/v1/training_tasks/{task_type}": {"post"},
    "/v1/teams": {"get"},
    "/v1/teams/invite": {"post"},
    "/v1/teams/set_role": {"post"},
    "/api/auth/login": {"post"},
    "/api/work/next": {"post"},
    "/api/work/{assignment_id}/submit": {"post"},
    "/api/projects/{name}/progress": {"get"},
    "/api/projects/{name}/agreement": {"get"},
    "/api/projects/{name}/workers": {"get"},
    "/api/tasks/{task_id}/labels": {"get"},
    "/api/work/quality": {"get"},
    "/api/work/pauses/{pause_id}/appeal": {"post"},
    "/api/pauses": {"get"},
    "/api/pauses/{pause_id}/decide": {"post"},
}


def test_openapi_lists_the_v1_paths(http: httpx.Client) -> None:
    r = http.get("/openapi.json")
    assert r.status_code == 200
    spec = r.json()
    assert spec["openapi"].startswith("3.")
    assert "api_instance_url" in spec["info"]["description"]
    paths = spec["paths"]
    for path, methods in V1_PATHS.items():
        assert path in paths, path
        assert methods <= set(paths[path]), (path, set(paths[path]))
    # every operation has a summary, so /docs reads like a reference
    for path, item in paths.items():
        for method, op in item.items():
            assert op.get("summary"), (method, path)
    # the HTML pages stay out of the API reference
    assert not {"/", "/about", "/login", "/label"} & set(paths)


def test_docs_page_loads(http: httpx.Client) -> None:
    r = http.get("/docs")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert "/openapi.json" in r.text
    assert http.get("/redoc").status_code == 200


def test_about_page_tells_how_to_connect(http: httpx.Client, server: LiveServer) -> None:
    r = http.get("/about")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert "api_instance_url" in r.text
    assert f"{server.url}/v1" in r.text
    assert "/docs" in r.text
    assert http.get("/healthz").json() == {"status": "ok"}


def test_reports_document_their_answers(http: httpx.Client) -> None:
    """The report routes describe who may call them and the shape of what they answer."""
    spec = http.get("/openapi.json").json()
    for path, schema in {
        "/api/projects/{name}/progress": "Progress",
        "/api/projects/{name}/agreement": "ProjectAgreement",
        "/api/projects/{name}/workers": "WorkerTable",
        "/api/projects/{name}/review-queue": "ReviewQueueOut",
    }.items():
        op = spec["paths"][path]["get"]
        assert "API key" in op["description"] and "manager" in op["description"], op
        ref = op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
        assert ref.endswith("/" + schema), ref
    labels = spec["paths"]["/api/tasks/{task_id}/labels"]["get"]["responses"]["200"]
    items = labels["content"]["application/json"]["schema"]["items"]["$ref"]
    label = spec["components"]["schemas"][items.rsplit("/", 1)[1]]
    assert set(label["properties"]) == {"worker", "response", "submitted_at", "superseded"}
