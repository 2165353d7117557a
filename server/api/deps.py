"""Dependencies routes declare with `Annotated`: the settings, a database session, the caller
(from its Bearer key) and the job queue."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from server.api.errors import ApiError
from server.config import Settings
from server.db.models import Owner
from server.db.owners import owner_for_key
from server.db.session import new_session
from server.queue import JobQueue

_bearer = HTTPBearer(auto_error=False, description="an API key: `gro keys create --owner NAME`")


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


def get_session(settings: SettingsDep) -> Iterator[Session]:
    with new_session(settings.database_url) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def get_queue(request: Request) -> JobQueue:
    return request.app.state.queue


QueueDep = Annotated[JobQueue, Depends(get_queue)]


def current_owner(
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Owner:
    if credentials is None:
        raise ApiError(401, "unauthorized", "missing API key: send 'Authorization: Bearer <key>'")
    owner = owner_for_key(session, credentials.credentials)
    if owner is None:
        raise ApiError(401, "unauthorized", "unknown or revoked API key")
    return owner


OwnerDep = Annotated[Owner, Depends(current_owner)]


def optional_owner(
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Owner | None:
    """The caller when a key is sent (routes that also accept a signed link)."""
    return current_owner(session, credentials) if credentials is not None else None


def admin_owner(owner: OwnerDep) -> Owner:
    if not owner.is_admin:
        raise ApiError(403, "forbidden", "this endpoint needs an admin key")
    return owner


AdminDep = Annotated[Owner, Depends(admin_owner)]
