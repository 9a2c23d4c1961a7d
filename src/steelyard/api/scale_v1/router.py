"""The Scale-compatible v1 API, mounted at ``/v1``."""

from __future__ import annotations

from fastapi import FastAPI

from steelyard.api.scale_v1 import batches, files, projects, studio, tasks, teams


def include(app: FastAPI) -> None:
    """Mount each v1 router on the app directly: FastAPI matches a request against every level
    of nested routers, and one level less is measurably cheaper on every call. Each module's
    router declares the credential its routes take (``api.auth``)."""
    for module in (tasks, projects, batches, teams, studio, files):
        app.include_router(module.router, prefix="/v1")
