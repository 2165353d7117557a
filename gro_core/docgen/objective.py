"""The generated parts of docs/objective.md: component tables from the component records, the
config fields, and one section per preset from its method record, preset function and test."""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any

from gro_core.docgen.markdown import attribute_docs, code, labelled, prose, table, value
from gro_core.methods import METHODS, Method
from gro_core.objective.components import REGISTRIES, Component
from gro_core.objective.config import GROConfig

ROOT = Path(__file__).resolve().parents[2]
PRESET_TESTS = "tests/gro_core/test_presets.py"
TRL_TESTS = "tests/gro_core/objective/test_trl_exact.py"

# How each fact of a component record reads in the "needs" column; a record field missing
# here fails tests/test_docs.py, so a new fact cannot go undocumented.
FACTS: dict[str, Callable[[Any], str]] = {
    "token_level": lambda v: "per token: the (B, T) form of the loss",
    "min_group": lambda v: f"groups of at least {v}",
    "exact_group": lambda v: f"groups of exactly {v}",
    "compares_in_group": lambda v: "compares the completions of a group",
    "reads_x": lambda v: "measures x",
    "needs_reference": lambda v: "the reference model",
    "kl_needs_reference": lambda v: "the reference model when kl_coef > 0",
    "needs_baseline_rewards": lambda v: "the reward of each prompt's greedy completion",
    "requires": lambda v: ", ".join(f"{k}={val}" for k, val in v.items()),
    "units": lambda v: f"counts {v} when weighting micro-batches",
    "is_ratio": lambda v: "d is the log importance ratio",
    "needs_ratio": lambda v: "an importance-ratio anchor (old, old_seq)",
    "value_impl": lambda v: f"loss value from `{v.split(':')[1]}`",
    "value_terms": lambda v: {
        "each": "loss value: each completion's term",
        "chosen": "loss value: the pair's term, from its chosen member",
    }[v],
}
_RECORD_KEYS = ("kind", "name", "impl")
_SHAPE = re.compile(r"^\((?:[A-Za-z]+(?:, ?[A-Za-z]*)*)?,?\)\s+|\s*->\s*\([^)]*\)\.?$")
_ARXIV = re.compile(r"arXiv:(\d{4}\.\d{4,5})")


def _default(f: Any) -> Any:
    if f.default is not MISSING:
        return f.default
    return f.default_factory() if f.default_factory is not MISSING else MISSING


def needs(component: Component) -> str:
    """What a component needs or implies, from the facts its record sets."""
    said = []
    for f in fields(Component):
        current = getattr(component, f.name)
        if f.name in _RECORD_KEYS or current == _default(f):
            continue
        said.append(FACTS[f.name](current))
    return "; ".join(said) or "—"


def formula(component: Component) -> str:
    """The first paragraph of the component function's docstring, without its shape notes."""
    return prose(_SHAPE.sub("", component.doc).strip())


def component_table(field: str) -> str:
    rows = [[code(n), formula(c), needs(c)] for n, c in REGISTRIES[field].items()]
    return table(["name", "what it computes", "needs / implies"], rows)


def config_table() -> str:
    """Every GROConfig field: a component choice (linked to its table) or a parameter."""
    docs = attribute_docs(GROConfig)
    rows = []
    for f in fields(GROConfig):
        doc = prose(docs.get(f.name, ""))
        if f.name in REGISTRIES:
            doc = f"one of: {', '.join(REGISTRIES[f.name])}"
        rows.append([code(f.name), value(_default(f)), doc])
    return table(["field", "default", "what"], rows)


def _kl(cfg: GROConfig) -> str:
    if cfg.kl_coef == 0:
        return "—"
    if cfg.kl_in_reward:
        return "k1, in the reward"
    if cfg.kl_in_loss:
        return "k3, in the loss"
    if cfg.component("advantage").kl_needs_reference:
        return "k1, in each token's reward"
    return "—"


def _x(cfg: GROConfig) -> str:
    if not cfg.component("anchor").reads_x:
        return "—"
    return f"{cfg.x}, token mean" if cfg.x_token_mean else cfg.x


def preset_table() -> str:
    """One row per preset: its components with the method's default arguments, its TRL
    counterpart and the tests that prove it."""
    found, rows = proofs(), []
    for name, method in METHODS.items():
        cfg = method.config()
        if cfg is None:
            continue
        row = [f"[{name}](#{name})", cfg.advantage, cfg.f, _x(cfg), cfg.anchor, cfg.weight]
        row += [cfg.aggregation, _kl(cfg), ", ".join(sorted(method.kinds))]
        rows.append([*row, code(method.trl) if method.trl else "—", _tests(name, found)])
    header = ["preset", "advantage", "f", "x", "anchor", "weight", "aggregation", "KL", "data"]
    return table([*header, "TRL counterpart", "proved by"], rows)


def _tests(name: str, found: dict[str, list[tuple[str, list[str]]]]) -> str:
    return ", ".join(code(test.split("::")[-1]) for test, _ in found.get(name, []))


def _perturbed(default: Any, annotation: str) -> Any:
    """Another valid-looking value of an argument, to see which fields it feeds."""
    if isinstance(default, bool):
        return not default
    if isinstance(default, int | float):
        return default * 1.5 + 0.05
    return 0.3 if default is None and "float" in annotation else MISSING


def sources(method: Method) -> dict[str, list[str]]:
    """{config field: the arguments it is computed from}, found by varying each argument."""
    assert method.preset is not None
    base = method.preset()
    found: dict[str, list[str]] = {}
    for arg in method.args:
        other = _perturbed(arg.default, arg.type)
        if other is MISSING:
            continue
        changed = method.preset(**{arg.name: other})
        for field in (f for f in changed if changed[f] != base.get(f)):
            found.setdefault(field, []).append(arg.name)
    return found


def settings_table(method: Method) -> str:
    """The fields the preset sets, with the arguments they come from."""
    assert method.preset is not None
    from_args = sources(method)
    rows = [
        [code(field), value(v), ", ".join(code(a) for a in from_args.get(field, [])) or "—"]
        for field, v in method.preset().items()
    ]
    return table(["field", "value (default arguments)", "set from"], rows)


def args_table(method: Method) -> str:
    if not method.args:
        return "It takes no arguments."
    rows = [[code(a.name), code(a.type), value(a.default), prose(a.doc)] for a in method.args]
    return table(["argument", "type", "default", "what"], rows)


def _calls(function: ast.FunctionDef) -> tuple[set[str], set[str]]:
    """Presets a test builds through `ours("name", ...)`, reference losses it reads as `ref.x`
    and TRL losses as `trl.x`."""
    presets, references = set(), set()
    for node in ast.walk(function):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.args:
            first = node.args[0]
            if node.func.id == "ours" and isinstance(first, ast.Constant):
                presets.add(str(first.value))
        is_name = isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
        if is_name and node.value.id in ("ref", "trl"):  # type: ignore[union-attr]
            module = "reference_losses" if node.value.id == "ref" else "TRL's"  # type: ignore
            references.add(f"{module} {node.attr}")  # type: ignore[union-attr]
    return presets, references


def _case_presets(function: ast.FunctionDef, cases: dict[str, set[str]]) -> set[str]:
    """Presets a test is parametrized over: the first items of a module-level *_CASES list."""
    names = set()
    for decorator in function.decorator_list:
        if isinstance(decorator, ast.Call) and len(decorator.args) == 2:
            values = decorator.args[1]
            if isinstance(values, ast.Name) and values.id in cases:
                names |= cases[values.id]
    return names


def _cases(module: ast.Module) -> dict[str, set[str]]:
    """{NAME_CASES: the preset names its tuples start with}."""
    found = {}
    for node in module.body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            if name.endswith("_CASES") and isinstance(node.value, ast.List):
                found[name] = {
                    str(t.elts[0].value)
                    for t in node.value.elts
                    if isinstance(t, ast.Tuple) and isinstance(t.elts[0], ast.Constant)
                }
    return found


def proofs(paths: tuple[str, ...] = (PRESET_TESTS, TRL_TESTS)) -> dict[str, list]:
    """{preset: [(path::test, the references it compares with)]} from the preset tests."""
    found: dict[str, list[tuple[str, list[str]]]] = {}
    for path in paths:
        module = ast.parse((ROOT / path).read_text())
        cases = _cases(module)
        for node in module.body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                presets, references = _calls(node)
                for name in sorted(presets | _case_presets(node, cases)):
                    found.setdefault(name, []).append((f"{path}::{node.name}", sorted(references)))
    return found


def citation(method: Method) -> str:
    """The method's citation, its arXiv id as a link."""
    return _ARXIV.sub(r"[arXiv:\1](https://arxiv.org/abs/\1)", method.citation)


def _data(method: Method) -> str:
    ways = [w for w, on in (("online", method.online), ("offline", method.offline)) if on]
    return f"Trains on {' or '.join(sorted(method.kinds))} data ({' and '.join(ways)})."


def _proof(name: str, found: dict[str, list[tuple[str, list[str]]]]) -> str:
    tests = found.get(name)
    if not tests:
        raise ValueError(f"neither {PRESET_TESTS} nor {TRL_TESTS} has a test building {name!r}")
    said = []
    for test, refs in tests:
        against = ", ".join(_reference(r, name) for r in refs)
        said.append(code(test) + (f" against {against}" if against else ""))
    return "Proven by " + "; ".join(said) + "."


def _reference(reference: str, preset: str) -> str:
    """`reference_losses.dpo_loss`, or TRL's loss code with the counterpart it runs."""
    module, function = reference.split(" ")
    if module == "reference_losses":
        return code(f"reference_losses.{function}")
    trl = METHODS[preset].trl
    return f"TRL's own loss code ({code(trl)})" if trl else "TRL's own loss code"


def preset_section(name: str, found: dict[str, list[tuple[str, list[str]]]]) -> str:
    method = METHODS[name]
    doc = method.preset.__doc__ if method.preset else ""
    loss, gradient = labelled(doc, "Loss"), labelled(doc, "Gradient")
    if not (loss and gradient):
        raise ValueError(f"presets.{name}: its docstring needs a Loss: and a Gradient: paragraph")
    parts = [
        f"### {name}",
        f"{method.summary} {_data(method)}",
        f"Citation: {citation(method)}.",
        f"**Loss.** {prose(loss)}",
        f"**Gradient.** {prose(gradient)}",
        settings_table(method),
        f"Arguments (`method_args`):\n\n{args_table(method)}",
        _proof(name, found),
    ]
    return "\n\n".join(parts)


def preset_sections() -> str:
    found = proofs()
    names = [n for n, m in METHODS.items() if m.preset is not None]
    return "\n\n".join(preset_section(n, found) for n in names)


def other_methods() -> str:
    """The methods that train with their own objective instead of gro_loss."""
    rows = [
        [code(n), m.trains_with, m.summary, _data(m), citation(m) or "—"]
        for n, m in METHODS.items()
        if m.preset is None
    ]
    return table(["method", "objective", "what", "data", "citation"], rows)


def parts() -> dict[str, Callable[[], str]]:
    """The placeholders of docs/templates/objective.md and what fills each."""
    tables = {f"components_{f}": (lambda f=f: component_table(f)) for f in REGISTRIES}
    return {
        **tables,
        "config_fields": config_table,
        "preset_table": preset_table,
        "presets": preset_sections,
        "other_methods": other_methods,
    }
