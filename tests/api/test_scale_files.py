"""Scenario 10, files: upload and import with the real client, tasks that use the file, and
links that a worker's browser can fetch."""

from __future__ import annotations

import base64
import io
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from scaleapi.exceptions import ScaleInvalidRequest, ScaleResourceNotFound

from tests.api.helpers import BOXES, auth, client, image_project, image_task
from tests.conftest import LiveServer, Org

#: A 1x1 transparent PNG.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)


@pytest.fixture
def image_host() -> Iterator[str]:
    """Serves ``/car.png`` (the PNG) on a loopback port; everything else is a 404."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/car.png":
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(PNG)))
                self.end_headers()
                self.wfile.write(PNG)
            else:
                self.send_response(404)
                self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_upload_then_label_the_file(server: LiveServer, org: Org) -> None:
    c = client(server, org.live_key)
    image_project(c, "p1")
    uploaded = c.upload_file(io.BytesIO(PNG), project_name="p1", display_name="car.png")
    assert uploaded.id
    assert uploaded.attachment_url
    # the link works without any credentials (a worker's browser fetches it)
    fetched = httpx.get(uploaded.attachment_url)
    assert fetched.status_code == 200
    assert fetched.content == PNG
    assert fetched.headers["content-type"].startswith("image/png")

    task = image_task(c, project="p1", attachment=uploaded.attachment_url, geometries=BOXES)
    assert task.params["attachment"] == uploaded.attachment_url
    listed = next(iter(c.get_tasks(project_name="p1")))  # include_attachment_url=True
    link = listed.as_dict()["attachment_url"]
    assert httpx.get(link).content == PNG


def test_import_from_a_url(server: LiveServer, org: Org, image_host: str) -> None:
    c = client(server, org.test_key)
    image_project(c, "p1")
    imported = c.import_file(f"{image_host}/car.png", project_name="p1")
    assert imported.id and imported.attachment_url
    assert httpx.get(imported.attachment_url).content == PNG
    task = image_task(c, project="p1", attachment=imported.attachment_url)
    assert task.status == "completed"
    with pytest.raises(ScaleInvalidRequest):
        c.import_file(f"{image_host}/missing.png")
    with pytest.raises(ScaleInvalidRequest):
        c.import_file("not a url")


def test_files_need_a_key_or_a_valid_link(
    server: LiveServer, org: Org, other_org: Org, http: httpx.Client
) -> None:
    c = client(server, org.live_key)
    uploaded = c.upload_file(io.BytesIO(PNG))
    own = http.get(f"/v1/files/{uploaded.id}", auth=auth(org.live_key))
    assert own.status_code == 200 and own.content == PNG
    assert http.get(f"/v1/files/{uploaded.id}", auth=auth(org.test_key)).status_code == 404
    assert http.get(f"/v1/files/{uploaded.id}", auth=auth(other_org.live_key)).status_code == 404
    assert http.get(f"/v1/files/{uploaded.id}").status_code == 401
    tampered = uploaded.attachment_url.replace("sig=", "sig=0")
    assert httpx.get(tampered).status_code == 403
    other = client(server, other_org.live_key)
    with pytest.raises(ScaleResourceNotFound):
        other.get_task(image_task(c, attachment=uploaded.attachment_url).id)


def test_upload_needs_a_file(http: httpx.Client, org: Org) -> None:
    r = http.post(
        "/v1/files/upload",
        data={"project_name": "p1"},
        files={"other": ("x", b"x")},
        auth=auth(org.test_key),
    )
    assert r.status_code == 400
    assert "file" in r.json()["error"]
