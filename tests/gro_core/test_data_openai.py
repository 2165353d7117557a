"""OpenAI's fine-tuning JSONL rows read natively: DPO rows are preference rows, reinforcement
rows prompt rows, each problem named by OpenAI's own field and the line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gro_core.data import DatasetError, load_rows, validate_file


def write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def assistant(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


def dpo(**row: Any) -> dict[str, Any]:
    return {
        "input": {"messages": [{"role": "developer", "content": "be kind"}, user("hi")]},
        "preferred_output": [assistant("hello")],
        "non_preferred_output": [assistant("go away")],
    } | row


def test_a_dpo_row_is_a_preference_record(tmp_path: Path):
    kind, records = load_rows(write(tmp_path / "d.jsonl", [dpo(source="web")]))
    assert kind == "preference"
    assert records == [
        {
            "prompt": [{"role": "system", "content": "be kind"}, user("hi")],
            "chosen": [assistant("hello")],
            "rejected": [assistant("go away")],
            "source": "web",
        }
    ]


@pytest.mark.parametrize(
    ("row", "field", "code"),
    [
        (dpo(non_preferred_output=None), "non_preferred_output", "missing_field"),
        (dpo(input={"messages": "hi"}), "input.messages", "wrong_type"),
        (
            dpo(input={"messages": [{"role": "boss", "content": "x"}]}),
            "input.messages[0].role",
            "bad_messages",
        ),
        (dpo(preferred_output=[user("mine")]), "preferred_output", "bad_messages"),
        (dpo(non_preferred_output="bad"), "non_preferred_output", "wrong_type"),
    ],
)
def test_a_bad_dpo_row_names_its_line_and_openai_field(
    tmp_path: Path, row: dict[str, Any], field: str, code: str
):
    report = validate_file(write(tmp_path / "d.jsonl", [dpo(), row]))
    assert [(e.line, e.field, e.code) for e in report.errors] == [(2, field, code)]
    with pytest.raises(DatasetError, match="line 2"):
        load_rows(tmp_path / "d.jsonl")


def test_a_reinforcement_row_is_a_prompt_keeping_its_grader_fields(tmp_path: Path):
    rows = [{"messages": [user("2+2=")], "answer": "4", "tolerance": 0}]
    kind, records = load_rows(write(tmp_path / "r.jsonl", rows))
    assert (kind, records) == (
        "prompt",
        [{"prompt": [user("2+2=")], "answer": "4", "tolerance": 0}],
    )
    assert "answer" in validate_file(tmp_path / "r.jsonl").stats["extra_fields"]


def test_a_chat_sft_row_stays_sft_and_developer_is_system(tmp_path: Path):
    rows = [{"messages": [{"role": "developer", "content": "terse"}, user("hi"), assistant("yo")]}]
    kind, records = load_rows(write(tmp_path / "s.jsonl", rows))
    assert kind == "sft"
    assert records[0]["prompt"][0] == {"role": "system", "content": "terse"}


def test_a_dpo_file_needs_no_preference_fields_mixed_in(tmp_path: Path):
    gro_row = {"prompt": "q", "chosen": "a", "rejected": "b"}
    report = validate_file(write(tmp_path / "m.jsonl", [dpo(), gro_row]))
    assert report.ok and report.kind == "preference"  # both shapes are one kind


def test_in_an_sft_file_a_conversation_without_its_reply_is_reported_as_one(tmp_path: Path):
    rows = [{"messages": [user("hi"), assistant("yo")]}, {"messages": [user("hi")]}]
    report = validate_file(write(tmp_path / "s.jsonl", rows))
    assert [(e.line, e.field, e.code) for e in report.errors] == [(2, "messages", "bad_messages")]
    assert "assistant reply" in report.errors[0].message
