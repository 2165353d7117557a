"""Alembic environment: the only way gro's tables are created or changed.

The URL is the `sqlalchemy.url` main option when a caller set one (server.db.migrate does),
else GRO_DATABASE_URL through server.config.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from server.config import get_settings
from server.db import models  # noqa: F401  (registers every table on Base.metadata)
from server.db.base import Base
from server.db.session import get_engine, normalize_url

config = context.config


def _url() -> str:
    return config.get_main_option("sqlalchemy.url") or normalize_url(get_settings().database_url)


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        # SQLite cannot ALTER most things in place: batch mode copies the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=Base.metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    with get_engine(_url()).connect() as connection:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
