"""Shapes every resource shares: errors and cursor pages."""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")

DB_INT_MAX = 2**31 - 1
"""The largest value of an INTEGER column on every backend (PostgreSQL's is 32-bit): steps and
ids in query parameters and headers are refused with 422 past it, before they reach a query."""
DB_BIGINT_MAX = 2**63 - 1
"""The largest integer any column holds (SQLite INTEGER, PostgreSQL BIGINT): bigger integers
anywhere in a JSON body are refused with 422."""
DB_BIGINT_MIN = -(2**63)


class Out(BaseModel):
    """Base of responses: built from ORM rows by attribute."""

    model_config = ConfigDict(from_attributes=True)


class Problem(BaseModel):
    """One problem with a request: where (line of a file, field of a document) and what."""

    code: str = Field(examples=["missing_field"])
    message: str = Field(examples=["line 3: missing field 'rejected'"])
    line: int | None = Field(None, description="1-based line (row) of an uploaded file")
    field: str | None = Field(None, description="field of the row, or dotted key of a document")


class ErrorBody(Problem):
    details: list[Problem] = Field(
        default_factory=list, description="every problem found (the first is repeated above)"
    )
    param: str | None = Field(None, description="`field` again, under OpenAI's name")
    type: str = Field(
        "invalid_request_error", description="OpenAI's error type: authentication_error, ..."
    )


class ErrorResponse(BaseModel):
    """Every 4xx/5xx body: `{"error": {"code", "message", "line", "field", "details", "param",
    "type"}}`."""

    error: ErrorBody

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "error": {
                        "code": "invalid_spec",
                        "message": "train.lr: Input should be greater than 0",
                        "line": None,
                        "field": "train.lr",
                        "details": [],
                        "param": "train.lr",
                        "type": "invalid_request_error",
                    }
                }
            ]
        }
    )


class Page(BaseModel, Generic[T]):
    """A cursor page: pass `last_id` as `after` to get the next one while `has_more`."""

    object: Literal["list"] = "list"
    data: list[T]
    has_more: bool
    first_id: str | int | None = None
    last_id: str | int | None = None

    @classmethod
    def of(cls, data: list[Any], has_more: bool) -> Page[Any]:
        """A page of items that have an `id`."""
        return cls(
            data=data,
            has_more=has_more,
            first_id=data[0].id if data else None,
            last_id=data[-1].id if data else None,
        )


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": description}
    for code, description in {
        400: "the request is malformed (a header or parameter that cannot be read)",
        401: "missing or unknown API key",
        403: "the key may not do this (an admin's key is needed)",
        404: "no such resource (or not yours)",
        409: "the resource's state does not allow this",
        422: "the request is invalid; `field` / `line` say where",
    }.items()
}
"""OpenAPI `responses=` for the errors most routes can answer with."""
