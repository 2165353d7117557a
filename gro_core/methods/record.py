"""A method's record: what it trains on, its objective, preset, arguments and citation."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from gro_core.data.kinds import KINDS
from gro_core.objective.config import GROConfig

TrainsWith = Literal["sft", "reward_model", "gro"]


@dataclass(frozen=True)
class Arg:
    """One documented argument of a method (a keyword of `method_args`)."""

    name: str
    type: str
    default: Any
    doc: str


@dataclass(frozen=True)
class Method:
    name: str
    summary: str
    kinds: frozenset[str]
    """Dataset kinds it trains on; `prompt` means rollouts scored by rewards."""
    trains_with: TrainsWith = "gro"
    """The objective: supervised likelihood, a Bradley-Terry reward head, or gro_loss."""
    preset: Callable[..., dict[str, Any]] | None = None
    """gro_loss methods: the preset's function (its keywords are the method's arguments)."""
    arg_docs: Mapping[str, str] = field(default_factory=dict)
    citation: str = ""
    trl: str = ""
    """TRL's counterpart (trainer and loss_type) that the preset is tested equal to."""

    @property
    def online(self) -> bool:
        """It can train on rollouts of prompts."""
        return "prompt" in self.kinds

    @property
    def offline(self) -> bool:
        """It can train on a fixed dataset of completions."""
        return bool(self.kinds - {"prompt"})

    @property
    def generates(self) -> bool:
        """Its model is a policy that generates completions; a reward model only scores them."""
        return self.trains_with != "reward_model"

    @property
    def args(self) -> tuple[Arg, ...]:
        if self.preset is None:
            return ()
        params = inspect.signature(self.preset).parameters.values()
        return tuple(
            Arg(p.name, str(p.annotation), p.default, self.arg_docs.get(p.name, "")) for p in params
        )

    def config(self, **overrides: Any) -> GROConfig | None:
        """The GROConfig this method trains with (None for sft and reward_model): its preset
        with the method's arguments or GROConfig fields in `overrides` applied.

        Raises ValueError for an unknown keyword, or a value the method or the objective
        does not accept.
        """
        if self.preset is None:
            return None
        name, params = self.name, [a.name for a in self.args]
        fields = set(GROConfig.field_names()) - {"name"}
        unknown = sorted(set(overrides) - set(params) - fields)
        if unknown:
            raise ValueError(
                f"{name}: unknown argument(s) {', '.join(unknown)}; the method takes "
                f"{', '.join(params) or 'no parameters'}, and any GROConfig field may be "
                f"overridden ({', '.join(sorted(fields))})"
            )
        try:
            config = self.preset(**{k: v for k, v in overrides.items() if k in params})
            config |= {k: v for k, v in overrides.items() if k in fields}
            return GROConfig(name=name, **config)
        except TypeError as exc:  # e.g. a string where a number belongs
            raise ValueError(f"{name}: bad argument type: {exc}") from exc
        except ValueError as exc:
            message = str(exc)
            raise ValueError(message if message.startswith(name) else f"{name}: {message}") from exc

    def describe(self) -> dict[str, Any]:
        """A JSON-able record: what GET /v1/methods serves for this method."""
        cfg = self.config()
        return {
            "name": self.name,
            "summary": self.summary,
            "kinds": sorted(self.kinds),
            "online": self.online,
            "offline": self.offline,
            "trains_with": self.trains_with,
            "compares_in_group": bool(cfg and cfg.compares_in_group),
            "needs_reference": bool(cfg and cfg.needs_reference),
            "citation": self.citation,
            "trl": self.trl,
            "args": [vars(a) for a in self.args],
            "preset": cfg.to_dict() if cfg else None,
        }


def registry(*methods: Method) -> dict[str, Method]:
    """{name: record}, each record checked: known data kinds, every argument documented."""
    for m in methods:
        unknown = m.kinds - set(KINDS)
        assert not unknown, f"{m.name}: unknown kinds {unknown}"
        if m.preset is not None:
            missing = {a.name for a in m.args} - set(m.arg_docs)
            assert not missing, f"{m.name}: document the arguments {missing}"
    return {m.name: m for m in methods}
