"""The Scale-compatible v1 API, mounted at ``/v1``."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from steelyard.api.deps import require_api_key
from steelyard.api.scale_v1 import batches, files, projects, tasks, teams

router = APIRouter(prefix="/v1")
#: These take an API key, never a worker's session token (FastAPI caches ``get_actor`` per
#: request, so the handlers' own ``ActorDep`` costs nothing more). The files router decides for
#: itself: its signed download links are fetched without any credentials.
_KEY_ONLY = [Depends(require_api_key)]
router.include_router(projects.router, dependencies=_KEY_ONLY)
router.include_router(batches.router, dependencies=_KEY_ONLY)
router.include_router(tasks.router, dependencies=_KEY_ONLY)
router.include_router(teams.router, dependencies=_KEY_ONLY)
router.include_router(files.router)
