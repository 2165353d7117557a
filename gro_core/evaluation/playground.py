"""The playground: one prompt (or chat) completed by a model, scored when its run has a reward.

    record = complete(
        "runs/a/checkpoints/step-40", "Reverse: abc", Sampling(temperature=0.7, seed=1),
        fields={"answer": "cba"},
    )
    record["completion"], record["reward"], record["tokens"], record["finish_reason"]

A target is what an evaluation takes (gro_core.evaluation.targets): a model, a run's checkpoint
or a run directory. A run's completion is scored by the run's own reward (its `rewards`, else
the rule reward of the task it trained on) against `fields`, the row's other fields a
reward reads (a task's `answer`); without those fields the reward is None and `reward_note`
says which field was missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

from gro_core.data.encode import encode_prompt
from gro_core.evaluation.policy import scorer_for
from gro_core.evaluation.targets import check_generates, checkpoint_spec, find_checkpoint
from gro_core.models import load_policy, load_run_model, load_tokenizer
from gro_core.rewards import RewardScorer
from gro_core.rollout.sampling import RolloutSettings, sample
from gro_core.rollout.stopping import model_stop_ids
from gro_core.spec import JobSpec
from gro_core.spec.sections import TrainSpec

__all__ = ["Sampling", "complete"]

Prompt = str | list[dict[str, str]]
"""A plain prompt, or chat messages ({role, content}) rendered with the tokenizer's template."""


@dataclass(frozen=True)
class Sampling:
    temperature: float = 1.0
    """0: greedy decoding."""
    top_p: float = 1.0
    max_new_tokens: int = 64
    seed: int = 0
    max_length: int = TrainSpec.model_fields["max_length"].default
    """Longest prompt + completion in tokens: a longer prompt keeps its last tokens."""

    def rollout(self) -> RolloutSettings:
        if self.temperature == 0:
            return RolloutSettings(self.max_new_tokens, greedy=True)
        return RolloutSettings(self.max_new_tokens, self.temperature, self.top_p)


def _run_reward(spec: JobSpec, tokenizer: PreTrainedTokenizerBase) -> RewardScorer | None:
    """The run's reward: its `rewards`, else its task's rule reward (every task's rows keep
    the `answer` it reads); None without either."""
    return scorer_for(spec.rewards, spec.data.task, tokenizer)


def _load(target: str) -> tuple[torch.nn.Module, PreTrainedTokenizerBase, JobSpec | None]:
    """(model, tokenizer, the run's spec or None for a plain model)."""
    path = Path(target)
    checkpoint = find_checkpoint(path) if path.is_dir() else None
    if checkpoint is None:
        return load_policy(target), load_tokenizer(target), None
    spec = checkpoint_spec(checkpoint)
    check_generates(spec, target)
    return load_run_model(spec, checkpoint), load_tokenizer(spec.model), spec


def _score(
    scorer: RewardScorer | None, completion: str, row: dict[str, Any]
) -> tuple[float | None, str | None]:
    if scorer is None:
        return None, None
    try:
        scorer.check_rows([row])
    except ValueError as exc:  # the prompt came without the fields the reward reads
        return None, str(exc)
    return scorer([completion], [row]).total[0], None


@torch.no_grad()
def complete(
    target: str, prompt: Prompt, sampling: Sampling, fields: dict[str, Any] | None = None
) -> dict[str, Any]:
    """One completion of `prompt` by `target`: completion (text, special tokens dropped),
    tokens, finish_reason (stop | length), reward (None when the target has no reward or
    `fields` lack what it reads) and reward_note (why it is None). The same seed gives the
    same completion. Raises OSError for a model that cannot load, ValueError for a reward
    model (it does not generate)."""
    model, tokenizer, spec = _load(target)
    model.eval()
    room = max(2, sampling.max_length - sampling.max_new_tokens)
    prompt_ids = encode_prompt(tokenizer, prompt)[-room:]
    device = next(model.parameters()).device
    # On the model's device: torch.multinomial refuses a generator on another device.
    generator = torch.Generator(device=device).manual_seed(sampling.seed)
    out = sample(model, tokenizer, [prompt_ids], 1, sampling.rollout(), generator)
    ids = out.completion_ids[0]
    text = tokenizer.decode(ids, skip_special_tokens=True)
    scorer = _run_reward(spec, tokenizer) if spec is not None else None
    reward, note = _score(scorer, text, {**(fields or {}), "prompt": prompt})
    # Cut at max_new_tokens unless its last token is an end id.
    cut = len(ids) >= sampling.max_new_tokens and ids[-1] not in model_stop_ids(model, tokenizer)
    return {
        "completion": text,
        "tokens": len(ids),
        "finish_reason": "length" if cut else "stop",
        "reward": reward,
        "reward_note": note,
    }
