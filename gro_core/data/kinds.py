"""The four dataset kinds: which fields make a row one, what each field must hold, and the
canonical record a valid row becomes.

Pure functions over one row; the file-level rules (one kind per file, the error cap) live in
`validate.py`.
"""

from __future__ import annotations

from typing import Any

from gro_core.data.issues import DataIssue, type_name

KINDS = ("prompt", "preference", "unpaired", "sft")
REQUIRED: dict[str, tuple[str, ...]] = {
    "prompt": ("prompt",),
    "preference": ("prompt", "chosen", "rejected"),
    "unpaired": ("prompt", "completion", "label"),
    "sft": ("prompt", "completion"),
}
# Fields that hold something the model writes, rendered after the prompt.
COMPLETION_FIELDS: dict[str, tuple[str, ...]] = {
    "prompt": (),
    "preference": ("chosen", "rejected"),
    "unpaired": ("completion",),
    "sft": ("completion",),
}
ROLES = ("system", "user", "assistant", "tool")
# A model's turn may call tools and read their results, but never speaks for the user.
COMPLETION_ROLES = ("assistant", "tool")
# System and tool messages may be empty (an empty system prompt, a tool with no output).
_NEEDS_CONTENT = ("user", "assistant")

Message = dict[str, Any]
Text = str | list[Message]


def present_fields(row: dict[str, Any]) -> set[str]:
    """Fields with a value; null counts as absent (an Arrow table pads missing fields with null)."""
    return {name for name, value in row.items() if value is not None}


def detect_kind(row: dict[str, Any]) -> str | None:
    """The kind a row's fields point to, or None when they point to none.

    `chosen` or `rejected` alone already means preference, so a row missing its partner is
    reported as a missing field rather than passing as a prompt row with extra fields.
    """
    have = present_fields(row)
    if "chosen" in have or "rejected" in have:
        return "preference"
    if "completion" in have and "label" in have:
        return "unpaired"
    if "completion" in have or "messages" in have:
        return "sft"
    if "prompt" in have:
        return "prompt"
    return None


def describe_kind(kind: str) -> str:
    """The fields a kind needs, as users read it: `prompt, chosen, rejected`."""
    fields = ", ".join(REQUIRED[kind])
    return f"{fields}, or messages" if kind == "sft" else fields


def _check_message(line: int, path: str, message: object) -> list[DataIssue]:
    """Problems with one chat message `{"role": ..., "content": ...}` at `path` (`prompt[0]`)."""
    if not isinstance(message, dict):
        msg = f"'{path}' must be an object with 'role' and 'content', got {type_name(message)}"
        return [DataIssue(line, path, "bad_messages", msg)]
    role, content = message.get("role"), message.get("content")
    issues = []
    if role not in ROLES:
        got = "nothing" if role is None else repr(role)
        msg = f"'{path}.role' must be one of {', '.join(ROLES)}, got {got}"
        issues.append(DataIssue(line, f"{path}.role", "bad_messages", msg))
    if not isinstance(content, str):
        msg = f"'{path}.content' must be a string, got {type_name(content)}"
        issues.append(DataIssue(line, f"{path}.content", "bad_messages", msg))
    elif role in _NEEDS_CONTENT and not content.strip():
        msg = f"'{path}.content' is empty; a {role} message needs text"
        issues.append(DataIssue(line, f"{path}.content", "empty_string", msg))
    return issues


def check_messages(
    line: int, field: str, messages: list[Any], *, completion: bool
) -> list[DataIssue]:
    """Problems with a chat message list; a completion's list must start with the assistant."""
    if not messages:
        return [DataIssue(line, field, "bad_messages", f"field '{field}' is an empty message list")]
    issues = [i for n, m in enumerate(messages) for i in _check_message(line, f"{field}[{n}]", m)]
    if completion and not issues:
        roles = [m["role"] for m in messages]
        if roles[0] != "assistant" or any(r not in COMPLETION_ROLES for r in roles):
            msg = (
                f"field '{field}' is a completion, so its messages must start with 'assistant' "
                f"and hold only assistant and tool turns, got roles {roles}"
            )
            issues.append(DataIssue(line, field, "bad_messages", msg))
    return issues


def check_text(line: int, field: str, value: object, *, completion: bool) -> list[DataIssue]:
    """Problems with a prompt or completion field: a non-empty string or a chat message list."""
    if isinstance(value, str):
        if value.strip():
            return []
        return [DataIssue(line, field, "empty_string", f"field '{field}' is an empty string")]
    if isinstance(value, list):
        return check_messages(line, field, value, completion=completion)
    msg = f"field '{field}' must be a string or a list of chat messages, got {type_name(value)}"
    return [DataIssue(line, field, "wrong_type", msg)]


def _check_pairing(line: int, row: dict[str, Any], kind: str) -> list[DataIssue]:
    """A chat completion continues a chat prompt; after a plain string it has nothing to extend."""
    if not isinstance(row.get("prompt"), str):
        return []
    issues = []
    for field in COMPLETION_FIELDS[kind]:
        if isinstance(row.get(field), list):
            msg = (
                f"field '{field}' is a list of chat messages but 'prompt' is a string; "
                "use chat messages for both or strings for both"
            )
            issues.append(DataIssue(line, field, "wrong_type", msg))
    return issues


def _check_conversation(line: int, row: dict[str, Any]) -> list[DataIssue]:
    """An sft `messages` row: a conversation whose final assistant message is the completion."""
    have = present_fields(row)
    clash = sorted(have & {"prompt", "completion"})
    if clash:
        msg = f"a row has either 'messages' or 'prompt' and 'completion', not both (found {clash})"
        return [DataIssue(line, "messages", "conflicting_fields", msg)]
    messages = row["messages"]
    if not isinstance(messages, list):
        msg = f"field 'messages' must be a list of chat messages, got {type_name(messages)}"
        return [DataIssue(line, "messages", "wrong_type", msg)]
    issues = check_messages(line, "messages", messages, completion=False)
    if issues:
        return issues
    if messages[-1]["role"] != "assistant":
        msg = (
            "the last message must be the assistant reply to learn from, "
            f"got role '{messages[-1]['role']}'"
        )
        return [DataIssue(line, "messages", "bad_messages", msg)]
    if len(messages) < 2:
        msg = "a conversation needs at least one message before the final assistant reply"
        return [DataIssue(line, "messages", "bad_messages", msg)]
    return []


def check_row(line: int, row: dict[str, Any], kind: str) -> list[DataIssue]:
    """Every problem with a row's fields, given the kind `detect_kind` found for it."""
    have = present_fields(row)
    if kind == "sft" and "messages" in have:
        return _check_conversation(line, row)
    issues = []
    for field in REQUIRED[kind]:
        if field not in have:
            msg = f"field '{field}' is missing; {kind} rows need {describe_kind(kind)}"
            issues.append(DataIssue(line, field, "missing_field", msg))
        elif field == "label":
            if not isinstance(row[field], bool):
                msg = f"field 'label' must be true or false, got {type_name(row[field])}"
                issues.append(DataIssue(line, field, "wrong_type", msg))
        else:
            issues += check_text(line, field, row[field], completion=field != "prompt")
    if not issues:
        issues = _check_pairing(line, row, kind)
    return issues


def _clean_messages(messages: list[Message]) -> list[Message]:
    """Copies of the messages without null keys (Arrow pads keys other messages had)."""
    return [{k: v for k, v in m.items() if v is not None} for m in messages]


def _clean_text(value: Text) -> Text:
    return value if isinstance(value, str) else _clean_messages(value)


def to_record(row: dict[str, Any], kind: str) -> dict[str, Any]:
    """The canonical record of a valid row: the kind's fields first, then the row's other fields.

    An sft `messages` row becomes `prompt` (every message before the last) and `completion` (the
    final assistant message, as a one-message list). The input row is not modified.
    """
    if kind == "sft" and row.get("messages") is not None:
        messages = _clean_messages(row["messages"])
        record: dict[str, Any] = {"prompt": messages[:-1], "completion": messages[-1:]}
        extras = {k: v for k, v in row.items() if k != "messages" and k not in record}
    else:
        record = {f: row[f] if f == "label" else _clean_text(row[f]) for f in REQUIRED[kind]}
        extras = {k: v for k, v in row.items() if k not in record}
    return record | extras
