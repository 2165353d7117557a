"""`gro up`: registered on gro's parser through the `gro.cli` entry point."""

from __future__ import annotations

import argparse
from pathlib import Path

from stack.guard import say
from stack.up import Options, up


def _cmd_up(args: argparse.Namespace) -> int:
    options = Options(
        data_dir=Path(args.data_dir),
        port=args.port,
        dashboard_port=args.dashboard_port,
        database=args.database,
        broker=args.broker,
        demo=not args.no_demo,
        dashboard=not args.no_dashboard,
        workers=args.workers,
    )
    try:
        return up(options)
    except RuntimeError as exc:
        say(f"gro up: {exc}", err=True)
        return 1


def add_verbs(sub: argparse._SubParsersAction) -> None:
    verb = sub.add_parser("up", help="start the API, a worker and the dashboard (and a demo)")
    verb.add_argument("--data-dir", default=".gro", help="database, broker data, storage, logs")
    verb.add_argument("--port", type=int, default=8000, help="API port")
    verb.add_argument("--dashboard-port", type=int, default=8501)
    verb.add_argument("--database", help="an external database URL instead of SQLite")
    verb.add_argument("--broker", help="an external Redis URL instead of the embedded one")
    verb.add_argument("--workers", type=int, default=1, help="worker processes (one job each)")
    verb.add_argument("--no-demo", action="store_true", help="do not submit the demo comparison")
    verb.add_argument("--no-dashboard", action="store_true")
    verb.set_defaults(handler=_cmd_up)
