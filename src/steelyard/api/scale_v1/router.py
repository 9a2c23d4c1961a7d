"""The Scale-compatible v1 API, mounted at ``/v1``."""

from __future__ import annotations

from fastapi import APIRouter

from steelyard.api.scale_v1 import batches, projects, tasks, teams

router = APIRouter(prefix="/v1")
router.include_router(projects.router)
router.include_router(batches.router)
router.include_router(tasks.router)
router.include_router(teams.router)
try:
    from steelyard.api.scale_v1 import files
except ImportError:  # pragma: no cover - the files router lands in its own change
    files = None  # type: ignore[assignment]
if files is not None:
    router.include_router(files.router)
