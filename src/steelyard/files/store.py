"""Where file bytes live. The local store keeps them under the data dir, named by their SHA-256.

Content addressing makes writes idempotent (the same upload twice is stored once) and lets a
blob be written before the database row commits: a rolled-back upload leaves at most an
unreferenced blob, never a row pointing at nothing. Writes go to a temporary file in the same
directory tree and are renamed into place, so a reader never sees half a file.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from steelyard.errors import NotFound, TooLarge

_CHUNK = 1024 * 1024
_KEY = re.compile(r"^[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{64}$")

Source = bytes | BinaryIO | Iterable[bytes]


@dataclass(frozen=True)
class PutResult:
    key: str
    size: int
    sha256: str


class FileStore(Protocol):
    """The file-store seam (a local directory now; S3-compatible storage later)."""

    def put(
        self, data: Source, *, max_bytes: int | None = None, field: str = "file"
    ) -> PutResult: ...

    def open(self, key: str) -> BinaryIO: ...

    def exists(self, key: str) -> bool: ...


def _chunks(data: Source) -> Iterable[bytes]:
    if isinstance(data, bytes | bytearray | memoryview):
        view = memoryview(data)
        for start in range(0, len(view), _CHUNK):
            yield bytes(view[start : start + _CHUNK])
        return
    read = getattr(data, "read", None)
    if read is not None:
        while chunk := read(_CHUNK):
            yield chunk
        return
    yield from data


class LocalFileStore:
    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def put(self, data: Source, *, max_bytes: int | None = None, field: str = "file") -> PutResult:
        """Store ``data`` and return its key. Raises ``TooLarge`` naming ``field`` past
        ``max_bytes`` (checked while streaming, so an oversized upload is never kept)."""
        tmp_dir = self.root / "tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        fd, tmp_name = tempfile.mkstemp(dir=tmp_dir, prefix="upload-")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in _chunks(data):
                    size += len(chunk)
                    if max_bytes is not None and size > max_bytes:
                        raise TooLarge(f"The file is larger than {max_bytes} bytes.", field=field)
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            sha = digest.hexdigest()
            key = f"{sha[:2]}/{sha[2:4]}/{sha}"
            final = self.path(key)
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, final)  # atomic; an identical blob already there is simply replaced
            return PutResult(key=key, size=size, sha256=sha)
        finally:
            tmp.unlink(missing_ok=True)

    def path(self, key: str) -> Path:
        if not _KEY.match(key):
            # Keys come from our own rows, but a path built from a bad one must never escape root.
            raise NotFound("File not found.", field="file_id")
        return self.root / key

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def open(self, key: str) -> BinaryIO:
        try:
            return self.path(key).open("rb")
        except FileNotFoundError:
            raise NotFound(
                "The file's contents are missing from the store.", field="file_id"
            ) from None

    def read(self, key: str) -> bytes:
        with self.open(key) as handle:
            return handle.read()
