"""Fixtures shared by gro_core's tests: locally built Hugging Face models of real architectures."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers.hf_models import ARCHS, build_model_dir


@pytest.fixture(scope="session")
def hf_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """`hf_model_dir("qwen2")`: the directory of that architecture's random-weight model,
    built once per session on first use."""
    root = tmp_path_factory.mktemp("hf-models")
    built: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in built:
            built[name] = build_model_dir(ARCHS[name], root)
        return built[name]

    return get
