"""Every example job spec shipped in examples/ is a valid spec."""

from pathlib import Path

import pytest

from gro_core.spec import load_spec

EXAMPLES = sorted((Path(__file__).parents[2] / "examples").glob("*.yaml"))


def test_there_are_examples() -> None:
    assert len(EXAMPLES) >= 3


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_spec_is_valid(path: Path) -> None:
    spec = load_spec(path)
    assert spec.name and spec.method
