"""The examples a run trains and evaluates on: from data files or a built-in task."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from transformers import PreTrainedTokenizerBase

from gro_core.data import DatasetError, load_rows
from gro_core.data.encode import Example, encode_prompts, encode_records
from gro_core.data.hub import load_hub
from gro_core.spec import JobSpec, SpecError, check_train_data
from gro_core.spec.hub import HubDataset
from gro_core.tasks import generate, get_task


class DataError(ValueError):
    """A dataset that cannot be trained on; the message names the file, line and field."""


@dataclass
class Data:
    """Encoded train and held-out examples, and what they came from."""

    kind: str
    train: list[Example]
    eval: list[Example]
    task: str | None = None  # builtin task whose rule reward scores generations
    offline: list[Example] = field(default_factory=list)  # mixed into online batches


def read_rows(path: str | HubDataset, kind: str | None = None) -> tuple[str, list[dict]]:
    """(kind, rows) of a dataset file or Hub dataset; `kind` given, rows of another kind are
    refused. Raises DataError naming the file (and its line and field) or the Hub dataset (and
    its row and field)."""
    if isinstance(path, HubDataset):
        try:
            return load_hub(path, kind)
        except DatasetError as exc:
            raise DataError(str(exc)) from exc
    if not Path(path).exists():
        raise DataError(f"data file not found: {path}")
    try:
        return load_rows(path, kind)
    except DatasetError as exc:
        raise DataError(f"{path}: {exc}") from exc


def _task_rows(spec: JobSpec, split: str, n: int) -> tuple[str, list[dict]]:
    assert spec.data.task is not None
    info = get_task(spec.data.task)
    return info.kind, generate(info.name, n, seed=spec.train.seed, split=split)


def load_records(spec: JobSpec) -> tuple[str, list[dict], list[dict]]:
    """(kind, train records, eval records) for the spec, checked against its method.

    With `data.offline_mix`, the prompts come from `data.task` and `data.train` holds the
    offline rows mixed into each batch (see `load_offline`)."""
    if spec.data.offline_mix > 0:
        if not spec.data.task or get_task(spec.data.task).kind != "prompt":
            raise DataError("data.offline_mix needs data.task to be a prompt task (builtin:<task>)")
        size = spec.data.task_size or spec.train.steps * spec.train.batch_size
        _, train = _task_rows(spec, "train", size)
        _, held_out = _task_rows(spec, "eval", spec.eval.num_prompts)
        return "prompt", train, held_out
    if spec.data.train:
        kind, train = read_rows(spec.data.train)
    else:
        size = spec.data.task_size or spec.train.steps * spec.train.batch_size
        kind, train = _task_rows(spec, "train", size)
    try:
        check_train_data(spec, kind)
    except SpecError as exc:
        raise DataError(str(exc)) from exc
    if spec.data.eval:
        _, held_out = read_rows(spec.data.eval, kind)
    elif spec.data.task and get_task(spec.data.task).kind == kind:
        _, held_out = _task_rows(spec, "eval", spec.eval.num_prompts)
    else:
        held_out = []
    return kind, train, held_out


def load_offline(spec: JobSpec) -> tuple[str, list[dict]]:
    """The offline rows (preference or sft) an online run mixes in: data.train."""
    if spec.data.offline_mix == 0:
        return "", []
    if not spec.data.train:
        raise DataError("data.offline_mix needs offline rows in data.train (preference or sft)")
    kind, rows = read_rows(spec.data.train)
    if kind not in ("preference", "sft"):
        raise DataError(f"data.train: offline_mix mixes preference or sft rows, not {kind} rows")
    return kind, rows


def load_data(spec: JobSpec, tokenizer: PreTrainedTokenizerBase) -> Data:
    """Encoded examples; offline methods only (online ones sample prompts instead)."""
    kind, train, held_out = load_records(spec)
    length = spec.train.max_length
    if kind == "prompt":
        # Rollouts add up to max_new_tokens after the prompt.
        room = max(2, length - spec.rollout.max_new_tokens)
        offline_kind, offline = load_offline(spec)
        return Data(
            kind,
            encode_prompts(tokenizer, train, room),
            encode_prompts(tokenizer, held_out, room),
            spec.data.task,
            offline=encode_records(tokenizer, offline_kind, offline, length) if offline else [],
        )
    task = spec.data.task if spec.data.task and "answer" in (train[0] if train else {}) else None
    return Data(
        kind=kind,
        train=encode_records(tokenizer, kind, train, length),
        eval=encode_records(tokenizer, kind, held_out, length),
        task=task,
    )
