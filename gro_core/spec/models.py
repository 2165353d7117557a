"""The shapes a model reference may take, checked without torch (the API validates specs
without it): `builtin:<name>` of a known builtin, a Hugging Face id `org/name`, or a local
directory (the CLI; the API allows only those under the operator's roots).

gro_core.models.builtin builds the builtins; tests keep BUILTIN_MODEL_NAMES equal to its
registry's keys.
"""

from __future__ import annotations

import re

BUILTIN_PREFIX = "builtin:"
BUILTIN_MODEL_NAMES: tuple[str, ...] = ("tiny-llama", "small-llama")

# The Hub's rules: each part starts with a letter or digit, then letters, digits, - _ . ;
# at most 96 characters each.
_HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.-]{0,95}")


def looks_local(name: str) -> bool:
    """Whether `name` is written as a path (absolute, relative or home-relative)."""
    return name.startswith(("/", ".", "~")) or "\\" in name


def is_hub_id(name: str) -> bool:
    return _HUB_ID.fullmatch(name) is not None and ".." not in name


def builtin_problem(name: str) -> str | None:
    """Why `builtin:<name>` names no builtin, or None when it does."""
    short = name.removeprefix(BUILTIN_PREFIX)
    if short in BUILTIN_MODEL_NAMES:
        return None
    known = ", ".join(BUILTIN_PREFIX + n for n in BUILTIN_MODEL_NAMES)
    return f"no builtin model {name!r}; the builtins are {known}"
