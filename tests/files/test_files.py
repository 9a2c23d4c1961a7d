"""Files: the store, uploads, imports (via httpx's mock transport), signed links and the API."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import scaleapi
from fastapi import FastAPI

from steelyard.accounts.schemas import Actor
from steelyard.api import errors
from steelyard.api.limits import FORM_OVERHEAD, BodyLimitMiddleware
from steelyard.api.scale_v1.files import router
from steelyard.clock import FrozenClock
from steelyard.config import Settings
from steelyard.db.engine import Database
from steelyard.errors import NotFound, TooLarge, ValidationError
from steelyard.files import service as files
from steelyard.files.store import LocalFileStore
from tests.jobs.helpers import Live, NewOrg, create_org, serve

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40
SECRET = "test-secret-key"
REMOTE = "https://93.184.215.14/images/cat.png"


def actor_of(org: NewOrg, *, is_test: bool = False) -> Actor:
    return Actor(org_id=org.org_id, is_test=is_test, kind="api_key", role="admin")


@pytest.fixture
def settings(job_settings: Settings) -> Settings:
    return job_settings.model_copy(update={"max_upload_bytes": 20_000})


# --- the store --------------------------------------------------------------------------------


def test_store_is_content_addressed_and_atomic(tmp_path: Path) -> None:
    store = LocalFileStore(tmp_path)
    first = store.put(PNG)
    again = store.put(io.BytesIO(PNG))
    streamed = store.put(iter([PNG[:100], PNG[100:]]))
    assert first == again == streamed
    assert first.size == len(PNG) and first.key.endswith(first.sha256)
    assert store.read(first.key) == PNG
    assert list((tmp_path / "tmp").iterdir()) == [], "no temporary files left behind"


def test_store_refuses_oversized_data_and_keeps_nothing(tmp_path: Path) -> None:
    store = LocalFileStore(tmp_path)
    with pytest.raises(TooLarge) as info:
        store.put(io.BytesIO(PNG), max_bytes=1000, field="file")
    assert info.value.field == "file"
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


@pytest.mark.parametrize("key", ["../../etc/passwd", "ab/cd/" + "0" * 63, "/abs/path"])
def test_store_rejects_keys_that_could_escape_its_root(tmp_path: Path, key: str) -> None:
    with pytest.raises(NotFound):
        LocalFileStore(tmp_path).path(key)


# --- the service ------------------------------------------------------------------------------


def test_upload_stores_identical_bytes_and_sniffs_the_type(
    fresh_db: Database, settings: Settings, new_org: NewOrg, clock: FrozenClock
) -> None:
    with fresh_db.unit_of_work() as session:
        row = files.store_upload(
            session,
            actor_of(new_org),
            settings,
            data=io.BytesIO(PNG),
            filename="file",
            content_type=None,
            fields={"project_name": "Cats", "reference_id": "r1", "metadata": "{}"},
            now=clock.now(),
        )
    assert (row.mime_type, row.size, row.display_name) == ("image/png", len(PNG), "file")
    assert (row.project_name, row.reference_id, row.is_test) == ("Cats", "r1", False)
    assert files.file_store(settings).read(row.storage_key) == PNG
    doc = files.file_to_scale(row, "https://x/v1/files/" + row.id)
    assert set(doc) == {
        "id",
        "attachment_url",
        "display_name",
        "project_name",
        "mime_type",
        "size",
        "created_at",
        "reference_id",
    }
    assert doc["created_at"] == "2026-01-01T00:00:00.000Z"


def test_upload_size_limit_names_the_file_field(
    fresh_db: Database, settings: Settings, new_org: NewOrg
) -> None:
    with pytest.raises(TooLarge) as info, fresh_db.unit_of_work() as session:
        files.store_upload(
            session,
            actor_of(new_org),
            settings,
            data=b"x" * (settings.max_upload_bytes + 1),
            filename="big.bin",
            content_type=None,
            fields={},
        )
    assert info.value.field == "file"


@pytest.mark.parametrize(
    ("filename", "content_type", "head", "expected"),
    [
        ("a.jpg", None, b"", "image/jpeg"),
        ("scan", "application/octet-stream", b"%PDF-1.7", "application/pdf"),
        ("x.png", "image/webp; charset=binary", b"", "image/webp"),
        (None, None, b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image/webp"),
        (None, None, b"\x00\x00\x00\x18ftypmp42", "video/mp4"),
        (None, "not a type", b"??", "application/octet-stream"),
    ],
)
def test_guess_mime(
    filename: str | None, content_type: str | None, head: bytes, expected: str
) -> None:
    assert files.guess_mime(filename, content_type, head) == expected


def test_files_are_scoped_to_organization_and_environment(
    fresh_db: Database, settings: Settings, new_org: NewOrg
) -> None:
    other = create_org(fresh_db)
    with fresh_db.unit_of_work() as session:
        row = files.store_upload(
            session,
            actor_of(new_org),
            settings,
            data=PNG,
            filename="cat.png",
            content_type=None,
            fields={},
        )
    with fresh_db.unit_of_work(write=False) as session:
        assert files.get_file(session, actor_of(new_org), row.id).id == row.id
        for stranger in (actor_of(other), actor_of(new_org, is_test=True)):
            with pytest.raises(NotFound):
                files.get_file(session, stranger, row.id)
        url = files.attachment_url(row, "https://labels.example", SECRET)
        assert files.resolve_attachment(session, new_org.org_id, url) is not None
        expired = f"https://old-host.example/v1/files/{row.id}?expires=1&sig=x"
        assert files.resolve_attachment(session, new_org.org_id, expired) is not None
        assert files.resolve_attachment(session, other.org_id, url) is None
        assert files.resolve_attachment(session, new_org.org_id, "https://x/cat.png") is None


def test_signed_links_expire_and_resist_tampering(clock: FrozenClock) -> None:
    url = files.attachment_url("a" * 24, "https://h/", SECRET, now=clock.now(), ttl_seconds=3600)
    assert url.startswith("https://h/v1/files/" + "a" * 24 + "?")
    query = parse_qs(urlsplit(url).query)
    expires, sig = query["expires"][0], query["sig"][0]
    assert int(expires) % 3600 == 0, "rounded to the hour so links are cacheable"
    now = clock.now()
    assert files.verify_signature("a" * 24, expires, sig, SECRET, now)
    assert not files.verify_signature("b" * 24, expires, sig, SECRET, now)
    assert not files.verify_signature("a" * 24, str(int(expires) + 3600), sig, SECRET, now)
    assert not files.verify_signature("a" * 24, expires, sig[:-1] + "0", SECRET, now)
    assert not files.verify_signature("a" * 24, expires, sig, "another-secret", now)
    assert not files.verify_signature("a" * 24, "soon", sig, SECRET, now)
    clock.advance(2 * 3600 + 1)
    assert not files.verify_signature("a" * 24, expires, sig, SECRET, clock.now())


Handler = Callable[[httpx.Request], httpx.Response]


def do_import(
    db: Database, settings: Settings, org: NewOrg, handler: Handler, url: str = REMOTE
) -> Any:
    # As the API does it: fetch with no transaction open, then insert the row.
    blob = files.fetch_url(settings, file_url=url, transport=httpx.MockTransport(handler))
    with db.unit_of_work() as session:
        return files.add_file(session, actor_of(org), blob, files.FileFields(display_name="Cat"))


def test_import_fetches_through_the_transport_and_follows_public_redirects(
    fresh_db: Database, settings: Settings, new_org: NewOrg
) -> None:
    seen: list[str] = []

    def remote(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        if request.url.path == "/images/cat.png":
            return httpx.Response(302, headers={"location": "/cdn/cat-1.png"})
        return httpx.Response(200, content=PNG, headers={"content-type": "image/png"})

    row = do_import(fresh_db, settings, new_org, remote)
    assert seen == [REMOTE, "https://93.184.215.14/cdn/cat-1.png"]
    assert (row.mime_type, row.size, row.display_name, row.source_url) == (
        "image/png",
        len(PNG),
        "Cat",
        REMOTE,
    )
    assert files.file_store(settings).read(row.storage_key) == PNG


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1/x.png", "http://169.254.169.254/latest/meta-data", "ftp://h/x"]
)
def test_import_refuses_private_targets(
    url: str, fresh_db: Database, settings: Settings, new_org: NewOrg
) -> None:
    def never(request: httpx.Request) -> httpx.Response:
        raise AssertionError("must not be fetched")

    with pytest.raises(ValidationError) as info:
        do_import(fresh_db, settings, new_org, never, url)
    assert info.value.field == "file_url"


def test_import_refuses_a_redirect_to_a_private_address(
    fresh_db: Database, settings: Settings, new_org: NewOrg
) -> None:
    def remote(request: httpx.Request) -> httpx.Response:
        assert request.url.host != "10.0.0.5", "the private hop must not be requested"
        return httpx.Response(301, headers={"location": "http://10.0.0.5/admin"})

    with pytest.raises(ValidationError) as info:
        do_import(fresh_db, settings, new_org, remote)
    assert info.value.field == "file_url"


def test_import_errors_name_file_url(
    fresh_db: Database, settings: Settings, new_org: NewOrg
) -> None:
    with pytest.raises(ValidationError, match="HTTP 404") as missing:
        do_import(fresh_db, settings, new_org, lambda r: httpx.Response(404))
    assert missing.value.field == "file_url"

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectTimeout("timed out")

    with pytest.raises(ValidationError, match="ConnectTimeout"):
        do_import(fresh_db, settings, new_org, down)
    big = b"x" * (settings.max_upload_bytes + 1)
    with pytest.raises(TooLarge) as large:
        do_import(fresh_db, settings, new_org, lambda r: httpx.Response(200, content=big))
    assert large.value.field == "file_url"


# --- the API ----------------------------------------------------------------------------------


def make_app(
    db: Database, settings: Settings, clock: FrozenClock, transport: httpx.BaseTransport | None
) -> FastAPI:
    """The state ``create_app`` sets, plus only this router (mounted as the lead mounts it)
    behind the body limit."""
    app = FastAPI()
    app.state.db = db
    app.state.settings = settings
    app.state.clock = clock
    app.state.http_transport = transport
    errors.install(app)
    app.include_router(router, prefix="/v1")
    app.add_middleware(
        BodyLimitMiddleware,
        max_body_bytes=settings.max_body_bytes,
        max_upload_bytes=settings.max_upload_bytes,
    )
    return app


def remote_png(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, content=PNG, headers={"content-type": "image/png"})


@pytest.fixture
def live(fresh_db: Database, settings: Settings, clock: FrozenClock) -> Iterator[Live]:
    with serve(make_app(fresh_db, settings, clock, httpx.MockTransport(remote_png))) as running:
        yield running


@pytest.fixture
def api(live: Live) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live.url, timeout=30) as client:
        yield client


def test_api_upload_then_download_with_the_signed_link(
    api: httpx.Client, live: Live, new_org: NewOrg, clock: FrozenClock, settings: Settings
) -> None:
    auth = (new_org.live_key, "")
    response = api.post(
        "/v1/files/upload",
        files={"file": ("cat.png", PNG)},
        data={"project_name": "Cats", "display_name": "A cat"},
        auth=auth,
    )
    assert response.status_code == 200, response.text
    doc = response.json()
    assert (doc["display_name"], doc["project_name"], doc["size"]) == ("A cat", "Cats", len(PNG))
    assert doc["mime_type"] == "image/png"
    link = doc["attachment_url"]
    assert link.startswith(f"{live.url}/v1/files/{doc['id']}?expires=")

    anonymous = api.get(link)
    assert anonymous.status_code == 200
    assert anonymous.content == PNG
    assert anonymous.headers["content-type"] == "image/png"
    assert anonymous.headers["x-content-type-options"] == "nosniff"
    assert anonymous.headers["content-disposition"].startswith("inline")
    assert "max-age=" in anonymous.headers["cache-control"]

    tampered = link[:-1] + ("0" if link[-1] != "0" else "1")
    assert api.get(tampered).status_code == 403
    assert api.get(f"/v1/files/{doc['id']}").status_code == 401, "no link, no key"
    assert api.get(f"/v1/files/{doc['id']}", auth=auth).content == PNG
    clock.advance(settings.file_url_ttl_seconds + 3600)
    assert api.get(link).status_code == 403, "expired"


def test_api_other_orgs_and_the_test_environment_get_404(
    api: httpx.Client, fresh_db: Database, new_org: NewOrg
) -> None:
    other = create_org(fresh_db)
    doc = api.post(
        "/v1/files/upload", files={"file": ("a.png", PNG)}, auth=(new_org.live_key, "")
    ).json()
    for key in (other.live_key, new_org.test_key):
        response = api.get(f"/v1/files/{doc['id']}", auth=(key, ""))
        assert response.status_code == 404
        assert response.json()["status_code"] == 404


def test_api_upload_limits_and_errors(
    api: httpx.Client, new_org: NewOrg, settings: Settings
) -> None:
    auth = (new_org.live_key, "")
    limit = settings.max_upload_bytes
    at_limit = api.post("/v1/files/upload", files={"file": ("ok", b"x" * limit)}, auth=auth)
    assert at_limit.status_code == 200 and at_limit.json()["size"] == limit
    # The form is within its bound (the limit and room for the framing): the file's own bytes
    # are what is counted.
    big = api.post("/v1/files/upload", files={"file": ("big", b"x" * (limit + 1))}, auth=auth)
    assert big.status_code == 413 and big.json()["field"] == "file"
    # A form past its bound is refused before it is read, declared or chunked.
    form = httpx.Request("POST", "/", files={"file": ("huge", b"x" * (limit + FORM_OVERHEAD))})
    payload, headers = form.read(), {"Content-Type": form.headers["content-type"]}
    for content in (payload, iter([payload])):
        r = api.post("/v1/files/upload", content=content, headers=headers, auth=auth)
        assert r.status_code == 413 and r.json()["field"] == "file", r.text
    missing = api.post("/v1/files/upload", data={"display_name": "x"}, auth=auth)
    assert missing.status_code == 400 and missing.json()["field"] == "file"
    assert api.post("/v1/files/upload", files={"file": ("a", b"a")}).status_code == 401


def test_api_html_is_served_as_an_inert_download(api: httpx.Client, new_org: NewOrg) -> None:
    auth = (new_org.live_key, "")
    html = b"<script>alert(document.cookie)</script>"
    doc = api.post("/v1/files/upload", files={"file": ("x.html", html)}, auth=auth).json()
    response = api.get(doc["attachment_url"])
    assert response.content == html
    assert response.headers["content-disposition"].startswith("attachment")
    assert "sandbox" in response.headers["content-security-policy"]


def test_api_import(api: httpx.Client, new_org: NewOrg) -> None:
    auth = (new_org.live_key, "")
    response = api.post(
        "/v1/files/import", json={"file_url": REMOTE, "reference_id": "r"}, auth=auth
    )
    assert response.status_code == 200, response.text
    doc = response.json()
    assert (doc["mime_type"], doc["display_name"], doc["reference_id"]) == (
        "image/png",
        "cat.png",
        "r",
    )
    assert api.get(doc["attachment_url"]).content == PNG

    refused = api.post("/v1/files/import", json={"file_url": "http://127.0.0.1:22/"}, auth=auth)
    assert refused.status_code == 400
    assert refused.json()["field"] == "file_url" and "file_url" in refused.json()["error"]
    assert api.post("/v1/files/import", json={}, auth=auth).json()["field"] == "file_url"


def test_the_official_client_uploads_and_imports(
    fresh_db: Database, settings: Settings, clock: FrozenClock, new_org: NewOrg
) -> None:
    """``scaleapi`` over real HTTP: its multipart upload (via requests) and its import call."""
    app = make_app(fresh_db, settings, clock, httpx.MockTransport(remote_png))
    with serve(app) as running:
        client = scaleapi.ScaleClient(
            new_org.live_key, source="pytest", api_instance_url=f"{running.url}/v1"
        )
        uploaded = client.upload_file(io.BytesIO(PNG), project_name="Cats", display_name="cat")
        assert uploaded.as_dict()["size"] == len(PNG)
        assert httpx.get(uploaded.attachment_url).content == PNG
        imported = client.import_file(REMOTE, project_name="Cats")
        assert imported.id != uploaded.id and imported.attachment_url
