"""The Scale-compatible v1 API, mounted at ``/v1``."""

from __future__ import annotations

from fastapi import Depends, FastAPI

from steelyard.api.deps import require_api_key
from steelyard.api.scale_v1 import batches, files, projects, studio, tasks, teams

#: These take an API key, never a worker's session token (FastAPI caches ``get_actor`` per
#: request, so the handlers' own ``ActorDep`` costs nothing more). The files router decides for
#: itself: its signed download links are fetched without any credentials.
_KEY_ONLY = [Depends(require_api_key)]


def include(app: FastAPI) -> None:
    """Mount each v1 router on the app directly: FastAPI matches a request against every level
    of nested routers, and one level less is measurably cheaper on every call."""
    # Task create checks the key in its handler (see ``tasks.hot_router``).
    app.include_router(tasks.hot_router, prefix="/v1")
    for module in (tasks, projects, batches, teams, studio):
        app.include_router(module.router, prefix="/v1", dependencies=_KEY_ONLY)
    app.include_router(files.router, prefix="/v1")
