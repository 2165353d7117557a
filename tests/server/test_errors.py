"""Services raise domain errors; server.api.errors alone turns each into its status and the
one error body."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from server.api.errors import install_error_handlers
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
from server.schemas.common import Problem

ERRORS = [
    (UnauthorizedError("unauthorized", "no key"), 401),
    (ForbiddenError("forbidden", "admins only"), 403),
    (NotFoundError("job", "job-x"), 404),
    (ConflictError("job_finished", "job job-x already succeeded"), 409),
    (GoneError("checkpoint_gone", "rotated away"), 410),
    (TooLargeError("upload_too_large", "over the limit"), 413),
    (InvalidRequestError("invalid_spec", "train.lr: > 0", field="train.lr"), 422),
]


def answer(exc: ServiceError) -> tuple[int, dict]:
    """What a route that raises `exc` answers."""
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/boom")
    def boom() -> None:
        raise exc

    response = TestClient(app).get("/boom")
    return response.status_code, response.json()


@pytest.mark.parametrize(("exc", "status"), ERRORS)
def test_each_domain_error_gets_its_status_and_the_error_body(exc: ServiceError, status: int):
    code, body = answer(exc)
    assert code == status
    assert body == {
        "error": {
            "code": exc.code,
            "message": exc.message,
            "field": exc.field,
            "line": None,
            "details": [],
            "param": exc.field,
            "type": TYPES[status],
        }
    }


TYPES = {
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    409: "invalid_request_error",
    410: "invalid_request_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
}


@pytest.mark.parametrize("path", ["/v1/fine_tuning/jobs", "/v1/files"])
def test_openai_routes_answer_a_refused_request_with_400(path: str):
    """OpenAI answers 400 (the SDK's BadRequestError) where gro's own routes answer 422."""
    app = FastAPI()
    install_error_handlers(app)

    @app.post(path)
    def boom() -> None:
        raise InvalidRequestError("invalid_value", "seed: bad", field="seed")

    response = TestClient(app).post(path)
    assert response.status_code == 400
    assert response.json()["error"] | {"details": []} == {
        "code": "invalid_value",
        "message": "seed: bad",
        "field": "seed",
        "param": "seed",
        "line": None,
        "details": [],
        "type": "invalid_request_error",
    }


def test_not_found_reads_the_same_for_missing_and_hidden():
    assert NotFoundError("dataset", "ds-1").message == "no dataset 'ds-1'"
    assert answer(NotFoundError("dataset", "ds-1"))[1]["error"]["code"] == "not_found"


def test_a_subclass_answers_with_its_parent_status():
    class SpecInvalidError(InvalidRequestError):
        pass

    assert answer(SpecInvalidError("invalid_spec", "bad"))[0] == 422


def test_an_error_moved_into_a_variant_keeps_its_class_code_and_details():
    problem = Problem(code="invalid_spec", message="train.lr: > 0", field="train.lr")
    exc = InvalidRequestError("invalid_spec", "train.lr: > 0", field="train.lr", details=[problem])
    moved = exc.moved("variants.1.train.lr", "variant 'b': train.lr: > 0")
    assert type(moved) is InvalidRequestError and str(moved) == "variant 'b': train.lr: > 0"
    assert (moved.code, moved.field, moved.details) == (
        "invalid_spec",
        "variants.1.train.lr",
        [problem],
    )
    assert (exc.field, exc.message) == ("train.lr", "train.lr: > 0")  # the original unchanged
    status, body = answer(moved)
    assert status == 422 and body["error"]["details"][0]["field"] == "train.lr"
