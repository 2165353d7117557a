"""`gro bench methods [--quick]`: run the suite on a service and write the report; `gro bench
study`: the validation study v2, in-process (bench/validation/study.py).

It uses the service the CLI is configured for when one answers there (so the runs join that
dashboard), else it starts a private one in --data-dir (two workers, one thread each, so runs
are reproducible and two fit this machine's two cores) and stops it afterwards.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from bench.validation.report import write_report
from bench.validation.runner import run_suite
from bench.validation.suite import FULL, QUICK
from client.http import GroClient, read_config
from stack.up import Options, free_port, start


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@contextmanager
def service(args: argparse.Namespace) -> Iterator[GroClient]:
    config = read_config()
    if not args.private and _answers(config["url"]):
        key = config["key"] or _saved_key(Path(args.data_dir))
        print(f"using the service at {config['url']}", flush=True)
        yield GroClient(config["url"], key)
        return
    options = Options(
        data_dir=Path(args.data_dir),
        port=free_port(),
        demo=False,
        dashboard=False,
        workers=args.workers,
        worker_env={"GRO_TORCH_THREADS": "1"},
    )
    stack, key = start(options)
    print(f"started a service in {options.data_dir} ({args.workers} workers)", flush=True)
    try:
        yield GroClient(stack.api_url, key, timeout=120)
    finally:
        stack.stop()


def _saved_key(data_dir: Path) -> str:
    path = data_dir / "admin-key"
    return path.read_text().strip() if path.is_file() else ""


def bench_methods(args: argparse.Namespace) -> int:
    out = Path(args.out)
    results_path = out / "validation" / "results.json"
    if args.report_only:
        results = json.loads(results_path.read_text())
    else:
        budget = QUICK if args.quick else FULL
        with service(args) as client:
            results = run_suite(
                client, budget, results_path.parent, say=lambda line: print(line, flush=True)
            )
        results_path.write_text(json.dumps(results, indent=1, sort_keys=True))
    print(f"report: {write_report(results, out)}")
    return _warn_failed([r["job"] for r in results["runs"] if r["status"] != "succeeded"])


def add_verbs(sub: argparse._SubParsersAction) -> None:
    """Register `gro bench methods` on gro's parser (the `gro.cli` entry point)."""
    bench = sub.add_parser("bench", help="reproducible experiments")
    bench_sub = bench.add_subparsers(dest="bench_cmd", required=True)
    methods = bench_sub.add_parser(
        "methods", help="GRO against the methods it unifies, through the service"
    )
    methods.add_argument("--quick", action="store_true", help="2 seeds, a few steps (CI)")
    methods.add_argument("--out", default="docs", help="writes OUT/validation.md and plots")
    methods.add_argument(
        "--data-dir",
        default=".gro",
        help="where a private service keeps its data (gro up's by default)",
    )
    methods.add_argument("--workers", type=int, default=2)
    methods.add_argument(
        "--private", action="store_true", help="always start a private service, even if one answers"
    )
    methods.add_argument(
        "--report-only",
        action="store_true",
        help="rewrite the report from OUT/validation/results.json",
    )
    methods.set_defaults(handler=bench_methods)
    _add_study(bench_sub)


def bench_study(args: argparse.Namespace) -> int:
    """`gro bench study`: the validation study v2, in-process (bench.validation.study)."""
    from bench.validation.design import FULL, QUICK
    from bench.validation.pilot import pilot
    from bench.validation.study import run_study
    from bench.validation.study_report import FOLDER, write_report

    budget = QUICK if args.quick else FULL
    out = Path(args.out)
    if args.pilot:
        print(json.dumps(pilot(budget, Path(args.work_dir) / "pilot"), indent=1))
        return 0
    if args.report_only:
        results = json.loads((out / FOLDER / "results.json").read_text())
    else:
        say = lambda line: print(line, flush=True)  # noqa: E731
        results = run_study(
            budget, Path(args.work_dir), args.workers, keep=args.keep_checkpoints, say=say
        )
    print(f"report: {write_report(results, out)}")
    return _warn_failed([r["name"] for r in results["runs"] if r["status"] != "succeeded"])


def _warn_failed(failed: list[str]) -> int:
    """Name the runs that did not succeed (the report shows what the others gave); exit 0."""
    if failed:
        print(f"{len(failed)} runs did not succeed: {', '.join(failed)}", file=sys.stderr)
    return 0


def _add_study(bench_sub: argparse._SubParsersAction) -> None:
    study = bench_sub.add_parser(
        "study",
        help="validation study v2: every preset tuned, 3 tasks, 2 sizes, matched KL (in-process)",
    )
    study.add_argument("--quick", action="store_true", help="1 task, a few methods and steps (CI)")
    study.add_argument("--workers", type=int, default=2, help="spawned one-thread processes")
    study.add_argument("--out", default="docs", help="writes OUT/validation_v2.md and plots")
    study.add_argument(
        "--work-dir", default=".gro/study", help="runs, checkpoints and records (resumable)"
    )
    study.add_argument(
        "--keep-checkpoints", action="store_true", help="keep each run's checkpoints"
    )
    study.add_argument(
        "--report-only",
        action="store_true",
        help="rewrite the report from OUT/validation_v2/results.json",
    )
    study.add_argument(
        "--pilot", action="store_true", help="time short runs: the numbers estimate_minutes reads"
    )
    study.set_defaults(handler=bench_study)
