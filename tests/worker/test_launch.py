"""Jobs of several processes: routed to a queue that fits them, started by torchrun's elastic
agent in the worker's supervised child (2 gloo processes on CPU), cancelled within seconds, a
killed rank re-queuing the job, which resumes with continuous metrics; a job spanning machines
whose other machine never arrives fails `nodes_missing`."""

from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
from typing import Any

import psutil
import pytest

from server.config import Settings
from server.db import nodes as db_nodes
from server.db.models import Job, JobEvent, Metric
from server.db.session import new_session, session_scope
from server.queue import RecordingQueue, worker_queues
from tests.server.conftest import PAIRS, Api
from tests.worker.conftest import tiny_dpo
from tests.worker.hostile import hostile
from worker.__main__ import default_queues, offered_procs
from worker.launch import _failed_ranks, attempt_dir, peer_lost
from worker.runner import run_train_job


def on(spec: dict[str, Any], nproc: int = 2, nnodes: int = 1) -> dict[str, Any]:
    return {**spec, "resources": {"nproc_per_node": nproc, "nnodes": nnodes, "strategy": "ddp"}}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # One thread per rank: the machine's few cores are shared by both ranks (and other tests).
    # Python rewards allowed (the API checks it too): the hostile ones run in a rank.
    update = {"torch_threads": 1, "cancel_grace_s": 2.0, "allow_python_rewards": True}
    return settings.model_copy(update=update)


def job_row(settings: Settings, job_id: str) -> Job:
    with new_session(settings.database_url) as session:
        return session.get(Job, job_id)


def kinds(settings: Settings, job_id: str) -> list[str]:
    with new_session(settings.database_url) as session:
        rows = session.query(JobEvent).filter_by(job_id=job_id).order_by(JobEvent.id)
        return [e.kind for e in rows]


def steps(settings: Settings, job_id: str) -> list[int]:
    with new_session(settings.database_url) as session:
        rows = session.query(Metric).filter_by(job_id=job_id, name="loss/policy")
        return sorted(m.step for m in rows)


def ranks() -> list[psutil.Process]:
    """The rank processes below this one: those the elastic agent spawned (torchrun sets
    RANK inside them, after they start, so it is not in their initial environment)."""
    found = []
    for p in psutil.Process().children(recursive=True):
        try:
            line = " ".join(p.cmdline())
        except psutil.Error:
            continue
        if "spawn_main" in line and "resource_tracker" not in line:
            found.append(p)
    return found


def wait_for(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def in_thread(settings: Settings, job_id: str, queue: RecordingQueue) -> tuple[Any, dict]:
    result: dict[str, str] = {}
    thread = threading.Thread(
        target=lambda: result.update(status=run_train_job(settings, job_id, "w1", queue))
    )
    thread.start()
    return thread, result


# --- routing (no training) -------------------------------------------------------------------


def test_jobs_route_to_the_queue_fitting_their_processes(alice: Api, queue: RecordingQueue):
    pairs = alice.dataset(PAIRS)
    one = alice.job(tiny_dpo(pairs))
    two = alice.job(on(tiny_dpo(pairs), nproc=2))
    assert dict(queue.routed)[one["id"]] == "train"
    assert dict(queue.routed)[two["id"]] == "train-2"


def test_a_worker_takes_every_job_its_processes_fit():
    assert worker_queues(1) == ["train"]
    assert default_queues(4) == "train,train-2,train-3,train-4,light"
    assert offered_procs(None, 3) == 3 and offered_procs(2, 3) == 2
    assert offered_procs(None, None) >= 1  # GPUs, or one process on a CPU machine
    with pytest.raises(SystemExit, match="--procs must be at least 1"):
        offered_procs(0, None)


def test_joiners_take_distinct_node_numbers_and_no_more_than_needed(alice: Api, settings: Settings):
    job = alice.job(on(tiny_dpo(alice.dataset(PAIRS)), nproc=1, nnodes=3))
    with session_scope(settings.database_url) as session:
        session.get(Job, job["id"]).status = "running"
        session.get(Job, job["id"]).attempts = 1
        db_nodes.host_node(session, job["id"], 1, "w0", "10.0.0.1:29500")
    with session_scope(settings.database_url) as session:
        taken = [db_nodes.join_node(session, job["id"], 1, 3, f"w{n}") for n in (1, 2, 3)]
        assert db_nodes.join_node(session, job["id"], 2, 3, "w4") is None  # not that attempt
    assert taken == [(1, "10.0.0.1:29500"), (2, "10.0.0.1:29500"), None]
    with session_scope(settings.database_url) as session:
        assert db_nodes.nodes_joined(session, job["id"], 1) == 3


# --- real ranks ------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_two_process_job_runs_its_ranks_under_torchrun(alice: Api, settings: Settings):
    job = alice.job(on(tiny_dpo(alice.dataset(PAIRS), steps=4)))
    assert run_train_job(settings, job["id"], "w1", RecordingQueue()) == "succeeded"
    assert steps(settings, job["id"]) == [1, 2, 3, 4]
    ended = sorted(p.name for p in attempt_dir(settings.storage_dir, job["id"], 1).iterdir())
    assert ended == ["rank-0.json", "rank-1.json"]  # two ranks ran, both to their end
    done = job_row(settings, job["id"])
    assert done.step == 4 and done.final_metrics


@pytest.mark.slow
def test_cancel_ends_every_rank_within_seconds(alice: Api, settings: Settings):
    job = alice.job(on(tiny_dpo(alice.dataset(PAIRS), steps=5000)))
    thread, result = in_thread(settings, job["id"], RecordingQueue())
    wait_for(lambda: (job_row(settings, job["id"]).step or 0) >= 2, 240, "two steps")
    assert len(ranks()) == 2
    assert alice.post(f"/v1/jobs/{job['id']}/cancel").status_code == 200
    asked = time.monotonic()
    thread.join(60)
    seconds = time.monotonic() - asked
    print(f"a 2-process job cancelled in {seconds:.1f}s")
    assert result == {"status": "cancelled"} and seconds < 15, seconds
    assert ranks() == []  # no rank outlives the job
    assert job_row(settings, job["id"]).status == "cancelled"


@pytest.mark.slow
def test_a_killed_rank_requeues_the_job_which_resumes_with_continuous_metrics(
    alice: Api, settings: Settings
):
    job = alice.job(on(tiny_dpo(alice.dataset(PAIRS), steps=16, batch_size=2)))
    queue = RecordingQueue()
    thread, result = in_thread(settings, job["id"], queue)
    wait_for(lambda: (job_row(settings, job["id"]).step or 0) >= 5, 240, "a checkpoint")
    os.kill(max(p.pid for p in ranks()), signal.SIGKILL)  # one rank: the last started
    thread.join(60)
    assert result == {"status": "requeued"}
    assert job_row(settings, job["id"]).status == "queued" and queue.sent[-1][0] == job["id"]
    assert ranks() == []  # its peer went with it
    assert run_train_job(settings, job["id"], "w2", queue) == "succeeded"
    assert steps(settings, job["id"]) == list(range(1, 17))  # continuous, no duplicates
    assert job_row(settings, job["id"]).attempts == 2
    events = kinds(settings, job["id"])
    assert "requeued" in events and "resumed" in events


@pytest.mark.slow
def test_a_machine_that_never_joins_fails_the_job_nodes_missing(alice: Api, settings: Settings):
    settings = settings.model_copy(update={"node_join_timeout_s": 3.0})
    job = alice.job(on(tiny_dpo(alice.dataset(PAIRS)), nproc=1, nnodes=2))
    queue = RecordingQueue()
    assert run_train_job(settings, job["id"], "w1", queue) == "failed"
    assert queue.joins == [(job["id"], 1)]  # it asked for the other machine
    done = job_row(settings, job["id"])
    assert done.error_code == "nodes_missing"
    assert "GRO_NODE_JOIN_TIMEOUT_S" in done.error_message and "2 machines" in done.error_message


# --- a rank out of memory, hung, or orphaned ----------------------------------------------------


@pytest.fixture
def marks(tmp_path, monkeypatch: pytest.MonkeyPatch):
    folder = tmp_path / "marks"
    folder.mkdir()
    monkeypatch.setenv("GRO_TEST_MARKS", str(folder))  # the job's ranks inherit it
    return folder


def kill_when_over(marks, name: str, limit: int, seconds: float) -> threading.Thread:
    """Play the kernel enforcing a memory limit (a cgroup's memory.max): SIGKILL the process
    that left mark `name` once its resident memory passes `limit`, checking every 20 ms,
    quicker than the worker's once-a-second look at the job's memory."""

    def run() -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for mark in marks.glob(f"{name}-*"):
                try:
                    process = psutil.Process(int(mark.name.split("-")[1]))
                    if process.memory_info().rss > limit:
                        process.kill()
                        return
                except psutil.Error:
                    continue
            time.sleep(0.02)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.mark.slow
def test_a_rank_killed_over_its_memory_share_fails_the_job_out_of_memory(
    alice: Api, settings: Settings, marks
):
    cap = 4 * 2**30
    settings = settings.model_copy(update={"max_job_rss_bytes": cap})
    job = alice.job(on(hostile("eats_memory_on_one_rank")))
    killer = kill_when_over(marks, "memory", cap // 2, 300)  # the job as a whole stays under
    queue = RecordingQueue()
    assert run_train_job(settings, job["id"], "w1", queue) == "failed"
    killer.join(5)
    done = job_row(settings, job["id"])
    assert done.error_code == "out_of_memory", (done.error_code, done.error_message)
    assert "rank 1" in done.error_message and "GRO_MAX_JOB_RSS_BYTES" in done.error_message
    assert queue.sent == [] and "requeued" not in kinds(settings, job["id"])
    assert ranks() == []


@pytest.mark.slow
def test_a_rank_holding_the_gil_is_hung_though_its_agent_beats(
    alice: Api, settings: Settings, marks
):
    # The time limit only bounds the test: a job the watcher missed would end there instead.
    settings = settings.model_copy(update={"job_silent_s": 5.0, "job_time_limit_s": 150.0})
    job = alice.job(on(hostile("holds_the_gil")))
    started = time.monotonic()
    assert run_train_job(settings, job["id"], "w1", RecordingQueue()) == "failed"
    seconds = time.monotonic() - started
    print(f"a 2-process job with a rank holding the GIL failed in {seconds:.0f}s")
    done = job_row(settings, job["id"])
    assert done.error_code == "hung", (done.error_code, done.error_message)
    assert re.match(r"rank [01] of the job stopped responding", done.error_message)
    assert list(marks.glob("gil-*"))  # the reward held it, not the loading
    assert ranks() == []


# --- how an attempt whose ranks failed ends -----------------------------------------------------


class _Failure:
    def __init__(self, exitcode: int) -> None:
        self.exitcode, self.message = exitcode, "exited"


class _Failed:
    """What the elastic agent raises: the failures of this machine's ranks, by global rank."""

    def __init__(self, **exitcodes: int) -> None:
        self.failures = {int(r.removeprefix("r")): _Failure(c) for r, c in exitcodes.items()}


def ended_with(folder, **files: tuple[str, Any]) -> None:
    for rank, (kind, value) in files.items():
        (folder / f"rank-{rank.removeprefix('r')}.json").write_text(json.dumps([kind, value]))


GONE = RuntimeError("[pair.cc:553] Connection closed by peer [127.0.0.1]:31925.")


def test_a_collective_whose_peer_is_gone_is_told_from_other_errors():
    assert peer_lost(GONE)
    assert not peer_lost(RuntimeError("shape mismatch")) and not peer_lost(ValueError("peer"))


def test_ranks_that_lost_their_peer_on_another_machine_requeue_the_attempt(tmp_path):
    # node 0's rank saw its connection close; node 1's rank (killed with its worker) left nothing
    ended_with(tmp_path, r0=("peer_lost", ["error", f"RuntimeError: {GONE}"]))
    kind, reason = _failed_ranks(_Failed(r0=1), tmp_path)
    assert kind == "requeue" and "rank 0 lost its connection" in reason


def test_a_rank_error_anywhere_outranks_its_peers_broken_connections(tmp_path):
    ended_with(
        tmp_path,
        r0=("peer_lost", ["error", f"RuntimeError: {GONE}"]),
        r1=("failed", ["bad_data", "line 3: no prompt"]),  # on the other machine
    )
    assert _failed_ranks(_Failed(r0=1), tmp_path) == ("failed", ["bad_data", "line 3: no prompt"])
