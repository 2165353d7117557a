"""`gro` verbs that talk to the API over HTTP: login, submit, jobs, logs, cancel, pause, resume,
compare. gro_core's CLI finds them through the `gro.cli` entry point; nothing here imports
gro_core or the server."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from client.http import ApiError, GroClient, read_config, write_config

Handler = Callable[[argparse.Namespace], int]


def _print_error(exc: ApiError) -> int:
    where = f" (field {exc.field})" if exc.field else ""
    where += f" (line {exc.line})" if exc.line else ""
    print(f"error {exc.status} {exc.code}: {exc}{where}", file=sys.stderr)
    for detail in exc.details[1:]:
        print(f"  {detail.get('message')}", file=sys.stderr)
    return 2 if exc.status in (400, 404, 409, 413, 422) else 1


def _local_file(value: Any, base: Path) -> Path | None:
    """The file a data entry names here, relative to the spec's folder or the current one."""
    if not isinstance(value, str) or value.startswith(("ds-", "builtin:")):
        return None
    return next((p for p in (base / value, Path(value)) if p.is_file()), None)


def _upload_local(client: GroClient, document: dict[str, Any], base: Path) -> None:
    """Replace data.train / data.eval paths that exist here by ids of uploaded datasets."""
    data = document.get("data") or {}
    for key in ("train", "eval"):
        path = _local_file(data.get(key), base)
        if path is not None:
            dataset = client.upload_dataset(path)
            print(f"uploaded {path} -> {dataset['id']} ({dataset['kind']}, {dataset['rows']} rows)")
            data[key] = dataset["id"]


def _read_yaml(path: str) -> dict[str, Any]:
    document = yaml.safe_load(Path(path).read_text())
    if not isinstance(document, dict):
        raise SystemExit(f"{path}: expected a mapping")
    return document


def _follow(client: GroClient, job_id: str) -> int:
    for event in client.follow(job_id):
        step = f"[{event['step']}] " if event.get("step") is not None else ""
        print(f"{event['created_at'][11:19]} {event['kind']:<16} {step}{event['message']}")
    job = client.job(job_id)
    print(f"{job_id} {job['status']}")
    return 0 if job["status"] == "succeeded" else 1


def _cmd_submit(args: argparse.Namespace) -> int:
    client = GroClient.from_config()
    document = _read_yaml(args.spec)
    _upload_local(client, document, Path(args.spec).parent)
    job = client.submit(document)
    print(f"{job['id']} {job['status']}")
    return _follow(client, job["id"]) if args.follow else 0


def _cmd_jobs(args: argparse.Namespace) -> int:
    client = GroClient.from_config()
    if args.id:
        print(yaml.safe_dump(client.job(args.id), sort_keys=False))
        return 0
    rows = client.jobs(status=args.status, method=args.method, name=args.name, limit=args.limit)
    print(f"{'id':<28} {'method':<12} {'status':<10} {'progress':<12} name")
    for job in rows:
        p = job["progress"]
        progress = f"{p['step']}/{p['total_steps'] or '?'}"
        print(
            f"{job['id']:<28} {job['method']:<12} {job['status']:<10} {progress:<12} "
            f"{job['name'] or ''}"
        )
    return 0


def _cmd_logs(args: argparse.Namespace) -> int:
    client = GroClient.from_config()
    if args.follow:
        return _follow(client, args.id)
    for event in client.events(args.id):
        print(f"{event['created_at'][11:19]} {event['kind']:<16} {event['message']}")
    return 0


def _cmd_cancel(args: argparse.Namespace) -> int:
    job = GroClient.from_config().cancel(args.id)
    print(f"{job['id']} {job['status']}{' (stopping)' if job['cancel_requested'] else ''}")
    return 0


def _cmd_pause(args: argparse.Namespace) -> int:
    job = GroClient.from_config().pause(args.id)
    print(f"{job['id']} {job['status']}{' (pausing)' if job['status'] == 'running' else ''}")
    return 0


def _cmd_resume(args: argparse.Namespace) -> int:
    job = GroClient.from_config().resume(args.id)
    print(f"{job['id']} {job['status']}")
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    """A comparison document: {name, base: spec or a spec file, variants: [...], seeds: [...]}."""
    client = GroClient.from_config()
    document = _read_yaml(args.spec)
    base_dir = Path(args.spec).parent
    if isinstance(document.get("base"), str):
        document["base"] = _read_yaml(str(base_dir / document["base"]))
    _upload_local(client, document["base"], base_dir)
    comparison = client.compare(document)
    print(f"{comparison['id']}: {len(comparison['jobs'])} jobs")
    for job in comparison["jobs"]:
        print(f"  {job['id']} {job['variant']} seed={job['seed']} {job['status']}")
    return 0


def _cmd_login(args: argparse.Namespace) -> int:
    client = GroClient(args.url, args.key)
    client.jobs(limit=1)  # fails with 401 on a bad key before anything is written
    print(f"saved to {write_config(args.url, args.key)}")
    return 0


def _client_verb(handler: Handler) -> Handler:
    """The handler, with the API's error answers and unreachable APIs printed, not raised."""

    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except ApiError as exc:
            return _print_error(exc)
        except OSError as exc:  # connection refused, file missing
            print(f"error: {exc} (API at {read_config()['url']})", file=sys.stderr)
            return 1

    return run


def _add_job_verbs(sub: argparse._SubParsersAction) -> None:
    submit = sub.add_parser("submit", help="submit a job spec to the API (local data uploaded)")
    submit.add_argument("spec")
    submit.add_argument("-f", "--follow", action="store_true", help="stream its events")
    submit.set_defaults(handler=_client_verb(_cmd_submit))
    jobs = sub.add_parser("jobs", help="list jobs, or show one")
    jobs.add_argument("id", nargs="?")
    jobs.add_argument("--status")
    jobs.add_argument("--method")
    jobs.add_argument("--name")
    jobs.add_argument("--limit", type=int, default=20)
    jobs.set_defaults(handler=_client_verb(_cmd_jobs))
    logs = sub.add_parser("logs", help="a job's events")
    logs.add_argument("id")
    logs.add_argument("-f", "--follow", action="store_true")
    logs.set_defaults(handler=_client_verb(_cmd_logs))
    verbs = (("cancel", _cmd_cancel), ("pause", _cmd_pause), ("resume", _cmd_resume))
    for name, handler in verbs:
        verb = sub.add_parser(name, help=f"{name} a job")
        verb.add_argument("id")
        verb.set_defaults(handler=_client_verb(handler))


def add_verbs(sub: argparse._SubParsersAction) -> None:
    """Register the client's verbs on gro's parser (the `gro.cli` entry point)."""
    _add_job_verbs(sub)
    compare = sub.add_parser("compare", help="start a comparison (variants × seeds)")
    compare.add_argument("spec", help="YAML: name, base (a spec or spec file), variants, seeds")
    compare.set_defaults(handler=_client_verb(_cmd_compare))
    login = sub.add_parser("login", help="save the API URL and key to ~/.config/gro/config")
    login.add_argument("--url", default="http://127.0.0.1:8000")
    login.add_argument("--key", required=True)
    login.set_defaults(handler=_client_verb(_cmd_login))
