"""The v2 router: every route takes an API key (Bearer, as the v2 client sends it)."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from steelyard.api.deps import require_api_key
from steelyard.api.scale_v2 import batches, projects, tasks

router = APIRouter(prefix="/v2", tags=["v2"], dependencies=[Depends(require_api_key)])
for _module in (tasks, batches, projects):
    router.include_router(_module.router)
