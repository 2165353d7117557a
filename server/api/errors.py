"""Every error leaves the API as `{"error": {"code", "message", "line", "field", "details",
"param", "type"}}` (`param` repeats `field` under OpenAI's name).

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


# OpenAI's routes answer a refused request with 400, as OpenAI does (the SDK's
# BadRequestError); a body that does not parse stays 422 (UnprocessableEntityError).
OPENAI_PATHS = ("/v1/files", "/v1/fine_tuning/")
_TYPES = {401: "authentication_error", 403: "permission_error", 404: "not_found_error"}


def _status(request: Request, exc: ServiceError) -> int:
    if isinstance(exc, InvalidRequestError) and request.url.path.startswith(OPENAI_PATHS):
        return 400
    return status_of(exc)


def _body(error: ErrorBody, status: int = 400) -> dict[str, Any]:
    """gro's error keys plus OpenAI's `param` (the field) and `type`, which the SDK reads."""
    kind = _TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return {"error": {**error.model_dump(), "param": error.field, "type": kind}}


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
    async def _refused(request: Request, exc: ServiceError) -> JSONResponse:
        status = _status(request, exc)
        return JSONResponse(_body(error_body(exc), status), status_code=status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = _validation_problems(exc)
        first = problems[0] if problems else Problem(code="invalid_value", message="invalid")
        body = ErrorBody(**first.model_dump(), details=problems)
        return JSONResponse(_body(body, 422), status_code=422)

    @app.exception_handler(HTTPException)
    async def _http(_: Request, exc: HTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
        body = ErrorBody(code=code, message=str(exc.detail))
        status = exc.status_code
        return JSONResponse(_body(body, status), status_code=status, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        body = ErrorBody(code="internal_error", message="internal error; see the server log")
        return JSONResponse(_body(body, 500), status_code=500)
