"""How a running job reaches the database: the engine's callback, writing in batches.

Metrics and samples are buffered and written about once a second (and at checkpoints and the
end), idempotently: a point is keyed by (job, step, name) and a sample by (job, step, index),
so a batch written twice changes nothing. A heartbeat thread writes progress into the job row;
when the job was taken from this attempt (re-queued elsewhere) or cancelled, the loop stops
at the next step boundary.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from gro_core.trainers.callbacks import Callback
from server.config import Settings
from server.db import jobs as db_jobs
from server.db import outputs
from server.db.ids import new_id
from server.db.models import Checkpoint
from server.db.session import session_scope

log = logging.getLogger("gro.worker")

FLUSH_S = 1.0
FLUSH_POINTS = 5000
# Progress numbers the jobs list shows while a job runs (its final metrics once done).
_SHOWN_PREFIXES = ("reward/", "eval/", "loss/", "kl/")


class JobLostError(RuntimeError):
    """This attempt no longer owns its job (the reconciler gave it to another worker): stop
    at once, writing nothing more, not even a checkpoint."""


class DbWriter(Callback):
    """The engine's callback for one attempt at one job. It keeps the base's no-op `on_resume`:
    the claim already dropped what was written after the checkpoint the run continues from."""

    def __init__(self, settings: Settings, job_id: str, attempt: int):
        self.url, self.storage = settings.database_url, Path(settings.storage_dir)
        self.job_id, self.attempt = job_id, attempt
        self.heartbeat_s = settings.heartbeat_s
        self.started = time.monotonic()
        self.first_step: int | None = None  # the step this attempt started from
        self.points: list[tuple[int, str, float]] = []
        self.samples: list[tuple[int, list[dict[str, Any]]]] = []
        self.latest: dict[str, float] = {}
        self.progress: dict[str, Any] = {}
        self.last_flush = time.monotonic()
        self.lost = threading.Event()  # the attempt no longer owns the job
        self.stop_beating = threading.Event()
        self.beater = threading.Thread(target=self._beat_forever, daemon=True, name="heartbeat")

    # --- engine callbacks ------------------------------------------------------------------

    def on_metrics(self, step: int, metrics: dict[str, float]) -> None:
        self.points += [(step, name, value) for name, value in metrics.items()]
        shown = {k: v for k, v in metrics.items() if k.startswith(_SHOWN_PREFIXES)}
        # A new dict, not an in-place update: the heartbeat thread may be copying this one.
        self.latest = self.latest | shown

    def on_samples(self, step: int, samples: list[dict[str, Any]]) -> None:
        self.samples.append((step, samples))

    def on_event(self, step: int, kind: str, message: str) -> None:
        self.flush()  # events and the outputs before them land in order
        with session_scope(self.url) as session:
            db_jobs.add_event(session, self.job_id, kind, message, step=step)

    def on_checkpoint(self, step: int, path: Path) -> None:
        self.flush()
        relative = path.relative_to(self.storage).as_posix()
        size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
        kept = [int(p.name.split("-")[1]) for p in path.parent.glob("step-*") if p.is_dir()]
        with session_scope(self.url) as session:
            checkpoint = Checkpoint(
                id=new_id("checkpoint"), job_id=self.job_id, step=step, path=relative, bytes=size
            )
            outputs.add_checkpoint(session, checkpoint)
            outputs.prune_checkpoints(session, self.job_id, kept)
            db_jobs.add_event(session, self.job_id, "checkpoint", f"saved {path.name}", step=step)

    def on_step_end(self, step: int, total: int, metrics: dict[str, float]) -> None:
        # The run's clock (time/elapsed_s) is the trainer's metric; the ETA is this attempt's
        # own pace, which a resumed attempt must not average with an earlier worker's.
        if self.first_step is None:
            self.first_step = step - 1
        seconds = time.monotonic() - self.started
        rate = (step - self.first_step) / seconds if seconds > 0 else 0.0
        eta = (total - step) / rate if rate > 0 else None
        self.progress = {"step": step, "total_steps": total, "eta_seconds": eta}
        if time.monotonic() - self.last_flush >= FLUSH_S or len(self.points) >= FLUSH_POINTS:
            self.flush()

    def should_stop(self) -> bool:
        """Checked between steps (one primary-key read): a cancel request stops the loop
        after this step, keeping a checkpoint; a lost job raises JobLostError."""
        if self.lost.is_set():
            raise JobLostError(f"job {self.job_id} was given to another worker")
        with session_scope(self.url) as session:
            return db_jobs.cancel_requested(session, self.job_id)

    # --- writing -----------------------------------------------------------------------------

    def flush(self) -> None:
        points, samples = self.points, self.samples
        self.points, self.samples = [], []
        self.last_flush = time.monotonic()
        if not points and not samples:
            return
        with session_scope(self.url) as session:
            outputs.write_metrics(session, self.job_id, points)
            for step, rows in samples:
                outputs.write_samples(session, self.job_id, step, rows)
            if self.progress:
                self._beat(session)

    def _beat(self, session: Any) -> None:
        fields = dict(self.progress)
        if self.latest:
            fields["final_metrics"] = dict(self.latest)
        if not db_jobs.beat(session, self.job_id, self.attempt, **fields):
            log.warning(
                "job %s is no longer ours (attempt %s): stopping", self.job_id, self.attempt
            )
            self.lost.set()

    def _beat_forever(self) -> None:
        while not self.stop_beating.wait(self.heartbeat_s):
            try:
                with session_scope(self.url) as session:
                    self._beat(session)
            except Exception:  # a transient database error: the next beat tries again
                log.exception("heartbeat of %s failed", self.job_id)

    def __enter__(self) -> DbWriter:
        self.beater.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_beating.set()
        self.beater.join()
        try:
            self.flush()  # after a failure too: the points before it are worth keeping
        except Exception:
            if exc[0] is None:
                raise
            log.exception("could not write the last outputs of %s", self.job_id)
