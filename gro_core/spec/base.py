"""What every part of a job spec shares: strict sections and one error type."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

MAX_SEED = 2**31 - 1
"""The largest seed: NumPy takes seeds below 2**32, and the trainers derive per-step torch seeds
(seed × 1,000,003 + step) that must stay below 2**64."""


class SpecError(ValueError):
    """A job that cannot run, found outside pydantic validation; `path` is the dotted key."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.message = message


class Section(BaseModel):
    """Base of every part of the spec: unknown keys and NaN/inf are errors. Attribute
    docstrings become field descriptions, so OpenAPI, docs/jobspec.md and --help show them."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, use_attribute_docstrings=True)
