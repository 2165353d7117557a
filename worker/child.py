"""The child process one job runs in (GRO_JOB_ISOLATION=process); worker.supervise starts it.

It runs worker.execute and sends the parent one message on its pipe: ("done", job fields),
("failed", (code, message)) or ("lost", None); a job of several processes runs under
torchrun's elastic agent instead (worker.launch), which may also answer ("requeue", reason).
Beside the run, a pulse thread writes the time into shared memory every half second: a pulse
that stops means one call holds the interpreter lock (a native regex, a C extension), which the
parent treats as a hung job. The child ends with its worker: PR_SET_PDEATHSIG on Linux, and a
thread watching the worker's pid.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

from worker.lifetime import die_with_parent

PULSE_S = 0.5


def _pulse(beat: Any) -> None:
    def loop() -> None:
        while True:
            beat.value = time.time()
            time.sleep(PULSE_S)

    threading.Thread(target=loop, daemon=True, name="pulse").start()


def child_ready() -> None:
    """A child that does nothing: starting one waits until the fork server has imported."""


def child_main(payload: dict[str, Any], conn: Connection, beat: Any) -> None:
    """Entry point of the job's process: `payload` holds the settings (as JSON values) and the
    claimed attempt (kind, job id, attempt, resolved document, checkpoint)."""
    die_with_parent(payload["parent_pid"])
    # The fork server's environment is the worker's when the server started; the job gets the
    # worker's environment as it is now.
    os.environ.clear()
    os.environ.update(payload["environ"])
    # Ctrl-C and SIGTERM reach the worker's whole process group; the worker decides what they
    # mean (Celery's warm shutdown lets the job run on), so they must not end the job here.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _pulse(beat)
    # After the pulse thread starts, so that it keeps the worker's priority: a job starved of
    # CPU by the API is slow, not hung. Threads the job starts later (torch's, the ranks) inherit.
    os.nice(int(payload["settings"].get("train_nice", 0)))
    if payload["settings"].get("train_sched_idle"):
        # This thread's policy: the threads it starts from now on (torch's, the ranks) inherit.
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    from server.config import Settings

    settings = Settings.model_validate(payload["settings"])
    # gro_core reads the operator's reward settings from the environment, never from the spec.
    os.environ["GRO_ALLOW_PYTHON_REWARDS"] = "1" if settings.allow_python_rewards else "0"
    os.environ["GRO_REWARD_TIMEOUT_S"] = str(settings.reward_timeout_s)
    from worker.callback import JobLostError
    from worker.execute import execute, failure

    if payload.get("node") is not None:  # several processes: torchrun's agent starts them
        from worker.launch import launch

        try:
            message = launch(payload)
        except Exception as exc:  # the rendezvous unreachable, a bad endpoint
            message = ("failed", failure(exc))
        conn.send(message)
        conn.close()
        return
    checkpoint = payload["checkpoint"]
    try:
        fields = execute(
            settings,
            payload["kind"],
            payload["job_id"],
            payload["attempt"],
            payload["document"],
            None if checkpoint is None else (checkpoint[0], checkpoint[1]),
        )
    except JobLostError:
        conn.send(("lost", None))
    except Exception as exc:
        conn.send(("failed", failure(exc)))
    else:
        conn.send(("done", fields))
    conn.close()
