"""The project's docs: the generated pages are current, everything they document has a
docstring to show, and every docs/ file the code and README point to exists."""

from __future__ import annotations

import re
import shutil
from dataclasses import fields
from pathlib import Path

import pytest

import gro_core.docgen as docgen
from gro_core.cli import build_parser
from gro_core.docgen import jobspec, objective
from gro_core.docgen.markdown import attribute_docs, fill, labelled
from gro_core.methods import METHODS
from gro_core.objective.components import REGISTRIES, Component
from gro_core.objective.config import GROConfig
from gro_core.spec import JobSpec
from tests.gro_core.test_presets import RTOL

ROOT = Path(__file__).resolve().parent.parent
_DOC_PATH = re.compile(r"\bdocs/[\w./-]+\.md\b")


def test_generated_pages_are_current():
    stale = [str(p.output.relative_to(ROOT)) for p in docgen.stale_pages()]
    assert not stale, f"{stale} differ from the code: run python -m gro_core.docgen"


def test_check_exits_1_on_a_stale_page(tmp_path, monkeypatch, capsys):
    shutil.copytree(ROOT / "docs" / "templates", tmp_path / "docs" / "templates")
    for page in docgen.PAGES:
        (tmp_path / "docs" / f"{page.name}.md").write_text(page.render())
    monkeypatch.setattr(docgen, "ROOT", tmp_path)
    assert docgen.main(["--check"]) == 0
    stale = tmp_path / "docs" / "jobspec.md"
    stale.write_text(stale.read_text().replace("| `lr` |", "| `learning_rate` |"))
    assert docgen.main(["--check"]) == 1
    assert "docs/jobspec.md is stale" in capsys.readouterr().out


def test_a_placeholder_without_a_generator_is_an_error():
    with pytest.raises(ValueError, match="without a generator"):
        fill("# t\n\n{{ nothing }}\n", {}, "t.md")
    with pytest.raises(ValueError, match="does not place"):
        fill("# t\n", {"table": lambda: "x"}, "t.md")


def _spec_models():
    yield JobSpec
    yield from (model for _, model in jobspec.sections())
    yield from jobspec.reward_variants()


def test_every_spec_key_has_a_docstring():
    missing = [
        f"{model.__name__}.{key}"
        for model in _spec_models()
        for key, field in model.model_fields.items()
        if not (field.description or "").strip()
    ]
    assert not missing, f"give these keys an attribute docstring: {missing}"


def test_every_method_and_argument_is_documented():
    for name, method in METHODS.items():
        assert method.summary.strip(), name
        assert method.preset is None or method.citation.strip(), f"{name} needs a citation"
        for arg in method.args:
            assert arg.doc.strip(), f"{name}.{arg.name} has no doc"


@pytest.mark.parametrize("name", [n for n, m in METHODS.items() if m.preset is not None])
def test_every_preset_states_its_loss_gradient_and_proof(name):
    doc = METHODS[name].preset.__doc__
    assert labelled(doc, "Loss") and labelled(doc, "Gradient"), name
    assert name in objective.proofs(), f"no test in {objective.PRESET_TESTS} builds {name}"


def test_every_component_fact_has_words_in_the_docs():
    facts = {f.name for f in fields(Component)} - {"kind", "name", "impl"}
    assert facts <= set(objective.FACTS), facts - set(objective.FACTS)
    for registry in REGISTRIES.values():
        for component in registry.values():
            assert objective.formula(component), f"{component.name} has no docstring"


def test_every_config_field_is_documented():
    docs = attribute_docs(GROConfig)
    undocumented = [f for f in GROConfig.field_names() if f not in REGISTRIES and not docs.get(f)]
    assert not undocumented


def test_the_stated_tolerance_is_the_tests():
    page = (ROOT / "docs" / "objective.md").read_text()
    stated = re.search(r"relative error of ([0-9.e+-]+)", page)
    assert stated and float(stated.group(1)) == RTOL


def test_train_help_says_where_the_keys_are_and_lists_the_sections(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--help"])
    shown = capsys.readouterr().out
    assert "docs/jobspec.md" in shown
    epilog = shown.split("docs/objective.md", 1)[1]  # the list after the arguments
    listed = re.findall(r"^  ([a-z_]+(?:, [a-z_]+)*)  ", epilog, re.MULTILINE)
    keys = {key for line in listed for key in line.split(", ")}
    assert keys == set(JobSpec.model_fields), "gro train --help lists other keys than JobSpec"


def _python_files():
    for package in ("gro_core", "server", "worker", "dashboard", "client", "bench"):
        yield from (ROOT / package).rglob("*.py")


def test_every_docs_file_the_code_names_exists():
    named = {
        (path.relative_to(ROOT), ref)
        for path in _python_files()
        for ref in _DOC_PATH.findall(path.read_text(encoding="utf-8"))
    }
    missing = sorted(f"{where}: {ref}" for where, ref in named if not (ROOT / ref).is_file())
    assert not missing, missing


def test_every_link_of_the_readme_and_docs_exists():
    pages = [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]
    missing = []
    for page in pages:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text("utf-8")):
            local = not target.startswith(("http://", "https://"))
            if local and not (page.parent / target).exists():
                missing.append(f"{page.relative_to(ROOT)} -> {target}")
    assert not missing, missing
