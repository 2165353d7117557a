"""Client fixtures: the client verbs talk to the server tests' app (in-process, no network)."""

from __future__ import annotations

from tests.server.conftest import (  # noqa: F401  (fixtures used by these tests)
    client,
    database_url,
    keys,
    postgres,
    postgres_template,
    queue,
    settings,
    sqlite_template,
)
