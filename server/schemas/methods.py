"""Methods and built-in tasks: what a job spec may name in `method:` and `data.task:`."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from gro_core.objective.config import GROConfig


class MethodArgOut(BaseModel):
    """One documented keyword of a method's `method_args`."""

    name: str = Field(examples=["beta"])
    type: str = Field(examples=["float"], description="its Python annotation, e.g. float | None")
    default: Any = Field(examples=[0.1])
    doc: str = Field(examples=["Inverse temperature β of the implicit reward."])


class MethodOut(BaseModel):
    """A record of the method registry (gro_core.methods)."""

    object: Literal["method"] = "method"
    name: str = Field(examples=["dpo"])
    summary: str
    kinds: list[str] = Field(
        examples=[["preference"]], description="dataset kinds it trains on (prompt: rollouts)"
    )
    online: bool = Field(description="it trains on rollouts of prompts")
    offline: bool = Field(description="it trains on a fixed dataset of completions")
    trains_with: Literal["sft", "reward_model", "gro"]
    compares_in_group: bool = Field(description="its advantages compare a prompt's completions")
    needs_reference: bool = Field(description="its objective reads a frozen reference model")
    citation: str
    trl: str = Field(
        examples=["DPOTrainer loss_type='sigmoid'"],
        description="the TRL trainer and loss type its loss is tested equal to ('' if none)",
    )
    args: list[MethodArgOut] = Field(description="what `method_args` accepts, with defaults")
    preset: GROConfig | None = Field(
        description="the objective's components with the defaults applied (null: not gro_loss)"
    )


class MethodList(BaseModel):
    object: Literal["list"] = "list"
    data: list[MethodOut]


class TaskOut(BaseModel):
    """A built-in task: generated rows and their rule rewards."""

    object: Literal["task"] = "task"
    name: str = Field(examples=["builtin:arithmetic"], description="what `data.task` takes")
    kind: str = Field(examples=["prompt"], description="prompt | preference | unpaired | sft")
    description: str
    family: str = Field(examples=["arithmetic"])
    default_reward: str = Field(description="the rule reward of a job that lists none")
    rewards: list[str] = Field(description="the rule rewards this task can be scored with")


class TaskList(BaseModel):
    object: Literal["list"] = "list"
    data: list[TaskOut]
