"""The labeling app: the Vite build of ``frontend/`` served with an SPA fallback.

The build lands in ``steelyard/web_dist`` (``make ui``; a wheel carries it, so installed users
need no Node). Its hashed assets are cached for good; ``index.html`` answers each client-side
route and is never cached, so a new build is picked up on the next load. The fallback is the
list of the app's own routes, not a catch-all: an unknown path keeps its 404 and the API
routes are never shadowed.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, HTMLResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from steelyard.api.auth import Credential, credential_router

#: Where ``vite build`` writes (``frontend/vite.config.ts``).
WEB_DIST = Path(__file__).resolve().parent.parent / "web_dist"
ASSETS_PATH = "/assets"
#: The app's client-side routes (``frontend/src/main.tsx``).
ROUTES = ("/", "/login", "/label")

NOT_BUILT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Steelyard</title></head>
<body><h1>The labeling app is not built</h1>
<p>Run <code>make ui</code> (or <code>make run</code>) in the source tree: it needs Node 20 and
npm at build time only. A wheel carries the built app.</p>
<p><a href="/about">About this server</a> &middot; <a href="/docs">API reference</a></p>
</body></html>"""


class _HashedAssets(StaticFiles):
    """Vite names each asset by its content hash: a name never changes meaning."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        if response.status_code == 200:
            response.headers["cache-control"] = "public, max-age=31536000, immutable"
        return response


def install(app: FastAPI, directory: Path = WEB_DIST) -> None:
    """Add the app's routes; call it after the API routers (their paths never collide)."""
    app.mount(
        ASSETS_PATH,
        _HashedAssets(directory=directory / "assets", check_dir=False),
        name="app-assets",
    )
    router = credential_router(Credential.PUBLIC, include_in_schema=False)
    index = directory / "index.html"

    def page() -> Response:
        if not index.is_file():
            return HTMLResponse(NOT_BUILT, status_code=503, headers={"cache-control": "no-store"})
        return FileResponse(index, media_type="text/html", headers={"cache-control": "no-cache"})

    for route in ROUTES:
        router.add_api_route(route, page, methods=["GET"], response_class=HTMLResponse)
    app.include_router(router)
