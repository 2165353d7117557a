"""`gro` verbs of the server itself: API keys and migrations on its database, and `gro serve`.
gro_core's CLI finds them through the `gro.cli` entry point, so gro_core never imports this
package. The verbs that only talk HTTP live in the client package (client/cli.py)."""

from __future__ import annotations

import argparse
import sys

from server.config import get_settings
from server.db.migrate import upgrade
from server.db.owners import create_key, revoke_keys
from server.db.session import session_scope


def _cmd_keys_create(args: argparse.Namespace) -> int:
    url = get_settings().database_url
    upgrade(url)
    with session_scope(url) as session:
        key = create_key(session, args.owner, admin=args.admin)
    print(key)
    print(
        f"(the key of {args.owner}{' (admin)' if args.admin else ''}; shown once)", file=sys.stderr
    )
    return 0


def _cmd_keys_revoke(args: argparse.Namespace) -> int:
    with session_scope(get_settings().database_url) as session:
        count = revoke_keys(session, args.owner)
    print(f"revoked {count} key(s) of {args.owner}")
    return 0


def _cmd_db_upgrade(args: argparse.Namespace) -> int:
    upgrade(get_settings().database_url, args.revision)
    print(f"database at {args.revision}")
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn  # only this verb serves; the others should not pay for loading it

    uvicorn.run("server.main:app", host=args.host, port=args.port, workers=args.workers)
    return 0


def add_verbs(sub: argparse._SubParsersAction) -> None:
    """Register the server's verbs on gro's parser (the `gro.cli` entry point)."""
    keys = sub.add_parser("keys", help="API keys (on the server's database)")
    keys_sub = keys.add_subparsers(dest="keys_cmd", required=True)
    create = keys_sub.add_parser("create", help="create a key and print it once")
    create.add_argument("--owner", required=True)
    create.add_argument("--admin", action="store_true", help="sees every owner's resources")
    create.set_defaults(handler=_cmd_keys_create)
    revoke = keys_sub.add_parser("revoke", help="revoke every key of an owner")
    revoke.add_argument("--owner", required=True)
    revoke.set_defaults(handler=_cmd_keys_revoke)

    db = sub.add_parser("db", help="database migrations")
    db_sub = db.add_subparsers(dest="db_cmd", required=True)
    up = db_sub.add_parser("upgrade", help="migrate to a revision (default: head)")
    up.add_argument("revision", nargs="?", default="head")
    up.set_defaults(handler=_cmd_db_upgrade)

    serve = sub.add_parser("serve", help="run the API alone (settings from GRO_* variables)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1, help="uvicorn processes")
    serve.set_defaults(handler=_cmd_serve)
