"""Every error leaves the API as `{"error": {"code", "message", "line", "field", "details"}}`.

The one place that knows status codes: a service's `ServiceError` gets the status of its
class, FastAPI's request validation 422, Starlette's HTTPExceptions their own, anything else
500 (logged, with nothing internal in the body).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException  # the base: starlette raises it too

from server.errors import (
    ConflictError,
    ForbiddenError,
    GoneError,
    InvalidRequestError,
    NotFoundError,
    ServiceError,
    TooLargeError,
    UnauthorizedError,
)
from server.schemas.common import ErrorBody, Problem

log = logging.getLogger("gro.api")

STATUS: dict[type[ServiceError], int] = {
    UnauthorizedError: 401,
    ForbiddenError: 403,
    NotFoundError: 404,
    ConflictError: 409,
    GoneError: 410,
    TooLargeError: 413,
    InvalidRequestError: 422,
}

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "upload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    503: "unavailable",
}


def status_of(exc: ServiceError) -> int:
    """The status of the error's class, or of the nearest class it derives from."""
    return next((STATUS[c] for c in type(exc).__mro__ if c in STATUS), 400)


def error_body(exc: ServiceError) -> ErrorBody:
    return ErrorBody(
        code=exc.code, message=exc.message, field=exc.field, line=exc.line, details=exc.details
    )


def _body(error: ErrorBody) -> dict[str, Any]:
    return {"error": error.model_dump()}


def _field_path(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    return ".".join(parts)


def _validation_problems(exc: RequestValidationError) -> list[Problem]:
    return [
        Problem(
            code="invalid_value",
            message=f"{_field_path(e['loc']) or 'body'}: {e['msg']}",
            field=_field_path(e["loc"]) or None,
        )
        for e in exc.errors()
    ]


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def _refused(_: Request, exc: ServiceError) -> JSONResponse:
        return JSONResponse(_body(error_body(exc)), status_code=status_of(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = _validation_problems(exc)
        first = problems[0] if problems else Problem(code="invalid_value", message="invalid")
        body = ErrorBody(**first.model_dump(), details=problems)
        return JSONResponse(_body(body), status_code=422)

    @app.exception_handler(HTTPException)
    async def _http(_: Request, exc: HTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
        body = ErrorBody(code=code, message=str(exc.detail))
        return JSONResponse(_body(body), status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        body = ErrorBody(code="internal_error", message="internal error; see the server log")
        return JSONResponse(_body(body), status_code=500)
