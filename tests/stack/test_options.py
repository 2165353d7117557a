"""How `gro up` shares the machine among its worker processes."""

from __future__ import annotations

import os

import pytest

from stack.up import sharing_the_machine, worker_threads


def test_one_worker_keeps_torch_default_threads() -> None:
    assert worker_threads(1, {}) == {}


@pytest.mark.parametrize("workers", [2, 3, 64])
def test_several_workers_split_the_cores_and_each_gets_one_at_least(workers: int) -> None:
    threads = int(worker_threads(workers, {})["GRO_TORCH_THREADS"])
    assert threads == max(1, (os.cpu_count() or 1) // workers)
    assert threads * workers <= max(workers, os.cpu_count() or 1)


def test_an_operator_setting_wins() -> None:
    assert worker_threads(4, {"GRO_TORCH_THREADS": "3"}) == {}


def test_gro_up_trains_under_sched_idle_unless_told_otherwise() -> None:
    assert sharing_the_machine({}) == {"GRO_TRAIN_SCHED_IDLE": "1"}
    assert sharing_the_machine({"GRO_TRAIN_SCHED_IDLE": "0"}) == {}
