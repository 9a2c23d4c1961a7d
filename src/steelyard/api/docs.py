"""The API reference pages, ``/docs`` (Swagger UI) and ``/redoc``, with every script, style and
icon they load served by this server.

FastAPI's own pages load Swagger UI and ReDoc from a CDN, so on a machine without internet
access (a common home for a self-hosted labeling server) they are blank. The assets come from
the ``fastapi-offline`` package, which keeps current builds of Swagger UI (Apache-2.0) and ReDoc
(MIT); only its files are used, the pages are FastAPI's.
"""

from __future__ import annotations

from importlib.resources import files
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from steelyard.api.auth import Credential, credential_router

ASSETS_PATH = "/docs-assets"
OAUTH2_REDIRECT_PATH = "/docs/oauth2-redirect"
# Swagger UI would otherwise show a badge that sends the document to validator.swagger.io.
SWAGGER_PARAMETERS: dict[str, Any] = {"validatorUrl": None}


def install(app: FastAPI) -> None:
    """Add ``/docs``, ``/redoc`` and their assets; build the app with ``docs_url=None`` and
    ``redoc_url=None`` so that FastAPI's CDN pages are not added too."""
    directory = str(files("fastapi_offline") / "static")
    app.mount(ASSETS_PATH, StaticFiles(directory=directory), name="docs-assets")
    pages = credential_router(Credential.PUBLIC, include_in_schema=False)

    @pages.get("/docs")
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = _root(request)
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} API reference",
            swagger_js_url=f"{root}{ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_PATH}/favicon.png",
            oauth2_redirect_url=f"{root}{OAUTH2_REDIRECT_PATH}",
            swagger_ui_parameters={**(app.swagger_ui_parameters or {}), **SWAGGER_PARAMETERS},
        )

    @pages.get(OAUTH2_REDIRECT_PATH)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @pages.get("/redoc")
    async def redoc(request: Request) -> HTMLResponse:
        root = _root(request)
        return get_redoc_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} API reference",
            redoc_js_url=f"{root}{ASSETS_PATH}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{ASSETS_PATH}/favicon.png",
            with_google_fonts=False,
        )

    app.include_router(pages)


def _root(request: Request) -> str:
    """The prefix a proxy serves this app under (``--root-path``), so asset URLs resolve."""
    return str(request.scope.get("root_path", "")).rstrip("/")
