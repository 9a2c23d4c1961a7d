"""``/v1/files``: upload, import from a URL, and download (API key or signed link)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import Request
from fastapi.responses import FileResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from steelyard.accounts.schemas import Actor
from steelyard.api.auth import ActorDep, Credential, LinkOrActorDep, credential_router
from steelyard.api.deps import BodyDep, ClockDep, DbDep, SettingsDep
from steelyard.clock import Clock
from steelyard.config import Settings
from steelyard.db.engine import Database
from steelyard.errors import NotFound, ValidationError
from steelyard.files import service as files
from steelyard.files.models import StoredFile
from steelyard.files.store import FileStore, LocalFileStore
from steelyard.validation import json_object, require_str

#: Like the rest of ``/v1``: API keys only, never a worker's session token.
router = credential_router(Credential.API_KEY)
#: Downloads also open with a signed link and no credentials (browsers fetch them for ``<img>``).
links = credential_router(Credential.SIGNED_LINK)

_TEXT_FIELDS = ("project_name", "display_name", "reference_id", "metadata")


def _store(request: Request, settings: Settings) -> FileStore:
    store: FileStore | None = getattr(request.app.state, "file_store", None)
    return store or files.file_store(settings)


def _base_url(request: Request, settings: Settings) -> str:
    return settings.public_url.rstrip("/") or str(request.base_url).rstrip("/")


def _to_json(row: StoredFile, base_url: str, settings: Settings, clock: Clock) -> dict[str, Any]:
    url = files.attachment_url(
        row,
        base_url,
        settings.secret_key,
        now=clock.now(),
        ttl_seconds=settings.file_url_ttl_seconds,
    )
    return files.file_to_scale(row, url)


@router.post("/files/upload")
async def upload_file(
    request: Request, actor: ActorDep, db: DbDep, settings: SettingsDep, clock: ClockDep
) -> dict[str, Any]:
    # The form as a whole is bounded before it is read (``api.limits``, ``max_upload_bytes``
    # and room for the framing); the file's own bytes are counted as they are stored.
    async with request.form(max_files=1, max_fields=100) as form:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise ValidationError("Send the file as a multipart part named 'file'.", field="file")
        fields = {k: v for k, v in form.multi_items() if k in _TEXT_FIELDS and isinstance(v, str)}
        store, base_url = _store(request, settings), _base_url(request, settings)
        return await run_in_threadpool(
            _save_upload, db, actor, settings, clock, upload, fields, base_url, store
        )


def _save_upload(
    db: Database,
    actor: Actor,
    settings: Settings,
    clock: Clock,
    upload: UploadFile,
    fields: dict[str, str],
    base_url: str,
    store: FileStore,
) -> dict[str, Any]:
    parsed = files.parse_fields(fields)
    # Bytes first, outside the transaction: a write transaction holds SQLite's write lock.
    blob = files.put_upload(
        settings,
        data=upload.file,
        filename=upload.filename,
        content_type=upload.content_type,
        store=store,
    )
    with db.unit_of_work() as session:
        row = files.add_file(session, actor, blob, parsed, now=clock.now())
        return _to_json(row, base_url, settings, clock)


@router.post("/files/import")
def import_file(
    request: Request,
    body: BodyDep,
    actor: ActorDep,
    db: DbDep,
    settings: SettingsDep,
    clock: ClockDep,
) -> dict[str, Any]:
    body = json_object(body)
    file_url = require_str(body, "file_url")
    parsed = files.parse_fields(body)
    # The download happens before the transaction opens, for the same reason as uploads.
    blob = files.fetch_url(
        settings,
        file_url=file_url,
        transport=getattr(request.app.state, "http_transport", None),
        store=_store(request, settings),
    )
    with db.unit_of_work() as session:
        row = files.add_file(session, actor, blob, parsed, now=clock.now())
        return _to_json(row, _base_url(request, settings), settings, clock)


@links.head("/files/{file_id}", response_model=None, include_in_schema=False)
@links.get(
    "/files/{file_id}", response_model=None, summary="Download a file (API key or signed link)"
)
def download_file(
    request: Request,
    file_id: str,
    actor: LinkOrActorDep,
    db: DbDep,
    settings: SettingsDep,
    clock: ClockDep,
) -> Response:
    with db.unit_of_work(write=False) as session:
        if actor is None:  # a valid signed link
            row = files.get_file_by_id(session, file_id)
        else:
            row = files.get_file(session, actor, file_id)
        # Ending a read transaction expires loaded rows; keep this one's values.
        session.expunge(row)
    inline = files.is_inline_safe(row.mime_type)
    headers = {
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "private, no-cache",
    }
    if actor is None:
        # Blobs never change, so a signed link may be cached for as long as it stays valid.
        expires = int(request.query_params["expires"])
        remaining = max(0, min(expires - int(clock.now().timestamp()), 86400))
        headers["Cache-Control"] = f"private, max-age={remaining}"
    if row.mime_type != "application/pdf":
        # Even if a browser were talked into rendering it as a page, it could run no script.
        headers["Content-Security-Policy"] = (
            "default-src 'none'; style-src 'unsafe-inline'; sandbox"
        )
    store = _store(request, settings)
    if not store.exists(row.storage_key):
        raise NotFound("The file's contents are missing from the store.", field="file_id")
    name = row.display_name or row.id
    disposition = "inline" if inline else "attachment"
    if isinstance(store, LocalFileStore):
        return FileResponse(
            store.path(row.storage_key),
            media_type=row.mime_type,
            headers=headers,
            filename=name,
            content_disposition_type=disposition,
        )
    headers["Content-Length"] = str(row.size)
    headers["Content-Disposition"] = f'{disposition}; filename="{row.id}"'
    return StreamingResponse(
        _stream(store, row.storage_key), media_type=row.mime_type, headers=headers
    )


def _stream(store: FileStore, key: str) -> Iterator[bytes]:
    with store.open(key) as handle:
        while chunk := handle.read(1024 * 1024):
            yield chunk


router.include_router(links)
