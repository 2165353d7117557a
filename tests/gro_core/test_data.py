"""Tests for gro_core.data: readers, validation and its error codes, stats, loading, CLI."""

from __future__ import annotations

import json
import sys
import tracemalloc
import types
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.ipc
import pyarrow.parquet as pq
import pytest
from tokenizers import Regex, Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from gro_core.cli import main
from gro_core.data import (
    DataIssue,
    DatasetError,
    RenderError,
    iter_rows,
    load_rows,
    render_completion,
    render_prompt,
    validate_file,
)
from gro_core.data.stats import Reservoir

# A template in the usual shape: every turn tagged with its role, the generation prompt opening
# the assistant's turn.
CHAT_TEMPLATE = (
    "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<assistant>{% endif %}"
)
# A template whose generation prompt is not how it renders an assistant turn, so the prompt is
# not a prefix of prompt + completion.
MISMATCHED_TEMPLATE = (
    "{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)
PREF = {"prompt": "p", "chosen": "c", "rejected": "r"}
UNPAIRED = {"prompt": "p", "completion": "c", "label": True}
USER = [{"role": "user", "content": "hi"}]
REPLY = [{"role": "assistant", "content": "hello"}]


def char_tokenizer(chat_template: str | None = CHAT_TEMPLATE) -> PreTrainedTokenizerFast:
    """A tokenizer with one token per printable character, so token counts equal lengths."""
    chars = [chr(code) for code in range(32, 127)] + ["\n"]
    vocab = {"[UNK]": 0} | {c: i + 1 for i, c in enumerate(chars)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("[\\s\\S]"), behavior="isolated")
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", chat_template=chat_template
    )


@pytest.fixture(scope="module")
def tokenizer() -> PreTrainedTokenizerFast:
    return char_tokenizer()


def write_jsonl(path: Path, lines: list[dict[str, Any] | str | bytes]) -> Path:
    """One line per item: dicts as JSON, str and bytes written verbatim."""
    with path.open("wb") as f:
        for item in lines:
            if isinstance(item, dict):
                item = json.dumps(item)
            if isinstance(item, str):
                item = item.encode()
            f.write(item + b"\n")
    return path


def write_hf_dir(directory: Path, rows: list[dict[str, Any]], shards: int = 2) -> Path:
    """What `Dataset.save_to_disk` writes: Arrow IPC stream shards listed in state.json."""
    directory.mkdir(parents=True)
    table = pa.Table.from_pylist(rows)
    size = -(-len(rows) // shards)
    names = []
    for n in range(shards):
        name = f"data-{n:05d}-of-{shards:05d}.arrow"
        with pyarrow.ipc.new_stream(str(directory / name), table.schema) as writer:
            # Small batches, as the datasets library writes them, so batches cross shards.
            for batch in table.slice(n * size, size).to_batches(max_chunksize=300):
                writer.write_batch(batch)
        names.append(name)
    state = {"_data_files": [{"filename": name} for name in names], "_fingerprint": "test"}
    (directory / "state.json").write_text(json.dumps(state))
    (directory / "dataset_info.json").write_text(json.dumps({"features": {}}))
    return directory


def triples(report: Any) -> list[tuple[str, int | None, str | None]]:
    return [(issue.code, issue.line, issue.field) for issue in report.errors]


# --- kinds ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("row", "kind"),
    [
        ({"prompt": "2+2=", "answer": "4"}, "prompt"),
        (PREF, "preference"),
        (UNPAIRED, "unpaired"),
        ({"prompt": "p", "completion": "c"}, "sft"),
        ({"messages": USER + REPLY}, "sft"),
        ({"prompt": USER, "chosen": REPLY, "rejected": "no"}, "preference"),
    ],
)
def test_each_kind_is_detected(tmp_path: Path, row: dict[str, Any], kind: str) -> None:
    report = validate_file(write_jsonl(tmp_path / "d.jsonl", [row, row]))
    assert (report.ok, report.kind, report.rows) == (True, kind, 2), report.errors


# --- every error code -----------------------------------------------------------------------------

BAD_ROWS = [
    # (lines, validate_file kwargs, expected (code, line, field)); a blank line 2 checks that
    # line numbers stay physical.
    ([PREF, "", b'{"prompt": "p",'], {}, ("bad_json", 3, None)),
    ([PREF, "", b"[1, 2]"], {}, ("not_object", 3, None)),
    ([PREF, "", {"prompt": "p", "chosen": "c"}], {}, ("missing_field", 3, "rejected")),
    ([PREF, "", {"chosen": "c", "rejected": "r"}], {}, ("missing_field", 3, "prompt")),
    ([PREF, "", {"prompt": "p", "chosen": 7, "rejected": "r"}], {}, ("wrong_type", 3, "chosen")),
    ([UNPAIRED, "", UNPAIRED | {"label": "yes"}], {}, ("wrong_type", 3, "label")),
    ([PREF, "", PREF | {"chosen": REPLY}], {}, ("wrong_type", 3, "chosen")),
    ([PREF, "", PREF | {"rejected": "  "}], {}, ("empty_string", 3, "rejected")),
    ([PREF, "", {"prompt": "p", "completion": "c"}], {}, ("mixed_kinds", 3, None)),
    ([PREF, "", {"text": "t"}], {}, ("unknown_kind", 3, None)),
    ([PREF, "", b'{"prompt": "caf\xe9"}'], {}, ("non_utf8", 3, None)),
    ([], {}, ("empty_file", None, None)),
    (["", "  "], {}, ("empty_file", None, None)),
    ([PREF, "", PREF | {"prompt": "x" * 200}], {"max_line_bytes": 100}, ("line_too_long", 3, None)),
    (
        [PREF, "", PREF | {"prompt": [{"role": "bot", "content": "x"}]}],
        {},
        ("bad_messages", 3, "prompt[0].role"),
    ),
    (
        [PREF, "", PREF | {"prompt": [{"role": "user", "content": 1}]}],
        {},
        ("bad_messages", 3, "prompt[0].content"),
    ),
    ([PREF, "", PREF | {"prompt": ["hi"]}], {}, ("bad_messages", 3, "prompt[0]")),
    ([PREF, "", PREF | {"prompt": []}], {}, ("bad_messages", 3, "prompt")),
    (
        [PREF, "", {"prompt": USER, "chosen": USER, "rejected": REPLY}],
        {},
        ("bad_messages", 3, "chosen"),
    ),
    ([{"messages": USER + REPLY}, "", {"messages": USER}], {}, ("bad_messages", 3, "messages")),
    ([{"messages": USER + REPLY}, "", {"messages": REPLY}], {}, ("bad_messages", 3, "messages")),
    (
        [PREF, "", PREF | {"prompt": [{"role": "user", "content": ""}]}],
        {},
        ("empty_string", 3, "prompt[0].content"),
    ),
    (
        [{"messages": USER + REPLY}, "", {"messages": USER + REPLY, "prompt": "p"}],
        {},
        ("conflicting_fields", 3, "messages"),
    ),
    ([UNPAIRED, "", PREF], {"expected_kind": "unpaired"}, ("wrong_kind", 3, None)),
    ([PREF], {"expected_kind": "sft"}, ("wrong_kind", 1, None)),
]


@pytest.mark.parametrize(("lines", "kwargs", "expected"), BAD_ROWS)
def test_each_problem_is_reported_with_line_and_field(
    tmp_path: Path, lines: list[Any], kwargs: dict[str, Any], expected: tuple[Any, ...]
) -> None:
    report = validate_file(write_jsonl(tmp_path / "d.jsonl", lines), **kwargs)
    assert not report.ok
    assert triples(report) == [expected]
    assert report.error_count == 1


def test_message_reads_as_a_sentence_with_the_line(tmp_path: Path) -> None:
    lines = [PREF] * 6 + [PREF | {"chosen": 3}]
    (issue,) = validate_file(write_jsonl(tmp_path / "d.jsonl", lines)).errors
    expected = "line 7: field 'chosen' must be a string or a list of chat messages, got int"
    assert str(issue) == expected
    assert issue.to_dict() == {
        "line": 7,
        "field": "chosen",
        "code": "wrong_type",
        "message": expected.removeprefix("line 7: "),
    }


def test_all_problems_of_a_row_are_reported(tmp_path: Path) -> None:
    row = {"prompt": [{"role": "bot", "content": 1}], "chosen": "", "rejected": 2}
    report = validate_file(write_jsonl(tmp_path / "d.jsonl", [row]))
    assert triples(report) == [
        ("bad_messages", 1, "prompt[0].role"),
        ("bad_messages", 1, "prompt[0].content"),
        ("empty_string", 1, "chosen"),
        ("wrong_type", 1, "rejected"),
    ]


def test_every_error_is_counted_but_only_max_errors_kept(tmp_path: Path) -> None:
    lines = [PREF] + ["not json"] * 30
    report = validate_file(write_jsonl(tmp_path / "d.jsonl", lines), max_errors=5)
    assert report.error_count == 30
    assert [issue.line for issue in report.errors] == [2, 3, 4, 5, 6]
    assert report.to_dict()["error_count"] == 30


def test_rows_after_a_too_long_line_are_still_read(tmp_path: Path) -> None:
    lines = [PREF, PREF | {"prompt": "x" * 500}, PREF | {"chosen": 1}]
    report = validate_file(write_jsonl(tmp_path / "d.jsonl", lines), max_line_bytes=100)
    assert triples(report) == [("line_too_long", 2, None), ("wrong_type", 3, "chosen")]
    assert report.rows == 3
    assert "over the limit of 100 bytes" in report.errors[0].message


def test_a_line_at_exactly_the_limit_is_accepted(tmp_path: Path) -> None:
    line = json.dumps(PREF)
    path = write_jsonl(tmp_path / "d.jsonl", [line])
    assert validate_file(path, max_line_bytes=len(line)).ok
    assert triples(validate_file(path, max_line_bytes=len(line) - 1)) == [
        ("line_too_long", 1, None)
    ]


def test_blank_lines_are_skipped_and_a_bom_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(PREF).encode() + b"\r\n\n  \n" + b"[]\n")
    report = validate_file(path)
    assert report.rows == 2
    assert triples(report) == [("not_object", 4, None)]


def test_unsupported_format_and_missing_file(tmp_path: Path) -> None:
    csv = tmp_path / "d.csv"
    csv.write_text("prompt\nhi\n")
    assert triples(validate_file(csv)) == [("unsupported_format", None, None)]
    with pytest.raises(FileNotFoundError):
        validate_file(tmp_path / "absent.jsonl")


def test_unknown_expected_kind_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown dataset kind 'pairs'"):
        validate_file(write_jsonl(tmp_path / "d.jsonl", [PREF]), expected_kind="pairs")


# --- readers ------------------------------------------------------------------------------------


def _rows(n: int) -> list[dict[str, Any]]:
    """Unpaired rows with chat prompts and bool labels: nested and typed values round-trip."""
    return [
        {
            "prompt": [{"role": "user", "content": f"q{i}"}],
            "completion": f"a{i}",
            "label": i % 3 == 0,
        }
        for i in range(n)
    ]


def test_parquet_and_hf_dataset_give_the_same_rows_as_jsonl(tmp_path: Path) -> None:
    rows = _rows(2500)  # more than one reader batch (1024 rows)
    jsonl = write_jsonl(tmp_path / "d.jsonl", rows)
    parquet = tmp_path / "d.parquet"
    pq.write_table(pa.Table.from_pylist(rows), parquet, row_group_size=700)
    hf_dir = write_hf_dir(tmp_path / "saved", rows, shards=3)
    expected = list(enumerate(rows, start=1))
    assert list(iter_rows(jsonl)) == expected
    assert list(iter_rows(parquet)) == expected
    assert list(iter_rows(hf_dir)) == expected
    for path in (jsonl, parquet, hf_dir):
        report = validate_file(path)
        assert (report.ok, report.kind, report.rows) == (True, "unpaired", 2500)


def test_shards_are_read_in_state_json_order(tmp_path: Path) -> None:
    rows = [{"prompt": str(i)} for i in range(10)]
    directory = write_hf_dir(tmp_path / "saved", rows, shards=2)
    state = json.loads((directory / "state.json").read_text())
    state["_data_files"].reverse()
    (directory / "state.json").write_text(json.dumps(state))
    assert [row["prompt"] for _, row in iter_rows(directory)] == [
        str(i) for i in [*range(5, 10), *range(5)]
    ]


def test_table_nulls_count_as_missing_fields(tmp_path: Path) -> None:
    # Arrow pads absent values with null; a null field is a missing one, not a wrong type.
    rows = [PREF, PREF | {"rejected": None}, {"prompt": "p", "answer": None} | PREF]
    path = tmp_path / "d.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    assert triples(validate_file(path)) == [("missing_field", 2, "rejected")]


def test_directories_that_are_not_one_dataset_are_reported(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert triples(validate_file(tmp_path / "empty")) == [("not_a_dataset", None, None)]
    dict_dir = tmp_path / "dict"
    write_hf_dir(dict_dir / "train", [PREF], shards=1)
    (dict_dir / "dataset_dict.json").write_text('{"splits": ["train"]}')
    (issue,) = validate_file(dict_dir).errors
    assert issue.code == "not_a_dataset"
    assert "train" in issue.message


def test_a_corrupt_parquet_file_is_reported_not_raised(tmp_path: Path) -> None:
    path = tmp_path / "d.parquet"
    path.write_bytes(b"PAR1 this is not parquet")
    assert triples(validate_file(path)) == [("unreadable_file", None, None)]


def test_iter_rows_raises_on_a_line_that_is_not_a_row(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", [PREF, b"\xff\xfe"])
    rows = iter_rows(path)
    assert next(rows) == (1, PREF)
    with pytest.raises(DatasetError, match="line 2: line is not valid UTF-8"):
        next(rows)


# --- statistics -----------------------------------------------------------------------------------


def test_stats_give_length_percentiles_per_field(tmp_path: Path, tokenizer: Any) -> None:
    rows = [{"prompt": "x" * n, "completion": "y" * (2 * n)} for n in range(1, 101)]
    report = validate_file(write_jsonl(tmp_path / "d.jsonl", rows), tokenizer=tokenizer)
    prompt = report.stats["fields"]["prompt"]
    assert prompt["chars"] == {"p50": 50, "p90": 90, "p99": 99, "max": 100, "mean": 50.5}
    # One token per character, so token lengths equal character lengths.
    assert prompt["tokens"] == prompt["chars"]
    assert report.stats["fields"]["completion"]["chars"]["max"] == 200
    assert (report.stats["rows"], report.stats["kind"]) == (100, "sft")


def test_stats_count_chat_tokens_as_rendered(tmp_path: Path, tokenizer: Any) -> None:
    row = {"messages": [*USER, {"role": "assistant", "content": "hello"}]}
    report = validate_file(write_jsonl(tmp_path / "d.jsonl", [row]), tokenizer=tokenizer)
    fields = report.stats["fields"]
    assert fields["prompt"]["chars"]["max"] == 2  # contents only
    assert fields["prompt"]["tokens"]["max"] == len("<user>hi\n<assistant>")
    assert fields["completion"]["tokens"]["max"] == len("hello\n")


def test_stats_give_label_balance_and_extra_fields(tmp_path: Path) -> None:
    unpaired = [UNPAIRED, UNPAIRED, UNPAIRED | {"label": False}, UNPAIRED]
    stats = validate_file(write_jsonl(tmp_path / "u.jsonl", unpaired)).stats
    assert stats["label_balance"] == {"desirable": 3, "undesirable": 1, "desirable_share": 0.75}
    prompts = [{"prompt": "a", "answer": "1"}, {"prompt": "b", "id": 2}]
    stats = validate_file(write_jsonl(tmp_path / "p.jsonl", prompts)).stats
    assert stats["extra_fields"] == ["answer", "id"]


def test_reservoir_is_bounded_seeded_and_close(tmp_path: Path) -> None:
    a, b = Reservoir(size=500, seed=3), Reservoir(size=500, seed=3)
    for value in range(100_000):
        a.add(value)
        b.add(value)
    assert len(a.sample) == 500
    assert a.sample == b.sample
    summary = a.summary()
    assert summary["max"] == 99_999
    assert summary["mean"] == 49_999.5
    assert abs(summary["p50"] - 50_000) < 7_000  # a sample of 500: about ±2,200 is one sigma


def test_render_failures_are_reported_when_measuring_tokens(tmp_path: Path) -> None:
    row = {"prompt": USER, "completion": "ok"}
    path = write_jsonl(tmp_path / "d.jsonl", [row])
    report = validate_file(path, tokenizer=char_tokenizer(chat_template=None))
    assert triples(report) == [("render_failed", 1, "prompt")]
    assert "no chat template" in report.errors[0].message


# --- loading and rendering ------------------------------------------------------------------------


def test_load_rows_returns_canonical_records(tmp_path: Path) -> None:
    rows = [
        {"messages": [{"role": "system", "content": ""}, *USER, *REPLY], "id": 1},
        {"prompt": "p", "completion": "c", "id": 2},
    ]
    kind, records = load_rows(write_jsonl(tmp_path / "d.jsonl", rows))
    assert kind == "sft"
    assert records == [
        {"prompt": [{"role": "system", "content": ""}, *USER], "completion": REPLY, "id": 1},
        {"prompt": "p", "completion": "c", "id": 2},
    ]
    assert list(records[0]) == ["prompt", "completion", "id"]  # the kind's fields first


def test_load_rows_with_a_kind_refuses_other_kinds(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", [PREF])
    assert load_rows(path, kind="preference") == ("preference", [PREF])
    with pytest.raises(DatasetError) as info:
        load_rows(path, kind="unpaired")
    assert [issue.code for issue in info.value.issues] == ["wrong_kind"]


def test_dataset_error_names_line_and_field(tmp_path: Path) -> None:
    lines = [PREF, PREF, PREF | {"chosen": 3}] + ["oops"] * 10
    with pytest.raises(DatasetError) as info:
        load_rows(write_jsonl(tmp_path / "d.jsonl", lines))
    error = info.value
    assert isinstance(error, ValueError)
    assert error.error_count == 11
    assert "11 problems" in str(error)
    assert "line 3: field 'chosen' must be a string" in str(error)
    assert "line 4: not valid JSON" in str(error)
    assert "and 6 more" in str(error)
    assert error.issues[0] == DataIssue(3, "chosen", "wrong_type", error.issues[0].message)


def test_render_prompt_applies_the_chat_template(tokenizer: Any) -> None:
    assert render_prompt(tokenizer, "plain text") == "plain text"
    assert render_prompt(tokenizer, USER) == "<user>hi\n<assistant>"


def test_render_completion_is_the_suffix_after_the_prompt(tokenizer: Any) -> None:
    prompt = [{"role": "system", "content": "be brief"}, *USER]
    completion = [*REPLY, {"role": "tool", "content": "42"}, {"role": "assistant", "content": "ok"}]
    text = render_completion(tokenizer, prompt, completion)
    assert text == "hello\n<tool>42\n<assistant>ok\n"
    whole = tokenizer.apply_chat_template(prompt + completion, tokenize=False)
    assert render_prompt(tokenizer, prompt) + text == whole
    assert render_completion(tokenizer, prompt, "plain") == "plain"


def test_sft_messages_render_to_the_last_assistant_turn(tmp_path: Path, tokenizer: Any) -> None:
    messages = [*USER, {"role": "assistant", "content": "first"}, *USER, *REPLY]
    _, (record,) = load_rows(write_jsonl(tmp_path / "d.jsonl", [{"messages": messages}]))
    assert render_completion(tokenizer, record["prompt"], record["completion"]) == "hello\n"
    assert render_prompt(tokenizer, record["prompt"]).endswith(
        "<assistant>first\n<user>hi\n<assistant>"
    )


def test_render_refuses_what_it_cannot_render_exactly() -> None:
    with pytest.raises(RenderError, match="not render the prompt as a prefix"):
        render_completion(char_tokenizer(MISMATCHED_TEMPLATE), USER, REPLY)
    with pytest.raises(RenderError, match="no chat template"):
        render_prompt(char_tokenizer(chat_template=None), USER)
    with pytest.raises(RenderError, match="needs a chat-message prompt"):
        render_completion(char_tokenizer(), "a string prompt", REPLY)


# --- the command line -----------------------------------------------------------------------------


def test_cli_validate_exit_codes_and_line_numbers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = write_jsonl(tmp_path / "good.jsonl", [PREF, PREF])
    bad = write_jsonl(tmp_path / "bad.jsonl", [PREF, "", PREF | {"chosen": 3}, "{"])
    assert main(["data", "validate", str(good)]) == 0
    out = capsys.readouterr().out
    assert "preference data, 2 rows, 0 errors" in out
    assert main(["data", "validate", str(bad)]) == 1
    out = capsys.readouterr().out
    assert "line 3, field chosen: wrong_type: field 'chosen' must be" in out
    assert "line 4: bad_json:" in out
    assert main(["data", "validate", str(tmp_path / "absent.jsonl")]) == 2


def test_cli_validate_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = write_jsonl(tmp_path / "bad.jsonl", [UNPAIRED, UNPAIRED | {"label": 1}])
    assert main(["data", "validate", "--json", str(bad)]) == 1
    report = json.loads(capsys.readouterr().out)
    assert (report["ok"], report["kind"], report["rows"]) == (False, "unpaired", 2)
    assert [(e["line"], e["field"], e["code"]) for e in report["errors"]] == [
        (2, "label", "wrong_type")
    ]


def test_cli_validate_loads_a_named_tokenizer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A stand-in gro_core.models: the name must reach load_tokenizer, imported only when needed.
    names: list[str] = []
    fake = types.ModuleType("gro_core.models")
    fake.load_tokenizer = lambda name: names.append(name) or char_tokenizer()  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "gro_core.models", fake)
    path = write_jsonl(tmp_path / "d.jsonl", [PREF])
    assert main(["data", "validate", "--tokenizer", "some/model", str(path)]) == 0
    assert names == ["some/model"]
    assert "tokens 1 / 1 / 1 / 1" in capsys.readouterr().out


# --- memory ---------------------------------------------------------------------------------------


def _write_big_jsonl(path: Path, target_bytes: int) -> int:
    """Preference rows of varied lengths, about 500 bytes each, up to `target_bytes`."""
    written = 0
    with path.open("wb") as f:
        n = 0
        while written < target_bytes:
            row = {
                "prompt": "q" * (100 + n % 200),
                "chosen": "c" * (n % 150 + 1),
                "rejected": "r" * 90,
            }
            line = json.dumps(row).encode() + b"\n"
            f.write(line)
            written += len(line)
            n += 1
    return written


def _peak_bytes(fn: Any) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.slow
def test_validation_memory_stays_flat_in_file_size(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    size = _write_big_jsonl(path, 50 << 20)
    reports = []
    peak = _peak_bytes(lambda: reports.append(validate_file(path)))
    assert reports[0].ok and reports[0].rows > 80_000
    assert peak < size / 20, f"peak {peak:,} bytes while validating a {size:,}-byte file"


@pytest.mark.slow
def test_an_enormous_line_is_skipped_without_holding_it(tmp_path: Path) -> None:
    path = tmp_path / "one-line.jsonl"
    path.write_bytes(b'{"prompt": "' + b"x" * (30 << 20) + b'"}\n' + json.dumps(PREF).encode())
    reports = []
    peak = _peak_bytes(lambda: reports.append(validate_file(path)))
    assert triples(reports[0]) == [("line_too_long", 1, None)]
    assert reports[0].rows == 2  # the row after it is still read
    assert peak < 4 << 20, f"peak {peak:,} bytes for a 30 MB line with a 1 MiB limit"
