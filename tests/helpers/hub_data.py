"""Hugging Face datasets built locally, read back through `datasets.load_dataset`'s own local
path (a directory of Parquet files whose README declares its configs), with the network off."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import datasets
import pytest
import yaml

Rows = list[dict[str, Any]]


def go_offline(monkeypatch: pytest.MonkeyPatch, cache: Path) -> None:
    """No Hub access and a private cache, whether or not `datasets` was imported already."""
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", cache)


def write_hub_dir(root: Path, configs: dict[str, dict[str, Rows]]) -> Path:
    """`root` holding `<config>/<split>.parquet` for each config and split, and a README.md
    whose `configs:` metadata names them, as a dataset repo on the Hub is laid out."""
    root.mkdir(parents=True, exist_ok=True)
    meta = []
    for name, splits in configs.items():
        files = []
        for split, rows in splits.items():
            (root / name).mkdir(exist_ok=True)
            datasets.Dataset.from_list(rows).to_parquet(str(root / name / f"{split}.parquet"))
            files.append({"split": split, "path": f"{name}/{split}.parquet"})
        meta.append({"config_name": name, "data_files": files})
    card = yaml.safe_dump({"configs": meta}, sort_keys=False)
    (root / "README.md").write_text(f"---\n{card}---\n# a dataset built by the tests\n")
    return root
