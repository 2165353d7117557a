"""Engines and sessions: one engine per database URL, sessions that commit or roll back whole.

SQLite is tuned for a server with a few writers (the API and workers): WAL so readers never
block the writer, a busy timeout so concurrent writers wait instead of failing, foreign keys on.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")  # durable at checkpoints; WAL keeps it safe
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def normalize_url(url: str) -> str:
    """postgresql:// and postgres:// mean psycopg 3 (the driver gro installs)."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


_ENGINES: dict[str, Engine] = {}
_FACTORIES: dict[str, sessionmaker[Session]] = {}


@dataclass(frozen=True)
class Pool:
    """How many connections one process keeps (`size`) and may add under load (`overflow`),
    and how long a caller waits for one (`timeout_s`)."""

    size: int = 10
    overflow: int = 20
    timeout_s: float = 30.0


def _create_engine(url: str, pool: Pool) -> Engine:
    parsed = make_url(url)
    sizes = {"pool_size": pool.size, "max_overflow": pool.overflow, "pool_timeout": pool.timeout_s}
    if parsed.get_backend_name() == "sqlite":
        memory = not parsed.database or parsed.database == ":memory:"
        if not memory:
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            **({} if memory else sizes),
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, **sizes)


def get_engine(url: str, pool: Pool | None = None) -> Engine:
    """The engine of `url`, created once per process with `pool` (default: Pool()); SQLite's
    directory is made if missing. The first caller's pool wins: the API and workers call
    this at start with their settings' pool, before any session is opened."""
    url = normalize_url(url)
    if url not in _ENGINES:
        _ENGINES[url] = _create_engine(url, pool or Pool())
    return _ENGINES[url]


def new_session(url: str) -> Session:
    url = normalize_url(url)
    if url not in _FACTORIES:
        _FACTORIES[url] = sessionmaker(get_engine(url), expire_on_commit=False)
    return _FACTORIES[url]()


@contextmanager
def session_scope(url: str) -> Iterator[Session]:
    """A session that commits when the block ends and rolls back if it raises."""
    with new_session(url) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def answers(session: Session) -> bool:
    """Whether the database answers a trivial query (readiness)."""
    try:
        session.execute(text("SELECT 1"))
    except Exception:  # any driver error means "not ready"
        return False
    return True


def dispose_engine(url: str) -> None:
    """Close the pooled connections of one database and forget its engine."""
    url = normalize_url(url)
    _FACTORIES.pop(url, None)
    engine = _ENGINES.pop(url, None)
    if engine is not None:
        engine.dispose()
