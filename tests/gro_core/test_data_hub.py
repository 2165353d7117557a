"""Hugging Face datasets by name (data.train / data.eval): built locally, loaded offline through
`datasets.load_dataset`, renamed onto gro's fields and validated like a file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gro_core.cli import main as gro
from gro_core.data import Bounds, DatasetError
from gro_core.data.hub import load_hub, validate_hub
from gro_core.spec import format_validation_error, load_spec
from gro_core.spec.hub import HubDataset
from gro_core.trainers import DataError
from gro_core.trainers.datasets import load_records
from tests.helpers.hub_data import go_offline, write_hub_dir

MATH = {
    "main": {
        "train": [{"question": f"{i}+1=", "solution": str(i + 1), "id": i} for i in range(6)],
        "test": [{"question": "9+9=", "solution": "18", "id": 99}],
    },
    "hard": {"train": [{"question": "99*99=", "solution": "9801", "id": 7}]},
}
USER, BOT = "user", "assistant"


def chat(role: str, text: str) -> list[dict[str, str]]:
    return [{"role": role, "content": text}]


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    go_offline(monkeypatch, tmp_path_factory.getbasetemp() / "hf-datasets-cache")
    monkeypatch.setenv("GRO_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "gro-cache"))


@pytest.fixture(scope="module")
def math_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_hub_dir(tmp_path_factory.mktemp("hub") / "math", MATH)


def hub(root: Path, **keys) -> HubDataset:
    return HubDataset(hub=str(root), **keys)


def test_columns_map_a_datasets_columns_onto_gro_fields(math_dir: Path) -> None:
    source = hub(math_dir, config="main", columns={"prompt": "question", "answer": "solution"})
    kind, rows = load_hub(source)
    assert kind == "prompt" and len(rows) == 6
    # Mapped columns take gro's names; unmapped ones (id) stay, as a file's extra fields do.
    assert rows[2] == {"prompt": "2+1=", "answer": "3", "id": 2}


def test_config_and_split_select_what_is_read(math_dir: Path) -> None:
    columns = {"prompt": "question", "completion": "solution"}
    _, test = load_hub(hub(math_dir, config="main", split="test", columns=columns))
    _, hard = load_hub(hub(math_dir, config="hard", columns=columns))
    _, head = load_hub(hub(math_dir, config="main", split="train[:2]", columns=columns))
    assert [r["id"] for r in test] == [99] and [r["id"] for r in hard] == [7]
    assert [r["id"] for r in head] == [0, 1]
    with pytest.raises(DatasetError, match=r"field split: .*Unknown split \"valid\"") as err:
        load_hub(hub(math_dir, config="main", split="valid", columns=columns))
    assert err.value.issues[0].field == "split"


def test_an_unknown_column_is_named_with_the_columns_there_are(math_dir: Path) -> None:
    source = hub(math_dir, config="main", columns={"prompt": "question", "answer": "solutoin"})
    with pytest.raises(DatasetError) as err:
        load_hub(source)
    issue = err.value.issues[0]
    assert (issue.code, issue.field) == ("unknown_column", "columns.answer")
    assert "no column 'solutoin'" in str(err.value) and "question, solution, id" in str(err.value)


def test_trl_conversational_formats_need_no_mapping(tmp_path: Path) -> None:
    messages = [{"messages": chat(USER, f"hi {i}") + chat(BOT, f"hello {i}")} for i in range(3)]
    pairs = [
        {"prompt": chat(USER, "2+2?"), "chosen": chat(BOT, "4"), "rejected": chat(BOT, "5")}
    ] * 2
    completions = [{"prompt": chat(USER, "name?"), "completion": chat(BOT, "gro")}] * 2
    root = write_hub_dir(
        tmp_path / "chat",
        {"messages": {"train": messages}, "pairs": {"train": pairs}, "sft": {"train": completions}},
    )
    kind, rows = load_hub(hub(root, config="messages"))
    assert kind == "sft" and rows[1]["prompt"] == chat(USER, "hi 1")
    assert rows[1]["completion"] == chat(BOT, "hello 1")
    kind, rows = load_hub(hub(root, config="pairs"), "preference")
    assert kind == "preference" and rows[0]["chosen"] == chat(BOT, "4")
    kind, rows = load_hub(hub(root, config="sft"))
    assert kind == "sft" and rows[0]["completion"] == chat(BOT, "gro")


def test_a_bad_row_is_named_by_its_row_and_field(tmp_path: Path) -> None:
    rows = [{"q": "a", "good": "b", "bad": "c"}] * 4
    rows[2] = {"q": "a", "good": "", "bad": "c"}  # an empty chosen completion
    root = write_hub_dir(tmp_path / "pref", {"default": {"train": rows}})
    source = hub(root, columns={"prompt": "q", "chosen": "good", "rejected": "bad"})
    with pytest.raises(DatasetError) as err:
        load_hub(source, "preference")
    assert "row 3, field chosen: " in str(err.value)
    assert [(i.line, i.field) for i in err.value.issues] == [(3, "chosen")]
    report = validate_hub(source)
    assert not report.ok and report.rows == 4 and report.errors[0].line == 3


def test_server_bounds_hold_for_hub_rows(math_dir: Path) -> None:
    source = hub(math_dir, config="main", columns={"prompt": "question"})
    report = validate_hub(source, bounds=Bounds(rows=3))
    assert [i.code for i in report.errors] == ["too_many_rows"]
    report = validate_hub(source, bounds=Bounds(line=4))  # each row: 5+ bytes of strings
    assert report.error_count == 6 and {i.code for i in report.errors} == {"row_too_large"}


def test_the_spec_takes_the_shorthand_and_the_mapping_and_names_bad_keys() -> None:
    base = {"method": "sft", "model": "builtin:tiny-llama"}
    spec = load_spec(base | {"data": {"train": "hf:openai/gsm8k"}})
    assert spec.data.train == HubDataset(hub="openai/gsm8k")
    mapping = {"hub": "openai/gsm8k", "config": "main", "split": "test", "columns": {}}
    assert (
        load_spec(base | {"data": {"train": "x.jsonl", "eval": mapping}}).data.eval.split == "test"
    )
    assert load_spec(base | {"data": {"train": "ds-abc"}}).data.train == "ds-abc"
    for data, path, words in [
        ({"train": {"hub": "openai/gsm8k", "colums": {}}}, "data.train.colums", "'columns'"),
        ({"train": "hf:not an id"}, "data.train.hub", "not a Hub dataset id"),
        ({"train": {"hub": "a/b", "columns": {"prompt": "q", "x": "q"}}}, "data.train.columns",
         "more than one field"),
        ({"train": "x.jsonl", "eval": {"hub": "a/b", "split": "a b"}}, "data.eval.split",
         "pattern"),
    ]:  # fmt: skip
        with pytest.raises(ValueError) as err:
            load_spec(base | {"data": data})
        [problem] = format_validation_error(err.value)
        assert problem["path"] == path and words in problem["message"], problem


def test_a_job_reads_hub_train_and_eval_splits(math_dir: Path) -> None:
    columns = {"prompt": "question", "completion": "solution"}
    train = {"hub": str(math_dir), "config": "main", "columns": columns}
    spec = load_spec({
        "method": "sft", "model": "builtin:tiny-llama",
        "data": {"train": train, "eval": train | {"split": "test"}},
    })  # fmt: skip
    kind, rows, held_out = load_records(spec)
    assert kind == "sft" and len(rows) == 6 and [r["id"] for r in held_out] == [99]
    bad = spec.model_copy(update={"data": spec.data.model_copy(update={"train": HubDataset(
        hub=str(math_dir), config="main", columns={"prompt": "nope"})})})  # fmt: skip
    with pytest.raises(DataError, match=r"field columns\.prompt: no column 'nope'"):
        load_records(bad)


def test_gro_train_sft_from_a_hub_dataset(math_dir: Path, tmp_path: Path) -> None:
    columns = {"prompt": "question", "completion": "solution"}
    job = {
        "method": "sft",
        "model": "builtin:tiny-llama",
        "data": {"train": {"hub": str(math_dir), "config": "main", "columns": columns}},
        "train": {"steps": 2, "batch_size": 2, "lr": 1e-3, "warmup_steps": 0},
        "eval": {"every": 0},
        "checkpoint": {"every": 0},
    }
    spec = tmp_path / "job.yaml"
    spec.write_text(json.dumps(job))
    out = tmp_path / "run"
    assert gro(["train", str(spec), "--out", str(out), "--quiet"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "succeeded" and summary["steps"] == 2
    assert summary["spec"]["data"]["train"]["columns"] == columns


def test_gro_data_validate_reads_a_hub_dataset(math_dir: Path, tmp_path: Path, capsys) -> None:
    args = ["data", "validate", f"hf:{math_dir}", "--config", "main", "--split", "test"]
    assert gro([*args, "--column", "prompt=question", "--column", "answer=solution"]) == 0
    assert f"hf:{math_dir}[main]:test: prompt data, 1 rows, 0 errors" in capsys.readouterr().out
    rows = [{"q": "a", "good": "b", "bad": "c"}, {"q": "a", "good": "", "bad": "c"}]
    root = write_hub_dir(tmp_path / "pref", {"default": {"train": rows}})
    columns = ["--column", "prompt=q", "--column", "chosen=good", "--column", "rejected=bad"]
    assert gro(["data", "validate", f"hf:{root}", *columns]) == 1
    assert "row 2, field chosen: empty_string: " in capsys.readouterr().out
    assert gro(["data", "validate", "hf:not an id"]) == 2
    assert "hub: 'not an id' is not a Hub dataset id" in capsys.readouterr().err


def test_local_directories_named_alike_or_rewritten_are_read_afresh(tmp_path: Path) -> None:
    # The library's cache keys a local directory by its name: without a cache per path, the
    # second `data` would be read with the first one's recorded split sizes (and fail).
    first = write_hub_dir(tmp_path / "a" / "data", {"default": {"train": [{"prompt": "x"}] * 3}})
    second = write_hub_dir(tmp_path / "b" / "data", {"default": {"train": [{"prompt": "y"}]}})
    assert [r["prompt"] for r in load_hub(hub(first))[1]] == ["x"] * 3
    assert [r["prompt"] for r in load_hub(hub(second))[1]] == ["y"]
    write_hub_dir(first, {"default": {"train": [{"prompt": "z"}] * 2}})
    assert [r["prompt"] for r in load_hub(hub(first))[1]] == ["z"] * 2
