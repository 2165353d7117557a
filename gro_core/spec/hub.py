"""A dataset named on the Hugging Face Hub (or a local dataset directory the `datasets` library
reads the same way), as `data.train` / `data.eval` may give it. Torch-free, like all of spec/."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import Discriminator, Field, Tag, field_validator

from gro_core.spec.base import Section

HUB_PREFIX = "hf:"
"""The string shorthand: `data.train: hf:org/name` is `data.train: {hub: org/name}`."""

# A Hub repo id (`org/name`, or a legacy bare `name`); a path (`/data/x`, `./x`) is also taken
# and left to the `datasets` library, which reads a local directory of data files the same way.
_REPO_ID = re.compile(r"^(?:[\w.-]+/)?[\w.-]+$")
_COLUMN = re.compile(r"^[\w.-]+$")


def is_path(name: str) -> bool:
    """True when `hub` names a local directory rather than a Hub repo id."""
    return name.startswith(("/", "./", "../", "~"))


class HubDataset(Section):
    """A Hugging Face dataset, loaded with `datasets.load_dataset`; its rows are validated like a
    file's, and problems name `row N` (the row `dataset[N]`) and the field."""

    hub: str = Field(min_length=1, max_length=400)
    """`org/name` on the Hub, or a local dataset directory (`/data/mine`, `./mine`)."""
    config: str | None = Field(None, min_length=1, max_length=200)
    """The dataset's configuration (subset), e.g. `main`; default: its only or default one."""
    split: str = Field("train", min_length=1, max_length=200, pattern=r"^[\w.\-\[\]:%]+$")
    """The split to read (`train`, `test`, `train[:1000]`)."""
    revision: str | None = Field(None, min_length=1, max_length=200, pattern=r"^[\w./-]+$")
    """A branch, tag or commit of the Hub repo; default: main."""
    columns: dict[str, str] = Field(default_factory=dict)
    """gro field ← dataset column, e.g. `{prompt: question, answer: solution}`; unmapped
    columns keep their names. TRL's formats (`messages`, `prompt`/`chosen`/`rejected` as
    message lists, `prompt`/`completion`) need no mapping."""

    @field_validator("hub")
    @classmethod
    def _known_shape(cls, hub: str) -> str:
        hub = hub.removeprefix(HUB_PREFIX)
        if is_path(hub) and any(ord(c) < 0x20 for c in hub):
            raise ValueError("a dataset path holds no control characters")
        if not is_path(hub) and not _REPO_ID.match(hub):
            raise ValueError(
                f"{hub!r} is not a Hub dataset id (org/name) or a local path (/dir, ./dir)"
            )
        return hub

    @field_validator("columns")
    @classmethod
    def _column_names(cls, columns: dict[str, str]) -> dict[str, str]:
        for target, source in columns.items():
            for name in (target, source):
                if not _COLUMN.match(name):
                    raise ValueError(f"{name!r} is not a column name (letters, digits, _ . -)")
        sources = list(columns.values())
        repeated = sorted({s for s in sources if sources.count(s) > 1})
        if repeated:
            raise ValueError(f"column {repeated[0]!r} is mapped to more than one field")
        return columns

    def label(self) -> str:
        """How messages name the dataset: `hf:org/name[config]:split`."""
        config = f"[{self.config}]" if self.config else ""
        at = f"@{self.revision}" if self.revision else ""
        return f"{HUB_PREFIX}{self.hub}{config}{at}:{self.split}"


def as_hub(value: Any) -> Any:
    """The `hf:org/name` shorthand as a mapping; anything else as given."""
    if isinstance(value, str) and value.startswith(HUB_PREFIX):
        return {"hub": value[len(HUB_PREFIX) :]}
    return value


HUB_TAG = "hf"
"""The tag pydantic puts in an error's location inside a HubDataset (`data.train.hf.split`);
gro_core.spec.messages leaves it out of the path."""


def _source_kind(value: Any) -> str:
    return HUB_TAG if isinstance(value, dict | HubDataset) else "name"


DataSource = Annotated[
    Annotated[Annotated[str, Field(min_length=1)], Tag("name")]
    | Annotated[HubDataset, Tag(HUB_TAG)],
    Discriminator(_source_kind),
]
"""A dataset file path or id (a string), or a HubDataset (a mapping, or `hf:org/name`)."""
