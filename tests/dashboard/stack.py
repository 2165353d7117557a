"""A running stack for the dashboard's tests, screenshots and benchmark: the real API (uvicorn
serving server.main:app on SQLite, the broker pointing at nothing: jobs are stored queued all
the same) and, when asked, `streamlit run dashboard/app.py`; both on free 127.0.0.1 ports,
stopped by PID.

The database is seeded with what a worker would have written: jobs are created through the
API (so specs are resolved and comparisons expanded by the server itself), then claimed,
filled with metrics, samples, events and checkpoints, and finished with server.db's functions.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from gro_core.methods import get_method
from server.db import jobs as db_jobs
from server.db import outputs
from server.db.ids import new_id
from server.db.migrate import upgrade
from server.db.models import Checkpoint
from server.db.owners import create_key
from server.db.session import dispose_engine, session_scope
from tests.processes import free_port, port_open, stop, wait_until

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Stack:
    url: str
    key: str
    database_url: str
    storage: Path
    processes: list[subprocess.Popen] = field(default_factory=list)
    dashboard_url: str | None = None

    def http(self) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.key}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)

    def stop(self) -> None:
        for process in reversed(self.processes):
            stop(process)
        dispose_engine(self.database_url)


def _spawn(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with log.open("ab") as out:
        return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def start_api(root: Path, owner: str = "demo") -> Stack:
    """A migrated SQLite database under `root`, an API key of `owner`, and the API."""
    root.mkdir(parents=True, exist_ok=True)
    database_url = f"sqlite:///{root / 'gro.db'}"
    upgrade(database_url)
    with session_scope(database_url) as session:
        key = create_key(session, owner)
    port = free_port()
    env = {
        **os.environ,
        "GRO_ENVIRONMENT": "test",
        "GRO_SECRET_KEY": secrets.token_urlsafe(24),
        "GRO_DATABASE_URL": database_url,
        "GRO_STORAGE_DIR": str(root / "storage"),
        "GRO_BROKER_URL": f"redis://127.0.0.1:{free_port()}/0",  # nothing listens there
    }
    argv = [sys.executable, "-m", "uvicorn", "server.main:app", "--host", "127.0.0.1"]
    argv += ["--port", str(port), "--log-level", "warning", "--no-access-log"]
    process = _spawn(argv, env, root / "api.log")
    stack = Stack(f"http://127.0.0.1:{port}", key, database_url, root / "storage", [process])
    try:
        wait_until(lambda: _healthy(stack.url), 60, "the API")
    except TimeoutError:
        stack.stop()
        raise
    return stack


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def start_dashboard(stack: Stack, root: Path, port: int | None = None) -> str:
    """`streamlit run dashboard/app.py` against the stack's API; its URL."""
    port = port or free_port()
    env = {**os.environ, "GRO_API_URL": stack.url, "GRO_API_KEY": stack.key}
    argv = [sys.executable, "-m", "streamlit", "run", "dashboard/app.py"]
    argv += ["--server.headless", "true", "--server.port", str(port)]
    argv += ["--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"]
    argv += ["--server.fileWatcherType", "none"]
    stack.processes.append(_spawn(argv, env, root / "dashboard.log"))
    wait_until(lambda: port_open(port), 60, "the dashboard")
    stack.dashboard_url = f"http://127.0.0.1:{port}"
    return stack.dashboard_url


@contextmanager
def running_stack(root: Path, dashboard: bool = False) -> Iterator[Stack]:
    stack = start_api(root)
    try:
        if dashboard:
            start_dashboard(stack, root)
        yield stack
    finally:
        stack.stop()


# --- seeding -------------------------------------------------------------------------------

# How each method's synthetic run behaves: final reward and how fast it gets there (steps).
PROFILES = {
    "grpo": (0.80, 90.0),
    "rloo": (0.72, 120.0),
    "gro": (0.86, 70.0),
    "remax": (0.65, 150.0),
    "dpo": (0.90, 60.0),
    "kto": (0.85, 80.0),
    "reinforce_pp": (0.70, 110.0),
    "awr": (0.60, 160.0),
}
SIX_METRICS = (
    "reward/mean",
    "loss/value",
    "kl/ref",
    "completion/length",
    "gro/weight/mean",
    "gro/zero_var_groups",
)
SAMPLES = "train/samples"
PROMPTS = [f"{a}+{b}=" for a, b in ((3, 4), (12, 7), (5, 9), (20, 13), (8, 8), (6, 1))]


def base_spec(method: str, steps: int, **data: Any) -> dict[str, Any]:
    return {
        "model": "builtin:tiny-llama",
        "method": method,
        "data": data or {"task": "builtin:arithmetic"},
        "rollout": {"num_generations": 4, "max_new_tokens": 6},
        "train": {"steps": steps, "batch_size": 8, "lr": 5e-5},
        "eval": {"every": 50, "num_prompts": 64},
        "checkpoint": {"every": 100, "keep": 2},
    }


def curves(
    method: str, seed: int, steps: int, names: Sequence[str] | None
) -> dict[str, np.ndarray]:
    """Plausible per-step metrics of one run (steps 1..steps), reproducible from (method,
    seed): reward rises towards the method's level, KL grows, zero-variance groups vanish."""
    rng = np.random.default_rng([seed, sum(map(ord, method))])
    final, rate = PROFILES.get(method, (0.7, 100.0))
    t = np.arange(1, steps + 1, dtype=np.float64)
    progress = 1 - np.exp(-t / rate)
    noise = lambda scale: rng.normal(0, scale, steps)  # noqa: E731
    reward = np.clip(0.1 + (final - 0.1) * progress + noise(0.04), 0, 1)
    out = {
        "reward/mean": reward,
        "reward/std": np.clip(0.45 - 0.25 * progress + noise(0.02), 0.01, None),
        "loss/value": 0.7 - 0.4 * reward + noise(0.05),
        "loss/policy": -0.2 * reward + noise(0.05),
        "kl/ref": 0.05 * progress * (1 + 0.3 * seed) + np.abs(noise(0.004)),
        "completion/length": 8 - 4 * progress + noise(0.3),
        "adv/mean": noise(0.01),
        "adv/std": 0.9 - 0.3 * progress + noise(0.02),
        "gro/anchor_distance/mean": -0.5 + progress + noise(0.05),
        "gro/anchor_distance/std": 0.6 + noise(0.03),
        "gro/weight/mean": 0.6 - 0.2 * progress + noise(0.02),
        "gro/weight/std": 0.15 + noise(0.01),
        "gro/zero_var_groups": np.clip(0.6 * np.exp(-t / rate) + noise(0.03), 0, 1),
        "train/lr": np.full(steps, 5e-5),
        "time/elapsed_s": np.cumsum(np.full(steps, 0.4 + 0.1 * len(method)) + noise(0.01) ** 2),
    }
    evals = np.full(steps, np.nan)  # evaluated every 50 steps only
    evals[49::50] = np.clip(reward[49::50] + 0.03 + rng.normal(0, 0.02, len(evals[49::50])), 0, 1)
    out["eval/reward"] = evals
    out["eval/accuracy"] = np.where(np.isnan(evals), np.nan, np.clip(evals - 0.05, 0, 1))
    # Sequence-level KL at the same evaluations: methods move away at their own pace.
    kl_ref = np.full(steps, np.nan)
    kl_ref[49::50] = (final + 0.3 * seed) * progress[49::50] * t[49::50] / steps
    out["eval/kl_ref"] = kl_ref
    if method == "grpo":
        out["gro/clip_frac"] = np.clip(0.05 + noise(0.01), 0, 1)
    if names is not None:
        out = {k: v for k, v in out.items() if k in names}
    return out


def samples_per_step(spec: dict[str, Any]) -> int:
    """What the trainer counts per step for the seeded runs: a batch of prompts times the
    generations of each when it samples rollouts (the online methods on builtin:arithmetic),
    a batch of rows (pairs) otherwise."""
    rollouts = get_method(spec["method"]).online and "task" in spec["data"]
    generations = spec["rollout"]["num_generations"] if rollouts else 1
    return spec["train"]["batch_size"] * generations


def samples_for(method: str, seed: int, step: int, steps: int, group: int = 4) -> list[dict]:
    """A step's rollouts: each prompt sampled `group` times, exact-match reward, advantages
    normalised within the prompt's group, anchor distances drifting, weights σ(−d)."""
    rng = np.random.default_rng([seed, step, sum(map(ord, method))])
    final, rate = PROFILES.get(method, (0.7, 100.0))
    p = 0.1 + (final - 0.1) * (1 - math.exp(-step / rate))
    prompts = [PROMPTS[(step // 10 + i) % len(PROMPTS)] for i in range(4)]  # same for all runs
    rows = []
    for prompt in prompts:
        a, b = (int(x) for x in prompt[:-1].split("+"))
        right = rng.random(group) < p
        rewards = right.astype(float)
        std = rewards.std()
        advantages = (rewards - rewards.mean()) / std if std > 0 else np.zeros(group)
        for i in range(group):
            distance = float(rng.normal(-0.5 + step / steps, 0.6))
            answer = a + b if right[i] else a + b + int(rng.integers(1, 5))
            rows.append(
                {
                    "prompt": prompt,
                    "completion": str(answer),
                    "reward": float(rewards[i]),
                    "advantage": float(advantages[i]),
                    "anchor_distance": distance,
                    "weight": 1 / (1 + math.exp(distance)),
                }
            )
    return rows


def fill_run(
    stack: Stack,
    job: dict[str, Any],
    *,
    upto: int | None = None,
    names: Sequence[str] | None = None,
    sample_every: int = 10,
    finish: str | None = "succeeded",
    clock: bool = True,
) -> None:
    """Write what a worker would have for `job` up to step `upto` (default: all its steps),
    then finish it with `finish` (None: leave it running); `clock`: write the trainer's own
    axes, time/elapsed_s and train/samples."""
    steps = job["progress"]["total_steps"]
    upto = upto or steps
    method, seed = job["method"], job["spec"]["train"]["seed"]
    series = curves(method, seed, steps, names)
    if names is None or SAMPLES in names:
        series[SAMPLES] = samples_per_step(job["spec"]) * np.arange(1, steps + 1.0)
    if not clock:
        series.pop("time/elapsed_s", None)
        series.pop(SAMPLES, None)
    points = [
        (s + 1, n, float(v[s])) for n, v in series.items() for s in range(upto) if v[s] == v[s]
    ]  # NaN != NaN: steps a series skips
    with session_scope(stack.database_url) as session:
        attempt = db_jobs.claim(session, job["id"], "seed-worker")
        db_jobs.add_event(session, job["id"], "started", "training started", step=0)
        for start in range(0, len(points), 20_000):
            outputs.write_metrics(session, job["id"], points[start : start + 20_000])
        if sample_every:
            for step in range(sample_every, upto + 1, sample_every):
                outputs.write_samples(
                    session, job["id"], step, samples_for(method, seed, step, steps)
                )
        for step in range(50, upto + 1, 50):
            message = f"eval/reward={series.get('eval/reward', [0.5] * steps)[step - 1]:.3f}"
            db_jobs.add_event(session, job["id"], "eval", message, step=step)
        latest = {
            n: float(v[:upto][~np.isnan(v[:upto])][-1])
            for n, v in series.items()
            if not n.startswith("time/") and not np.isnan(v[:upto]).all()
        }
        clock_s = series.get("time/elapsed_s", np.full(steps, 0.5 * upto))[upto - 1]
        eta = float(clock_s) / upto * (steps - upto)
        db_jobs.beat(session, job["id"], attempt, step=upto, eta_seconds=eta, final_metrics=latest)
        _checkpoints(stack, session, job["id"], upto, every=100)
        if finish:
            db_jobs.add_event(session, job["id"], finish, f"run {finish}", step=upto)
            fields = {
                "error_code": "non_finite",
                "error_message": f"non-finite loss (nan) at step {upto}",
            }
            db_jobs.finish(
                session, job["id"], attempt, finish, **(fields if finish == "failed" else {})
            )


def _checkpoints(stack: Stack, session: Any, job_id: str, upto: int, every: int) -> None:
    for step in [s for s in range(every, upto + 1, every)][-2:]:
        relative = f"jobs/{job_id}/checkpoints/step-{step}"
        directory = stack.storage / relative
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "config.json").write_text(json.dumps({"step": step}))
        (directory / "model.safetensors").write_bytes(bytes(4096))
        checkpoint = Checkpoint(
            id=new_id("checkpoint"), job_id=job_id, step=step, path=relative, bytes=4096 + 13
        )
        outputs.add_checkpoint(session, checkpoint)
        db_jobs.add_event(session, job_id, "checkpoint", f"saved step-{step}", step=step)


def _ok(response: httpx.Response) -> Any:
    if response.status_code >= 300:
        raise RuntimeError(f"{response.request.url}: {response.status_code} {response.text}")
    return response.json()


def seed_comparison(
    stack: Stack,
    name: str,
    methods: Sequence[str],
    seeds: Sequence[int],
    steps: int,
    names: Sequence[str] | None = None,
    sample_every: int = 10,
) -> dict[str, Any]:
    """A comparison of `methods` × `seeds` on builtin arithmetic, every run finished."""
    variants = [{"label": m, "overrides": {"method": m}} for m in methods]
    body = {"name": name, "base": base_spec(methods[0], steps), "variants": variants}
    with stack.http() as http:
        comparison = _ok(http.post("/v1/comparisons", json={**body, "seeds": list(seeds)}))
    for job in comparison["jobs"]:
        fill_run(stack, job, names=names, sample_every=sample_every)
    with stack.http() as http:  # as it is now: finished, with final metrics and a summary
        comparison = _ok(http.get(f"/v1/comparisons/{comparison['id']}"))
    # The API lists a comparison's jobs by id, and ids order creation only to the millisecond
    # (random within one): a few jobs share one, so the list can come out of order (grpo seed
    # 2 after rloo seed 0). Keep the order they were created in (variant by variant, seed by
    # seed), so that jobs[0] is always the first method's first seed.
    created = [(m, s) for m in methods for s in seeds]
    comparison["jobs"].sort(key=lambda j: created.index((j["variant"], j["seed"])))
    return comparison


PAIRS = [{"prompt": f"rev {w}=", "chosen": w[::-1], "rejected": w} for w in ("abc", "hello", "gro")]
PROMPT_ROWS = [{"prompt": p, "answer": str(sum(map(int, p[:-1].split("+"))))} for p in PROMPTS]


def seed_demo(stack: Stack, steps: int = 300) -> dict[str, Any]:
    """The dashboard's demo: a 3-method × 3-seed comparison plus single jobs in every state.
    Returns {"comparison": ..., "jobs": {name: job}, "datasets": {name: dataset}}."""
    comparison = seed_comparison(stack, "arith-methods", ("grpo", "rloo", "gro"), (0, 1, 2), steps)
    jobs: dict[str, dict[str, Any]] = {}
    with stack.http() as http:
        pairs = _ok(http.post("/v1/datasets", files={"file": ("pairs.jsonl", _jsonl(PAIRS))}))
        prompts = _ok(
            http.post("/v1/datasets", files={"file": ("prompts.jsonl", _jsonl(PROMPT_ROWS))})
        )

        def submit(name: str, method: str, total: int, **data: Any) -> dict[str, Any]:
            jobs[name] = _ok(
                http.post("/v1/jobs", json={**base_spec(method, total, **data), "name": name})
            )
            return jobs[name]

        # Without wall-clock times, like a run imported from an older CLI.
        live = submit("dpo-live", "dpo", 400, train=pairs["id"])
        fill_run(stack, live, upto=120, finish=None, clock=False)
        fill_run(stack, submit("grpo-failed", "grpo", 200), upto=37, finish="failed")
        submit("to-cancel", "rloo", 300)
        fill_run(
            stack, submit("to-resume", "kto", 300, train=pairs["id"]), upto=60, finish="cancelled"
        )
        submit("kto-queued", "kto", 100, train=pairs["id"])
        for job_id in [j["id"] for j in jobs.values()]:
            jobs_by_id = _ok(http.get(f"/v1/jobs/{job_id}"))
            jobs[jobs_by_id["name"]] = jobs_by_id
    return {
        "comparison": comparison,
        "jobs": jobs,
        "datasets": {"pairs": pairs, "prompts": prompts},
    }


def _jsonl(rows: list[dict]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()
