"""Files: uploads, imports from a URL, signed links, and the Scale wire shape.

A file's ``attachment_url`` is ``{base}/v1/files/{id}?expires=…&sig=…``: a link signed with the
server's secret key that works without an API key until it expires, so browsers (the worker UI,
a customer's dashboard) can load it. Tasks that reference one of our own file URLs are resolved
back to the file by ``resolve_attachment``, which ignores the expiry: the task's organization
owning the file is what grants access there, and a fresh link is signed whenever one is shown.
"""

from __future__ import annotations

import hmac
import math
import mimetypes
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, BinaryIO, cast
from urllib.parse import unquote, urlsplit

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from steelyard import __version__
from steelyard.accounts import security
from steelyard.accounts.schemas import Actor
from steelyard.callbacks.transport import checked_transport
from steelyard.callbacks.urls import TargetPolicy, check_url
from steelyard.config import Settings
from steelyard.errors import NotFound, TooLarge, ValidationError
from steelyard.files.models import StoredFile
from steelyard.files.store import FileStore, LocalFileStore, Source
from steelyard.timefmt import iso

MAX_REDIRECTS = 5
_SNIFF_BYTES = 512
_GENERIC_TYPES = {"", "application/octet-stream", "binary/octet-stream", "application/unknown"}
_MIME = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$")
_OWN_URL = re.compile(r"/v1/files/([0-9a-f]{24})/?$")
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"%PDF-", "application/pdf"),
    (b"BM", "image/bmp"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
    (b"ID3", "audio/mpeg"),
    (b"OggS", "audio/ogg"),
    (b"fLaC", "audio/flac"),
    (b"\x1a\x45\xdf\xa3", "video/webm"),
)
#: Types a browser may render inline from our origin; anything else (HTML, SVG, JS...) could run
#: script next to the worker UI's session, so it is served as a download.
_INLINE_SAFE_PREFIXES = ("image/", "audio/", "video/")
_INLINE_SAFE_TYPES = {"application/pdf", "text/plain", "text/csv", "application/json"}
_INLINE_UNSAFE_TYPES = {"image/svg+xml"}


def file_store(settings: Settings) -> LocalFileStore:
    return LocalFileStore(settings.files_dir)


def is_inline_safe(mime_type: str) -> bool:
    mime = mime_type.lower()
    if mime in _INLINE_UNSAFE_TYPES:
        return False
    return mime in _INLINE_SAFE_TYPES or mime.startswith(_INLINE_SAFE_PREFIXES)


# --- creating files --------------------------------------------------------------------------
#
# Two steps: the bytes go to the store with no transaction open (on SQLite a write transaction
# holds the process-wide write lock, which must never wait on a client's upload or a remote
# server), then ``add_file`` inserts the row. An import is always the two calls, ``fetch_url``
# and then ``add_file`` in the caller's transaction: there is no one-call form that a caller
# could run inside its unit of work by mistake. ``store_upload`` does both for local callers.


@dataclass(frozen=True)
class FileFields:
    """The optional text fields that come with an upload or import."""

    project_name: str | None = None
    display_name: str | None = None
    reference_id: str | None = None


@dataclass(frozen=True)
class Blob:
    """Bytes in the store, with what we learned about them while storing."""

    key: str
    size: int
    sha256: str
    mime_type: str
    name: str | None
    source_url: str | None = None


def parse_fields(fields: Mapping[str, object]) -> FileFields:
    """``project_name``, ``display_name``, ``reference_id``; other fields (``metadata``...) are
    accepted and ignored, as the Scale client passes any keyword through."""
    values: dict[str, str | None] = {}
    for name, limit in (("project_name", 300), ("display_name", 500), ("reference_id", 500)):
        value = fields.get(name)
        if value is not None and not isinstance(value, str):
            raise ValidationError(f"'{name}' must be a string.", field=name)
        if value is not None and len(value) > limit:
            raise ValidationError(f"'{name}' must be at most {limit} characters.", field=name)
        values[name] = value or None
    return FileFields(**values)


def put_upload(
    settings: Settings,
    *,
    data: bytes | BinaryIO,
    filename: str | None,
    content_type: str | None,
    store: FileStore | None = None,
) -> Blob:
    """Stream an upload into the store; ``TooLarge`` naming ``file`` past the size limit."""
    head, chunks = _peek(data)
    put = (store or file_store(settings)).put(
        chunks, max_bytes=settings.max_upload_bytes, field="file"
    )
    return Blob(
        key=put.key,
        size=put.size,
        sha256=put.sha256,
        mime_type=guess_mime(filename, content_type, head),
        name=_clean_name(filename),
    )


def fetch_url(
    settings: Settings,
    *,
    file_url: str,
    transport: httpx.BaseTransport | None,
    store: FileStore | None = None,
) -> Blob:
    """Download ``file_url`` into the store. Every error names ``file_url``.

    Redirects are followed by hand so that every hop passes the SSRF guard (its DNS lookups
    wait here, outside any transaction); the transport checks each address it dials as well.
    Both judge by ``settings``' ``TargetPolicy``.
    """
    policy = TargetPolicy.of(settings)
    url = check_url(file_url, field="file_url", policy=policy, resolve=True)
    target = store or file_store(settings)
    limit = settings.max_upload_bytes
    headers = {"User-Agent": f"Steelyard/{__version__}"}
    try:
        with httpx.Client(
            transport=transport or checked_transport(policy),
            timeout=settings.file_import_timeout_seconds,
            follow_redirects=False,
        ) as client:
            for _hop in range(MAX_REDIRECTS + 1):
                with client.stream("GET", url, headers=headers) as resp:
                    if resp.is_redirect:
                        url = check_url(
                            str(resp.url.join(resp.headers["location"])),
                            field="file_url",
                            policy=policy,
                            resolve=True,
                        )
                        continue
                    if not resp.is_success:
                        raise ValidationError(
                            f"Fetching 'file_url' returned HTTP {resp.status_code}.",
                            field="file_url",
                        )
                    declared = resp.headers.get("content-length", "")
                    if declared.isdigit() and int(declared) > limit:
                        raise TooLarge(
                            f"The file at 'file_url' is larger than {limit} bytes.",
                            field="file_url",
                        )
                    head, chunks = _peek(resp.iter_bytes())
                    put = target.put(chunks, max_bytes=limit, field="file_url")
                    return Blob(
                        key=put.key,
                        size=put.size,
                        sha256=put.sha256,
                        mime_type=guess_mime(
                            _url_name(url), resp.headers.get("content-type"), head
                        ),
                        name=_url_name(url),
                        source_url=file_url[:2000],
                    )
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        detail = str(exc).strip()
        raise ValidationError(
            f"Could not fetch 'file_url': {type(exc).__name__}" + (f": {detail}" if detail else ""),
            field="file_url",
        ) from None
    raise ValidationError(
        f"'file_url' redirected more than {MAX_REDIRECTS} times.", field="file_url"
    )


def add_file(
    session: Session,
    actor: Actor,
    blob: Blob,
    fields: FileFields,
    *,
    now: datetime | None = None,
) -> StoredFile:
    """The file's row, in the caller's environment (live or test)."""
    row = StoredFile(
        org_id=actor.org_id,
        is_test=actor.is_test,
        project_name=fields.project_name,
        display_name=fields.display_name or blob.name,
        reference_id=fields.reference_id,
        mime_type=blob.mime_type,
        size=blob.size,
        sha256=blob.sha256,
        storage_key=blob.key,
        source_url=blob.source_url,
        created_at=now or datetime.now(UTC),
    )
    session.add(row)
    session.flush()
    return row


def store_upload(
    session: Session,
    actor: Actor,
    settings: Settings,
    *,
    data: bytes | BinaryIO,
    filename: str | None,
    content_type: str | None,
    fields: Mapping[str, object],
    now: datetime | None = None,
    store: FileStore | None = None,
) -> StoredFile:
    """``POST files/upload`` in one call: ``put_upload`` then ``add_file``."""
    parsed = parse_fields(fields)
    blob = put_upload(
        settings, data=data, filename=filename, content_type=content_type, store=store
    )
    return add_file(session, actor, blob, parsed, now=now)


def _peek(data: Source) -> tuple[bytes, Iterable[bytes]]:
    """The first bytes (for type sniffing) and the whole stream, still in one piece."""
    if isinstance(data, bytes):
        return data[:_SNIFF_BYTES], (data,)
    if hasattr(data, "read"):
        stream = cast(BinaryIO, data)
        first = stream.read(_SNIFF_BYTES)
        return first, _chain(first, stream)
    iterator = iter(data)
    first = next(iterator, b"")
    return first[:_SNIFF_BYTES], _chain(first, iterator)


def _chain(first: bytes, rest: BinaryIO | Iterator[bytes]) -> Iterator[bytes]:
    if first:
        yield first
    if isinstance(rest, Iterator):
        yield from rest
        return
    while chunk := rest.read(1024 * 1024):
        yield chunk


def guess_mime(filename: str | None, content_type: str | None, head: bytes) -> str:
    """A declared specific type wins, then the file name's extension, then magic bytes."""
    declared = (content_type or "").split(";")[0].strip().lower()
    if declared not in _GENERIC_TYPES and _MIME.match(declared):
        return declared
    by_name = mimetypes.guess_type(filename)[0] if filename else None
    if by_name:
        return by_name
    for magic, mime in _MAGIC:
        if head.startswith(magic):
            return mime
    if head[:4] == b"RIFF" and head[8:12] in (b"WEBP", b"WAVE"):
        return "image/webp" if head[8:12] == b"WEBP" else "audio/wav"
    if head[4:8] == b"ftyp":
        return "video/mp4"
    return "application/octet-stream"


def _clean_name(filename: str | None) -> str | None:
    if not filename:
        return None
    return filename.replace("\\", "/").rsplit("/", 1)[-1][:500] or None


def _url_name(url: str) -> str | None:
    return _clean_name(unquote(urlsplit(url).path))


# --- reading files ---------------------------------------------------------------------------


def get_file(session: Session, actor: Actor, file_id: str) -> StoredFile:
    """The caller's file: same organization and same environment (live/test), else NotFound."""
    row = session.scalar(
        select(StoredFile).where(
            StoredFile.id == file_id,
            StoredFile.org_id == actor.org_id,
            StoredFile.is_test == actor.is_test,
        )
    )
    if row is None:
        raise NotFound(f"No file with id '{file_id}'.", field="file_id")
    return row


def get_file_by_id(session: Session, file_id: str) -> StoredFile:
    """Unscoped: only for requests already authorised by a signed link for this id."""
    row = session.get(StoredFile, file_id)
    if row is None:
        raise NotFound(f"No file with id '{file_id}'.", field="file_id")
    return row


def resolve_attachment(
    session: Session, org_id: str, url: str, *, is_test: bool | None = None
) -> StoredFile | None:
    """The organization's file that ``url`` (one of our ``/v1/files/{id}`` links, any host,
    expired or not) points at; None for other URLs and other organizations' files."""
    match = _OWN_URL.search(urlsplit(url).path)
    if match is None:
        return None
    stmt = select(StoredFile).where(StoredFile.id == match.group(1), StoredFile.org_id == org_id)
    if is_test is not None:
        stmt = stmt.where(StoredFile.is_test == is_test)
    return session.scalar(stmt)


# --- signed links ----------------------------------------------------------------------------


def _signature(secret_key: str, file_id: str, expires: int) -> str:
    # The prefix keeps these signatures from ever matching another use of the same secret.
    return security.sign(secret_key, f"steelyard-file:{file_id}:{expires}".encode())


def link_expiry(now: datetime, ttl_seconds: int) -> int:
    """Rounded up to the hour: the same file gets the same link for an hour (browser caches)."""
    return math.ceil((now.timestamp() + ttl_seconds) / 3600) * 3600


def attachment_url(
    file: StoredFile | str,
    base_url: str,
    secret_key: str,
    *,
    now: datetime | None = None,
    ttl_seconds: int = 7 * 24 * 3600,
) -> str:
    file_id = file if isinstance(file, str) else file.id
    expires = link_expiry(now or datetime.now(UTC), ttl_seconds)
    sig = _signature(secret_key, file_id, expires)
    return f"{base_url.rstrip('/')}/v1/files/{file_id}?expires={expires}&sig={sig}"


def verify_signature(
    file_id: str, expires: str | int, sig: str, secret: str, now: datetime
) -> bool:
    try:
        expires_at = int(expires)
    except (TypeError, ValueError):
        return False
    if expires_at < now.timestamp() or not secret:
        return False
    return hmac.compare_digest(_signature(secret, file_id, expires_at), sig)


# --- wire shape --------------------------------------------------------------------------------


def file_to_scale(file: StoredFile, attachment_url: str) -> dict[str, Any]:
    return {
        "id": file.id,
        "attachment_url": attachment_url,
        "display_name": file.display_name,
        "project_name": file.project_name,
        "mime_type": file.mime_type,
        "size": file.size,
        "created_at": iso(file.created_at),
        "reference_id": file.reference_id,
    }
