"""An OpenAI fine-tuning job request as a gro job spec.

    method.type supervised     -> sft
    method.type dpo            -> dpo (beta)
    method.type reinforcement  -> an online preset (gro's own unless `gro.method` names
                                  another), its grader as rewards (server.services.openai_graders)

Hyperparameters, "auto" resolved to the defaults in `DEFAULTS` (docs/openai.md):
batch_size -> train.batch_size, n_epochs -> train.epochs, learning_rate_multiplier -> train.lr as
a multiple of gro's default lr, beta -> method_args.beta, compute_multiplier -> rollout
num_generations as a multiple of gro's default, eval_interval -> eval.every, eval_samples ->
eval.num_prompts. `gro.spec` is merged over the result, so every gro key stays reachable.
"""

from __future__ import annotations

import inspect
import secrets
from dataclasses import dataclass
from typing import Any

from gro_core.methods import METHODS
from gro_core.spec.sections import EvalSpec, RolloutSpec, TrainSpec
from server.errors import InvalidRequestError
from server.schemas.openai import FineTuningJobCreate
from server.services.openai_graders import refuse, rewards_of

GRO_METHOD = {"supervised": "sft", "dpo": "dpo"}
DEFAULT_ONLINE = "gro"


def _default(section: type[Any], name: str) -> Any:
    return section.model_fields[name].default


def _preset_default(method: str, name: str) -> Any:
    preset = METHODS[method].preset
    assert preset is not None
    return inspect.signature(preset).parameters[name].default


BASE_LR: float = _default(TrainSpec, "lr")
DEFAULTS: dict[str, Any] = {
    "batch_size": _default(TrainSpec, "batch_size"),
    "learning_rate_multiplier": 1.0,
    "n_epochs": 3,
    "beta": _preset_default("dpo", "beta"),
    "compute_multiplier": 1.0,
    "eval_interval": _default(EvalSpec, "every"),
    "eval_samples": _default(EvalSpec, "num_prompts"),
}
"""What "auto" (or leaving a hyperparameter out) means; reinforcement's n_epochs is 1."""

ACCEPTED = {
    "supervised": ("batch_size", "learning_rate_multiplier", "n_epochs"),
    "dpo": ("batch_size", "learning_rate_multiplier", "n_epochs", "beta"),
    "reinforcement": (
        "batch_size",
        "learning_rate_multiplier",
        "n_epochs",
        "compute_multiplier",
        "eval_interval",
        "eval_samples",
        "reasoning_effort",
    ),
}
_INTEGERS = ("batch_size", "n_epochs", "eval_interval", "eval_samples")


@dataclass
class Mapped:
    """The spec document to submit, and what the OpenAI job shows that the spec does not."""

    document: dict[str, Any]
    seed: int
    fields: dict[str, Any]


def _number(name: str, value: Any, param: str) -> int | float:
    if name in _INTEGERS:
        ok = isinstance(value, int) and not isinstance(value, bool)
        ok = ok and (value >= 1 or (name == "eval_interval" and value == 0))
        if not ok:
            raise refuse(
                param, f"must be 'auto' or a positive integer, got {value!r}", "invalid_value"
            )
        return value
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise refuse(param, f"must be 'auto' or a number > 0, got {value!r}", "invalid_value")
    return float(value)


def resolve(kind: str, given: dict[str, Any], param: str) -> dict[str, Any]:
    """Every hyperparameter `kind` accepts, "auto" and absent ones as their defaults."""
    unknown = sorted(set(given) - set(ACCEPTED[kind]))
    if unknown:
        raise refuse(
            f"{param}.{unknown[0]}",
            f"not a {kind} hyperparameter; one of {', '.join(ACCEPTED[kind])}",
            "invalid_value",
        )
    resolved: dict[str, Any] = {}
    for name in ACCEPTED[kind]:
        value = given.get(name, "auto")
        if name == "reasoning_effort":
            if value not in ("auto", "default", None):
                raise refuse(f"{param}.{name}", "gro's models have no reasoning effort to set")
            continue
        if value in ("auto", None):
            value = 1 if (name == "n_epochs" and kind == "reinforcement") else DEFAULTS[name]
        resolved[name] = _number(name, value, f"{param}.{name}")
    return resolved


def merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """`overrides` written over `base`, mapping by mapping (lists and values replace)."""
    out = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def _online_method(gro: dict[str, Any]) -> str:
    name = gro.get("method", DEFAULT_ONLINE)
    method = METHODS.get(name) if isinstance(name, str) else None
    if method is None or not method.online or "prompt" not in method.kinds:
        online = ", ".join(n for n, m in METHODS.items() if m.online and "prompt" in m.kinds)
        raise refuse("gro.method", f"{name!r} is not an online method; one of {online}")
    return name


def _method_parts(
    kind: str,
    settings: dict[str, Any],
    hyper: dict[str, Any],
    gro: dict[str, Any],
    allow_python: bool,
) -> tuple[str, dict[str, Any]]:
    """(gro method, spec keys) for the method and its resolved hyperparameters."""
    if kind == "dpo":
        return "dpo", {"method_args": {"beta": hyper["beta"]}}
    if kind == "supervised":
        return "sft", {}
    rewards = rewards_of(settings.get("grader"), "method.reinforcement.grader")
    if any(r["type"] == "python" for r in rewards) and not allow_python:
        raise refuse(
            "method.reinforcement.grader",
            "python graders run arbitrary code and are disabled here; the operator must enable "
            "python rewards (GRO_ALLOW_PYTHON_REWARDS)",
            "python_rewards_disabled",
        )
    generations = max(
        2, round(_default(RolloutSpec, "num_generations") * hyper["compute_multiplier"])
    )
    return _online_method(gro), {
        "rewards": rewards,
        "rollout": {"num_generations": generations},
        "eval": {"every": hyper["eval_interval"], "num_prompts": hyper["eval_samples"]},
    }


def _method_settings(body: FineTuningJobCreate) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """(type, its settings, its hyperparameters as given): the deprecated top-level
    hyperparameters count for supervised jobs."""
    kind = body.method.type if body.method else "supervised"
    settings = (getattr(body.method, kind) if body.method else None) or {}
    given = settings.get("hyperparameters")
    if body.hyperparameters is not None and kind != "supervised":
        raise refuse("hyperparameters", f"set them under method.{kind}.hyperparameters")
    if given is None and kind == "supervised":
        given = body.hyperparameters
    if given is not None and not isinstance(given, dict):
        raise refuse(f"method.{kind}.hyperparameters", "must be an object")
    return kind, settings, given or {}


def _echo(hyper: dict[str, Any], document: dict[str, Any]) -> dict[str, Any]:
    """The hyperparameters as the job will train, after `gro.spec` overrode any of them."""
    train = document.get("train") or {}
    echoed = dict(hyper)
    for name, key in (("batch_size", "batch_size"), ("n_epochs", "epochs")):
        if key in train:
            echoed[name] = train[key]
    if isinstance(train.get("lr"), int | float):
        echoed["learning_rate_multiplier"] = train["lr"] / BASE_LR
    if "beta" in echoed and "beta" in (document.get("method_args") or {}):
        echoed["beta"] = document["method_args"]["beta"]
    return echoed


def _check_extension(gro: dict[str, Any], kind: str) -> None:
    unknown = sorted(set(gro) - {"method", "spec"})
    if unknown:
        raise refuse(
            f"gro.{unknown[0]}", "the gro extension takes method and spec", "invalid_value"
        )
    if "method" in gro and kind != "reinforcement":
        raise refuse("gro.method", f"picks the online preset of reinforcement jobs, not {kind}")
    if not isinstance(gro.get("spec", {}), dict):
        raise refuse("gro.spec", "must be an object of job spec keys (docs/jobspec.md)")


_WANDB_KEYS = {"project": "project", "name": "run_name", "entity": "entity", "tags": "tags"}


def _integrations(given: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """OpenAI's `integrations` ([{type: wandb, wandb: {project, name, entity, tags}}]) as the
    spec's trackers: an online W&B run, logged in with the workers' WANDB_API_KEY."""
    trackers = []
    for i, entry in enumerate(given or []):
        param = f"integrations.{i}"
        if entry.get("type") != "wandb":
            raise refuse(f"{param}.type", "only wandb integrations exist", "invalid_value")
        settings = entry.get("wandb")
        if not isinstance(settings, dict) or not settings.get("project"):
            raise refuse(f"{param}.wandb.project", "missing", "invalid_value")
        unknown = sorted(set(settings) - set(_WANDB_KEYS))
        if unknown:
            raise refuse(f"{param}.wandb", f"unknown keys {unknown}", "invalid_value")
        tracker = {_WANDB_KEYS[k]: v for k, v in settings.items() if v is not None}
        trackers.append({"type": "wandb", "mode": "online", **tracker})
    return trackers


def map_request(body: FineTuningJobCreate, allow_python: bool) -> Mapped:
    """The gro spec document of an OpenAI job request; InvalidRequestError naming the param."""
    gro = body.gro or {}
    kind, settings, given = _method_settings(body)
    _check_extension(gro, kind)
    hyper = resolve(kind, given, f"method.{kind}.hyperparameters")
    method, parts = _method_parts(kind, settings, hyper, gro, allow_python)
    seed = body.seed if body.seed is not None else secrets.randbelow(2**31)
    document: dict[str, Any] = {
        "name": body.suffix,
        "model": body.model,
        "method": method,
        "data": {"train": body.training_file, "eval": body.validation_file},
        "train": {
            "epochs": hyper["n_epochs"],
            "batch_size": hyper["batch_size"],
            "lr": BASE_LR * hyper["learning_rate_multiplier"],
            "seed": seed,
        },
    }
    if body.integrations:
        document["integrations"] = _integrations(body.integrations)
    document = merge(merge(document, parts), gro.get("spec") or {})
    hyper = _echo(hyper, document)
    shown_method = {"type": kind, kind: {**settings, "hyperparameters": hyper}}
    fields = {
        "training_file": body.training_file,
        "validation_file": body.validation_file,
        "suffix": body.suffix,
        "metadata": body.metadata,
        "integrations": body.integrations,
        "hyperparameters": hyper,
        "method": shown_method,
    }
    return Mapped(document, seed, fields)


SPEC_PARAMS = {
    "data.train": "training_file",
    "data.eval": "validation_file",
    "model": "model",
    "train.seed": "seed",
}
"""Spec keys an OpenAI request set by its own name: a problem with one names the request's."""


def as_request_error(exc: InvalidRequestError) -> InvalidRequestError:
    """A spec problem named by the request parameter that set the key, where one did."""
    param = SPEC_PARAMS.get(exc.field or "")
    if param is None:
        return exc
    message = exc.message.replace(f"{exc.field}:", f"{param}:", 1)
    return exc.moved(param, message)
