"""Markdown building blocks for the generated pages: tables, code spans, templates, docstrings."""

from __future__ import annotations

import ast
import inspect
import itertools
import json
import re
import textwrap
from collections.abc import Callable, Mapping, Sequence
from typing import Any

_PLACEHOLDER = re.compile(r"^\{\{ *([a-z_]+) *\}\}$", re.MULTILINE)


def cell(text: str) -> str:
    """`text` safe inside a table cell: one line, pipes escaped (also inside code spans)."""
    return " ".join(str(text).split()).replace("|", "\\|")


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub table; cells are escaped here."""
    lines = ["| " + " | ".join(cell(h) for h in header) + " |"]
    lines.append("|" + "---|" * len(header))
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def prose(text: str) -> str:
    """Docstring text as Markdown: `<` and `>` outside code spans escaped, so `builtin:<name>`
    written without backticks is not taken for an HTML tag."""
    pieces = re.split(r"(`[^`]*`)", text)
    return "".join(
        p if p.startswith("`") else p.replace("<", "&lt;").replace(">", "&gt;") for p in pieces
    )


def code(text: str) -> str:
    """An inline code span, widened when the text holds a backtick."""
    fence = "``" if "`" in text else "`"
    pad = " " if fence == "``" else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def value(v: Any) -> str:
    """A default or setting as the YAML/JSON a spec would hold: null, true, 1e-05, "hf"."""
    return code(json.dumps(v, ensure_ascii=False))


def paragraphs(doc: str | None) -> list[str]:
    """A docstring's paragraphs, each joined into one line."""
    text = inspect.cleandoc(doc or "")
    return [" ".join(p.split()) for p in text.split("\n\n") if p.strip()]


def labelled(doc: str | None, label: str) -> str:
    """The text of the docstring paragraph that starts with `label:` ("" when there is none)."""
    prefix = f"{label}:"
    for paragraph in paragraphs(doc):
        if paragraph.startswith(prefix):
            return paragraph.removeprefix(prefix).strip()
    return ""


def attribute_docs(cls: type) -> dict[str, str]:
    """{field: docstring} of a class whose fields carry a string literal below them (as
    pydantic reads them with use_attribute_docstrings; dataclasses do not keep them)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs = {}
    for node, after in itertools.pairwise(body):
        is_field = isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
        is_doc = isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant)
        if is_field and is_doc and isinstance(after.value.value, str):  # type: ignore[union-attr]
            docs[node.target.id] = " ".join(inspect.cleandoc(after.value.value).split())  # type: ignore[union-attr]
    return docs


def fill(template: str, parts: Mapping[str, Callable[[], str]], source: str) -> str:
    """The template with each `{{ name }}` line replaced by `parts[name]()`.

    A placeholder without a part, or a part the template never uses, is an error: the page
    and its generator must agree on what the page shows.
    """
    used = set(_PLACEHOLDER.findall(template))
    unknown, unused = used - set(parts), set(parts) - used
    if unknown or unused:
        raise ValueError(
            f"{source}: placeholders without a generator {sorted(unknown)}, "
            f"generated parts the template does not place {sorted(unused)}"
        )
    return _PLACEHOLDER.sub(lambda m: parts[m.group(1)]().rstrip("\n"), template)
