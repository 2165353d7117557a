"""Which engine samples an online run's rollouts: `rollout.backend` in the job spec.

    backend = rollout_backend(spec, device)    # at job start: a missing vllm fails here
    backend.sync(model)                        # once per batch, after the updates before it
    out = backend(model, tokenizer, prompts, G, settings, generator, seeds)   # a Rollouts

`seeds` (optional, one per prompt, `sampling.prompt_seeds`): each prompt's randomness from its
own seed, so ranks that split a batch sample what one process would; both backends honour it.

hf decodes with the training model itself (`gro_core.rollout.sampling.sample`), so `sync`
has nothing to do; vllm samples from its own engine, which `sync` loads with the training weights.
"""

from __future__ import annotations

from typing import Protocol

import torch
from transformers import PreTrainedTokenizerBase

from gro_core.models import pick_dtype
from gro_core.rollout.sampling import Rollouts, RolloutSettings, sample
from gro_core.rollout.vllm_engine import VLLMRollout
from gro_core.spec import JobSpec


class RolloutBackend(Protocol):
    def sync(self, model: torch.nn.Module) -> None:
        """Make the next rollouts use `model`'s current weights."""
        ...

    def __call__(
        self,
        model: torch.nn.Module,
        tokenizer: PreTrainedTokenizerBase,
        prompts: list[list[int]],
        num_generations: int,
        settings: RolloutSettings,
        generator: torch.Generator | None = None,
        seeds: list[int] | None = None,
    ) -> Rollouts: ...


class HFBackend:
    """gro's own KV-cache decoding loop over the training model."""

    def sync(self, model: torch.nn.Module) -> None:
        pass  # it decodes with the training model: always current

    def __call__(
        self,
        model: torch.nn.Module,
        tokenizer: PreTrainedTokenizerBase,
        prompts: list[list[int]],
        num_generations: int,
        settings: RolloutSettings,
        generator: torch.Generator | None = None,
        seeds: list[int] | None = None,
    ) -> Rollouts:
        return sample(model, tokenizer, prompts, num_generations, settings, generator, seeds)


def rollout_backend(spec: JobSpec, device: torch.device) -> RolloutBackend:
    """The spec's backend, ready to sample. vllm is imported only when chosen; without it
    installed this raises a SpecError on `rollout.backend` saying how to install it."""
    if spec.rollout.backend == "hf":
        return HFBackend()
    return VLLMRollout(
        spec.model,
        # The dtype load_policy gives the training model, so both compute alike.
        dtype=pick_dtype("auto", device),
        device=device,
        seed=spec.train.seed,
        max_model_len=spec.train.max_length + spec.rollout.max_new_tokens,
    )
