"""The Celery tasks: names are the contract with the API (server.queue), bodies are one call
into worker.runner. A failed job is recorded by the runner and never retried; only transient
database or broker errors before the job is claimed retry, a bounded number of times."""

from __future__ import annotations

import os
import socket

import redis.exceptions
from sqlalchemy.exc import OperationalError

from server.config import get_settings
from server.queue import EVALUATE_TASK, GENERATE_TASK, JOIN_TASK, TRAIN_TASK
from worker.celery_app import app
from worker.nodes import run_join_job
from worker.runner import run_evaluation_job, run_generation_job, run_train_job

TRANSIENT = (OperationalError, redis.exceptions.ConnectionError, ConnectionError)
RETRY = {"autoretry_for": TRANSIENT, "max_retries": 5, "retry_backoff": 2, "retry_jitter": True}


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@app.task(name=TRAIN_TASK, acks_late=True, reject_on_worker_lost=True, **RETRY)
def train(job_id: str) -> str:
    return run_train_job(get_settings(), job_id, worker_name())


@app.task(name=EVALUATE_TASK, acks_late=True, reject_on_worker_lost=True, **RETRY)
def evaluate(job_id: str) -> str:
    return run_evaluation_job(get_settings(), job_id, worker_name())


@app.task(name=GENERATE_TASK, acks_late=True, reject_on_worker_lost=True, **RETRY)
def generate(job_id: str) -> str:
    return run_generation_job(get_settings(), job_id, worker_name())


@app.task(name=JOIN_TASK, acks_late=True, reject_on_worker_lost=True, **RETRY)
def join(job_id: str, attempt: int) -> str:
    """Be one more machine of a job spanning several (worker.nodes)."""
    return run_join_job(get_settings(), job_id, attempt, worker_name())
