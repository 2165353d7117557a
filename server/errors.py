"""What the service refuses, said without HTTP: services, storage and the API's dependencies
raise these; `server.api.errors` alone decides which status each one answers with.

    raise NotFoundError("job", job_id)
    raise ConflictError("job_finished", f"job {job_id} already succeeded")
    raise InvalidRequestError("invalid_spec", "train.lr: must be > 0", field="train.lr")
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Self

from server.schemas.common import Problem


class ServiceError(Exception):
    """A request the service refuses: `code` says why, `field` / `line` where, `details`
    every problem found (the first is the error itself)."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        field: str | None = None,
        line: int | None = None,
        details: Sequence[Problem] = (),
    ) -> None:
        super().__init__(message)
        self.code, self.message = code, message
        self.field, self.line = field, line
        self.details = list(details)

    def moved(self, field: str, message: str) -> Self:
        """The same error, of the same class, reported at another place (a variant of a
        comparison). Built by hand: subclasses' constructors take other arguments."""
        other = type(self).__new__(type(self))
        other.__dict__.update(self.__dict__, field=field, message=message)
        Exception.__init__(other, message)
        return other


class InvalidRequestError(ServiceError):
    """The request (a spec, a file, a parameter) cannot be used as sent."""


class NotFoundError(ServiceError):
    """No such resource, or one the caller may not see: both read the same, so ids reveal
    nothing about other owners."""

    def __init__(self, kind: str, ident: str) -> None:
        super().__init__("not_found", f"no {kind} {ident!r}")


class ConflictError(ServiceError):
    """The resource's state does not allow this now (a finished job, a dataset in use)."""


class GoneError(ServiceError):
    """The resource's row exists but its files do not (rotated or lost)."""


class TooLargeError(ServiceError):
    """An upload over the configured limit."""


class UnauthorizedError(ServiceError):
    """No caller could be identified (no key, an unknown key, an invalid signed link)."""


class ForbiddenError(ServiceError):
    """The caller is known but may not do this."""
