"""The service's errors, all rendered as one JSON envelope:

``{"error": {"type": str, "message": str, "status": int, "request_id": str | null, "details": list | null}}``
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

logger = logging.getLogger(__name__)


class ErrorDetail(BaseModel):
    type: str
    message: str
    status: int
    request_id: str | None
    details: list[Any] | None


class ErrorResponse(BaseModel):
    error: ErrorDetail


class ServiceError(Exception):
    status_code = 500
    error_type = "internal_error"
    headers: ClassVar[dict[str, str] | None] = None

    def __init__(self, message: str, details: list[Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class InvalidRequest(ServiceError):
    status_code = 422
    error_type = "invalid_request"


class EngineUnavailable(ServiceError):
    status_code = 503
    error_type = "engine_unavailable"
    headers: ClassVar[dict[str, str] | None] = {"Retry-After": "5"}


class ServiceStarting(ServiceError):
    """A dependency other than the engine (event log, key store) is not open yet, or closed already."""

    status_code = 503
    error_type = "service_unavailable"
    headers: ClassVar[dict[str, str] | None] = {"Retry-After": "5"}


class EngineTimeout(ServiceError):
    status_code = 504
    error_type = "engine_timeout"


class EngineFailure(ServiceError):
    status_code = 502
    error_type = "engine_error"


class Unauthorized(ServiceError):
    status_code = 401
    error_type = "unauthorized"
    headers: ClassVar[dict[str, str] | None] = {"WWW-Authenticate": 'Bearer realm="llm-auction"'}


class Forbidden(ServiceError):
    status_code = 403
    error_type = "forbidden"


class RateLimited(ServiceError):
    status_code = 429
    error_type = "rate_limited"

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.headers = {"Retry-After": str(retry_after_s)}  # type: ignore[misc]


class Overloaded(ServiceError):
    status_code = 503
    error_type = "overloaded"
    headers: ClassVar[dict[str, str] | None] = {"Retry-After": "1"}


class InvalidClickToken(ServiceError):
    status_code = 404
    error_type = "invalid_click"


class ExpiredClickToken(ServiceError):
    status_code = 410
    error_type = "expired_click"


_HTTP_TYPES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


def envelope(
    status: int, error_type: str, message: str, request_id: str | None, details: list[Any] | None = None
) -> dict[str, Any]:
    """The one error shape, wherever it is rendered (handlers, ASGI middleware, a started SSE stream)."""
    return {
        "error": {
            "type": error_type,
            "message": message,
            "status": status,
            "request_id": request_id,
            "details": details,
        }
    }


def service_error_envelope(exc: ServiceError, request_id: str | None) -> dict[str, Any]:
    return envelope(exc.status_code, exc.error_type, exc.message, request_id, exc.details)


def error_body(
    request: Request, status: int, error_type: str, message: str, details: list[Any] | None = None
) -> dict[str, Any]:
    request_id = (request.scope.get("state") or {}).get("request_id")  # set by the request-id middleware
    return envelope(status, error_type, message, request_id if isinstance(request_id, str) else None, details)


def _response(
    request: Request,
    status: int,
    error_type: str,
    message: str,
    details: list[Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(error_body(request, status, error_type, message, details), status, headers=headers)


def _validation_details(exc: RequestValidationError) -> list[dict[str, Any]]:
    return [
        {"loc": list(err.get("loc", ())), "msg": err.get("msg", ""), "type": err.get("type", "")}
        for err in exc.errors()
    ]


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def _service_error(request: Request, exc: ServiceError) -> JSONResponse:
        if exc.status_code >= 500:
            logger.warning("request failed: %s: %s", exc.error_type, exc.message)
        return _response(request, exc.status_code, exc.error_type, exc.message, exc.details, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = _validation_details(exc)
        first = details[0] if details else {"loc": [], "msg": "invalid request", "type": ""}
        where = ".".join(str(p) for p in first["loc"][1:])  # loc[0] is "body", "query" or "path"
        if first["type"] == "json_invalid":
            message = "the request body is not valid JSON"
        else:
            message = f"{where}: {first['msg']}" if where else str(first["msg"])
        return _response(request, 422, "validation_error", message, details)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        error_type = _HTTP_TYPES.get(exc.status_code, "http_error")
        return _response(request, exc.status_code, error_type, str(exc.detail), None, dict(exc.headers or {}))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error")
        return _response(request, 500, "internal_error", "internal server error")
