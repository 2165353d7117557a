"""`gro worker`: registered on gro's parser through the `gro.cli` entry point."""

from __future__ import annotations

import argparse

from worker.__main__ import add_arguments, run


def add_verbs(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("worker", help="run a worker: one job at a time (one per GPU)")
    add_arguments(parser)
    parser.set_defaults(handler=run)
