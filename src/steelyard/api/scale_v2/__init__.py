"""The Scale-compatible v2 API: ``app.include_router(scale_v2.router.router)`` mounts it."""

from steelyard.api.scale_v2 import router as router

__all__ = ["router"]
