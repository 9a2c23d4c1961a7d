"""``create_app(settings)``: the FastAPI application with the Scale API, native API and UI."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import unquote

import httpx
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from steelyard import __version__
from steelyard.api import errors
from steelyard.api.auth import Authenticator
from steelyard.api.deps import SLASH_SENTINEL
from steelyard.api.idempotency import IdempotencyMiddleware
from steelyard.api.limits import BodyLimitMiddleware
from steelyard.api.ratelimit import RateLimitMiddleware
from steelyard.clock import SYSTEM_CLOCK, Clock
from steelyard.config import Settings
from steelyard.db.engine import Database
from steelyard.db.migrate import upgrade
from steelyard.ratelimit.shared import SharedLimiter

log = logging.getLogger("steelyard")
_SLASHES = re.compile("/{2,}")


class RawPathMiddleware:
    """Keep ``%2F`` inside a path segment from splitting it.

    The Scale client percent-encodes project and batch names with ``safe=""``, so a name with a
    slash arrives as ``a%2Fb``; servers decode it before routing and then match the wrong route.
    Here the path is re-decoded from ``raw_path`` with ``%2F`` turned into a private-use
    character that ``deps.path_name`` turns back into ``/``. It also refuses ``%00`` and
    collapses ``//``.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if _has_nul(scope):
                await _nul_response(scope)(scope, receive, send)
                return
            raw = scope.get("raw_path")
            if raw and b"%2f" in raw.lower():
                text = raw.decode("latin-1").split("?", 1)[0]
                text = text.replace("%2F", SLASH_SENTINEL).replace("%2f", SLASH_SENTINEL)
                scope = dict(scope)
                scope["path"] = unquote(text)
            if "//" in scope["path"]:
                # ``api_instance_url="http://host/v1/"`` (a trailing slash) makes the client ask
                # for ``/v1//projects``; no name or id can be empty, so ``//`` is always that.
                scope = dict(scope)
                scope["path"] = _SLASHES.sub("/", scope["path"])
        await self.app(scope, receive, send)


def _has_nul(scope: Scope) -> bool:
    """``%00`` in the path or query: no name, id or filter value may hold a NUL (PostgreSQL
    refuses it in text, so it would otherwise surface as a 500)."""
    raw = (scope.get("raw_path") or b"") + b"?" + (scope.get("query_string") or b"")
    return b"%00" in raw or "\x00" in scope.get("path", "")


def _nul_response(scope: Scope) -> JSONResponse:
    message = "The URL holds a NUL character (%00), which no name, id or value may contain."
    if str(scope.get("path", "")).startswith(("/v1", "/v2")):
        return JSONResponse({"status_code": 400, "error": message, "field": "url"}, status_code=400)
    return JSONResponse(
        {"error": {"code": "invalid", "message": message, "field": "url"}}, status_code=400
    )


def create_app(
    settings: Settings,
    *,
    clock: Clock = SYSTEM_CLOCK,
    run_jobs: bool = True,
    migrate: bool = True,
    http_transport: httpx.BaseTransport | None = None,
) -> FastAPI:
    """Build the app. ``http_transport`` is the seam for outgoing HTTP (callbacks, imports)."""
    db = Database(
        settings.resolved_database_url, echo=settings.sql_echo, background_checkpoints=True
    )
    runner: Any = None
    limiter = SharedLimiter(db, sync_seconds=settings.rate_limit_sync_seconds)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        nonlocal runner
        if migrate:
            upgrade(db.engine)
        if run_jobs:
            from steelyard.jobs.runner import JobRunner

            runner = JobRunner(db, settings, clock=clock, transport=http_transport)
            runner.start()
        limiter.start()
        app.state.auth.start()  # hears credential changes made by other processes
        try:
            yield
        finally:
            app.state.auth.close()
            limiter.stop()
            if runner is not None:
                runner.stop()
            db.dispose()

    app = FastAPI(
        title="Steelyard",
        version=__version__,
        summary="Self-hostable data labeling with a Scale-compatible API.",
        description=(
            "Point the official `scaleapi` client at this server with "
            "`ScaleClient(key, api_instance_url='http://HOST:PORT/v1')`. "
            "`/v1` is the Scale-compatible API; `/api` is Steelyard's native API."
        ),
        lifespan=lifespan,
        docs_url=None,  # api.docs serves /docs and /redoc without a CDN
        redoc_url=None,
    )
    app.state.db = db
    app.state.settings = settings
    app.state.clock = clock
    app.state.auth = Authenticator(db, clock)
    app.state.http_transport = http_transport
    errors.install(app)

    from steelyard.api import docs, pages, webapp
    from steelyard.api.native import router as native_router
    from steelyard.api.scale_v1 import router as scale_router
    from steelyard.api.scale_v2 import router as scale_v2_router

    # Routes are matched in order, one by one: the workers' hot path (``/api/work/...``, the
    # native router's first routes) is matched before the Scale API's fifty-odd routes. No
    # path is served by two of these routers, so the order changes nothing else.
    app.include_router(native_router.router)
    scale_router.include(app)
    app.include_router(scale_v2_router.router)
    app.include_router(pages.router)
    docs.install(app)
    webapp.install(app)
    # Added last = runs first: the path is repaired before idempotency keys are matched on it.
    app.add_middleware(IdempotencyMiddleware)
    # Every body is bounded before anything reads it (the idempotency store, pydantic bodies).
    app.add_middleware(
        BodyLimitMiddleware,
        max_body_bytes=settings.max_body_bytes,
        max_upload_bytes=settings.max_upload_bytes,
    )
    if (
        settings.rate_limit_per_address
        or settings.rate_limit_per_key
        or settings.login_rate_limit_per_address
    ):
        # Before anything that costs: authentication, reading the body, the idempotency store.
        app.add_middleware(RateLimitMiddleware, limiter=limiter, settings=settings)
    app.add_middleware(RawPathMiddleware)
    if settings.trusted_proxy_list:
        # Outermost: the client address every later step sees (rate limits, logs) is the one
        # the trusted proxy reports. ``serve`` turns uvicorn's own (trusting 127.0.0.1) off.
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxy_list)
    return app


def app_from_environment() -> FastAPI:
    """Factory for ``serve --workers N`` (uvicorn imports it in each worker process).

    Settings come from the environment, as for ``serve``; ``STEELYARD_SERVE_NO_JOBS=1`` keeps
    the job runner out of the workers.
    """
    import os

    from steelyard.api.server import configure
    from steelyard.config import load_settings

    settings = load_settings()
    configure(settings)  # this process's connections (uvicorn builds them from the class)
    return create_app(settings, run_jobs=os.environ.get("STEELYARD_SERVE_NO_JOBS") != "1")
