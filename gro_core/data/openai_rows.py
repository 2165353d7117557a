"""OpenAI's fine-tuning JSONL rows, read as gro's own kinds.

    {"messages": [..., {"role": "assistant", ...}]}             sft (gro reads it natively)
    {"input": {"messages": [...]}, "preferred_output": [...],
     "non_preferred_output": [...]}                              preference (DPO)
    {"messages": [..., {"role": "user", ...}], "answer": ...}   prompt (reinforcement), the
                                                                 other fields there for graders

`translate` runs before kind detection: a DPO row's problems are named by its own fields
(`input.messages[0].role`, `preferred_output`), and a translated row then passes gro's checks
unchanged. OpenAI's `developer` role is the system role of chat templates.
"""

from __future__ import annotations

from typing import Any

from gro_core.data.issues import DataIssue, type_name
from gro_core.data.kinds import check_messages

DPO_FIELDS = ("input", "preferred_output", "non_preferred_output")
_ROLE_ALIASES = {"developer": "system"}


def _messages(value: Any) -> Any:
    """Messages with OpenAI's role names mapped to the chat-template ones (others untouched)."""
    if not isinstance(value, list):
        return value
    return [
        {**m, "role": _ROLE_ALIASES[m["role"]]}
        if isinstance(m, dict) and m.get("role") in _ROLE_ALIASES
        else m
        for m in value
    ]


def _is_dpo(row: dict[str, Any]) -> bool:
    return any(row.get(f) is not None for f in DPO_FIELDS)


def _dpo(line: int, row: dict[str, Any]) -> dict[str, Any] | list[DataIssue]:
    """A DPO row as a preference row, or its problems named by OpenAI's fields."""
    issues: list[DataIssue] = []
    for field in DPO_FIELDS:
        if row.get(field) is None:
            msg = f"field '{field}' is missing; DPO rows need {', '.join(DPO_FIELDS)}"
            issues.append(DataIssue(line, field, "missing_field", msg))
    if issues:
        return issues
    given = row["input"]
    if not isinstance(given, dict) or not isinstance(given.get("messages"), list):
        got = type_name(given.get("messages") if isinstance(given, dict) else given)
        msg = f"field 'input.messages' must be a list of chat messages, got {got}"
        return [DataIssue(line, "input.messages", "wrong_type", msg)]
    prompt = _messages(given["messages"])
    issues = check_messages(line, "input.messages", prompt, completion=False)
    outputs = {}
    for field in ("preferred_output", "non_preferred_output"):
        value = _messages(row[field])
        if not isinstance(value, list):
            msg = f"field '{field}' must be a list of chat messages, got {type_name(value)}"
            issues.append(DataIssue(line, field, "wrong_type", msg))
            continue
        issues += check_messages(line, field, value, completion=True)
        outputs[field] = value
    if issues:
        return issues
    extras = {k: v for k, v in row.items() if k not in DPO_FIELDS}
    return {
        "prompt": prompt,
        "chosen": outputs["preferred_output"],
        "rejected": outputs["non_preferred_output"],
    } | extras


def translate(
    line: int, row: dict[str, Any], file_kind: str | None = None
) -> dict[str, Any] | list[DataIssue]:
    """The row in gro's field names, or the problems that keep it from being one.

    Rows already in gro's shape come back unchanged; a `messages` row whose last message is
    not the assistant's is a prompt (a reinforcement row: the model writes the reply) unless
    the file is already another kind (`file_kind`): in an sft file it is a conversation
    missing its reply, and reported as one.
    """
    if _is_dpo(row):
        return _dpo(line, row)
    messages = row.get("messages")
    if not isinstance(messages, list):
        return row
    messages = _messages(messages)
    last = messages[-1] if messages else None
    prompt_row = isinstance(last, dict) and last.get("role") in ("user", "system")
    if prompt_row and file_kind in (None, "prompt") and "prompt" not in row:
        extras = {k: v for k, v in row.items() if k != "messages"}
        return {"prompt": messages} | extras
    return {**row, "messages": messages}
