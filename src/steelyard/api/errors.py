"""Domain errors → HTTP, in one place.

The Scale API (``/v1``, ``/v2``) answers ``{"status_code", "error"}`` with the status codes the
``scaleapi`` client maps to its exceptions; the native API (``/api``) answers
``{"error": {"code", "message", "field"}}``.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from steelyard import errors

log = logging.getLogger("steelyard.api")

SCALE_STATUS: dict[type[errors.SteelyardError], int] = {
    errors.ValidationError: 400,
    errors.InvalidState: 400,
    errors.Unauthorized: 401,
    errors.NotEnabled: 402,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.Duplicate: 409,
    errors.TooLarge: 413,
    errors.RateLimited: 429,
}
NATIVE_STATUS: dict[type[errors.SteelyardError], int] = {
    **SCALE_STATUS,
    errors.ValidationError: 422,
    errors.InvalidState: 409,
}


def _is_scale(request: Request) -> bool:
    return request.url.path.startswith(("/v1", "/v2"))


def _respond(
    request: Request,
    status: int,
    message: str,
    code: str,
    field: str | None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    scale = _is_scale(request)
    if status == 401:
        # The Scale API takes a key (Basic); the worker API a session token (Bearer).
        scheme = "Basic" if scale else "Bearer"
        headers = {**(headers or {}), "WWW-Authenticate": f'{scheme} realm="steelyard"'}
    if scale:
        body: dict[str, object] = {"status_code": status, "error": message}
        if field:
            body["field"] = field
        return JSONResponse(body, status_code=status, headers=headers)
    return JSONResponse(
        {"error": {"code": code, "message": message, "field": field}},
        status_code=status,
        headers=headers,
    )


def domain_response(request: Request, exc: errors.SteelyardError) -> JSONResponse:
    """The answer to a domain error, in the shape of the API the request was for.

    Also called by ASGI middleware that refuses a request before routing (rate limits).
    """
    table = SCALE_STATUS if _is_scale(request) else NATIVE_STATUS
    status = next((s for cls, s in table.items() if isinstance(exc, cls)), 400)
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, errors.RateLimited) else None
    return _respond(request, status, exc.message, exc.code, exc.field, headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(errors.SteelyardError)
    async def _domain(request: Request, exc: errors.SteelyardError) -> JSONResponse:
        return domain_response(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _request_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        loc = [str(p) for p in first.get("loc", ()) if p not in ("query", "path", "body", "header")]
        field = ".".join(loc) or None
        message = f"{field}: {first.get('msg', 'invalid value')}" if field else "Invalid request."
        status = 400 if _is_scale(request) else 422
        return _respond(request, status, message, "invalid", field)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else "HTTP error"
        if exc.status_code == 404:
            message = f"Not found: {request.method} {request.url.path}"
        elif exc.status_code == 405:
            message = f"Method {request.method} is not allowed on {request.url.path}"
        return _respond(request, exc.status_code, message, "http_error", None)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return _respond(request, 500, "Internal server error.", "internal", None)
