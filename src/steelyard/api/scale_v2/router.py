"""The v2 router: every route takes an API key (Bearer, as the v2 client sends it), as each
module's router declares (``api.auth``)."""

from __future__ import annotations

from fastapi import APIRouter

from steelyard.api.scale_v2 import batches, projects, tasks

router = APIRouter(prefix="/v2", tags=["v2"])
for _module in (tasks, batches, projects):
    router.include_router(_module.router)
