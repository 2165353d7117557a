"""Online GRO: sample completions, score them, and update on them with a GRO preset.

Each step: a batch of prompts → G rollouts each (one batched decode) → rewards → reference
log-probs when the preset uses them → `num_iterations` updates on the batch. Old log-probs
are computed by an extra forward only when num_iterations > 1; with one update the batch's
own log-probs (detached) are the old ones, as gro_loss assumes by default.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor
from transformers import PreTrainedTokenizerBase

from gro_core.data.encode import Example, Sequence, completion_mask, unpad_rows
from gro_core.evaluation.policy import evaluate_policy
from gro_core.methods import get_method, get_preset
from gro_core.models import Reference
from gro_core.objective.advantages import moments_read_old
from gro_core.objective.loss import gro_loss, gro_moments, moment_stages
from gro_core.rewards import build_scorer, python_rewards_allowed, reward_timeout_s
from gro_core.rollout.backends import rollout_backend
from gro_core.rollout.sampling import RolloutSettings, prompt_seeds
from gro_core.rollout.static_decode import sharded
from gro_core.spec import JobSpec
from gro_core.trainers.chunking import grouped_logprobs, overhead_tokens
from gro_core.trainers.dapo_sampling import (
    is_flat,
    is_truncated,
    overlong_penalty,
    renumbered,
)
from gro_core.trainers.datasets import Data, DataError
from gro_core.trainers.distributed import any_rank
from gro_core.trainers.offline import aggregation_units
from gro_core.trainers.prompt_sharing import scores_shared_rows
from gro_core.trainers.protocol import Collected, StepResult
from gro_core.trainers.rollout_groups import (
    RolloutGroup,
    group_samples,
    loss_inputs,
    store_rows,
)
from gro_core.trainers.step_draws import Share, extra_prompts, offline_places

# A per-forward overhead no padding outweighs: length_chunks then keeps one chunk.
_ONE_CHUNK = 10**12
# (dataset row, its completions, whether the rewards score them)
Pending = tuple[dict[str, Any], list[Sequence], bool]


class OnlineObjective:
    """A gro_loss method on rollouts of prompts, scored by the reward functions."""

    def __init__(
        self,
        spec: JobSpec,
        tokenizer: PreTrainedTokenizerBase,
        data: Data,
        device: torch.device,
        reference: Reference | None,
    ) -> None:
        self.cfg = get_preset(spec.method, **_method_args(spec))
        self.spec, self.tokenizer, self.data, self.device = spec, tokenizer, data, device
        self.reference = reference
        self.iterations = spec.train.num_iterations
        self.scorer = build_scorer(
            spec.rewards,
            task=spec.data.task,
            eos=tokenizer.eos_token,
            allow_python=python_rewards_allowed(),
            timeout_s=reward_timeout_s(),
        )
        self.scorer.check_rows([e.row for e in data.train[:1000]])
        self.offline_scored = self._check_offline(data.offline)
        r = spec.rollout
        self.settings = RolloutSettings(
            r.max_new_tokens, r.temperature, r.top_p, r.top_k, stop=tuple(r.stop)
        )
        self.sample = rollout_backend(spec, device)  # hf or vllm; a missing vllm fails here
        self._overhead: dict[bool, int] = {}  # a forward's fixed cost in tokens, w/o backward
        self._shares: dict[int, bool] = {}  # by id(model): it scores shared-prompt rows right

    def _logprobs(
        self, model: torch.nn.Module, groups: list[RolloutGroup]
    ) -> tuple[Tensor, Tensor]:
        """(B, K) per-token log-probs of the groups' sequences and their mask, as `collate`
        lays them out: each prompt computed once, in shared-prompt rows or before length
        chunks of completions, whichever costs less (trainers.chunking).

        A sharded model scores in one layout on every rank (the prompts, then all completions
        in one chunk): each forward gathers its blocks from all ranks, so ranks whose lengths
        would choose other chunkings must still run the same number of forwards."""
        backward, pad = torch.is_grad_enabled(), self.tokenizer.pad_token_id
        seqs = [s for g in groups for s in g.sequences]
        if sharded(model):
            return grouped_logprobs(model, seqs, pad, _ONE_CHUNK, share=False)
        if backward not in self._overhead:
            self._overhead[backward] = overhead_tokens(model, backward=backward)
        if id(model) not in self._shares:  # checked on the model itself, once
            rows = [tuple(g.sequences) for g in groups]  # a group's sequences share a prompt
            self._shares[id(model)] = scores_shared_rows(model, rows, pad)
        share = self._shares[id(model)]
        return grouped_logprobs(model, seqs, pad, self._overhead[backward], share=share)

    def _check_offline(self, offline: list[Example]) -> bool:
        """Whether offline rows can be scored by the rewards. Pairs that cannot keep their
        ±1 preference; a demonstration must be scored, as it joins a group of rollouts."""
        if not offline:
            return False
        try:
            self.scorer.check_rows([e.row for e in offline[:1000]])
        except ValueError as exc:
            if any(len(e.sequences) == 1 for e in offline):
                raise DataError(
                    f"data.train: offline sft rows must carry what the rewards "
                    f"read, as they join groups of rollouts: {exc}"
                ) from exc
            return False
        return True

    # --- collecting a batch ---------------------------------------------------------------

    def collect(
        self,
        model: torch.nn.Module,
        step: int,
        prompts: list[Example],
        first: int = 0,
        total: int | None = None,
    ) -> Collected[RolloutGroup]:
        """Scored groups for `step`'s prompts (G rollouts each), plus offline rows when
        `data.offline_mix` > 0. Each prompt samples from its own seed, a function of (seed,
        step, its index `first` + i in the step's whole batch of `total`): a resume redraws
        the same batch, and N ranks, each given its share, sample what one process does."""
        started = time.perf_counter()
        self.sample.sync(model)  # vllm: this batch samples with the weights just updated
        share = Share(first, len(prompts), total or len(prompts))
        d = self.spec.data
        n_online, offline, demo_first = offline_places(
            self.data.offline, d.offline_mix, self.spec.train.seed, step, share
        )
        online = prompts[:n_online]
        g = self.spec.rollout.num_generations
        # An SFT demonstration takes the place of one rollout in its prompt's group.
        demos = [e for e in offline if len(e.sequences) == 1]
        pending = self._rollouts(model, online, g, self._seeds(step, first, online, 0))
        pending += self._rollouts(model, demos, g - 1, self._seeds(step, demo_first, demos, 1))
        pairs = [
            (e.row, list(e.sequences), self.offline_scored)
            for e in offline
            if len(e.sequences) == 2
        ]
        groups, metrics = self._score(pending + pairs)
        for group in groups[len(pending) :]:
            group.pair = True
        if self.spec.rollout.dynamic_sampling:
            groups, refilled = self._refill(model, step, first, groups)
            metrics |= refilled
        rollout_s = time.perf_counter() - started
        if self.cfg.needs_baseline_rewards:
            self._add_baselines(model, groups)
        started = time.perf_counter()
        self._add_logprobs(model, groups)
        seqs = [s for grp in groups for s in grp.sequences]
        truncated = [self._truncated(s) for s in seqs]
        metrics |= {
            "perf/rollout_s": rollout_s,
            "perf/logprobs_s": time.perf_counter() - started,  # reference (and old) log-probs
            "completion/length": sum(len(s.completion_ids) for s in seqs) / len(seqs),
            "completion/truncated_frac": sum(truncated) / len(seqs),
        }
        # Every completion counts (a demonstration too), an offline pair once.
        samples = sum(1 if g.pair else len(g.sequences) for g in groups)
        return Collected(groups, samples, metrics)

    def _refill(
        self, model: torch.nn.Module, step: int, first: int, groups: list[RolloutGroup]
    ) -> tuple[list[RolloutGroup], dict[str, float]]:
        """DAPO's dynamic sampling: drop the groups whose rewards are all equal and sample
        more prompts, at most max_resample_rounds times, until the batch has as many groups
        as before; a batch still short is filled with the flat groups dropped."""
        target, g = len(groups), self.spec.rollout.num_generations
        kept = [grp for grp in groups if not is_flat(grp)]
        dropped = [grp for grp in groups if is_flat(grp)]
        flat_share, rounds, extra = len(dropped) / target, 0, 0
        while rounds < self.spec.rollout.max_resample_rounds and any_rank(
            model, len(kept) < target
        ):
            rounds += 1
            need = max(target - len(kept), 0)
            prompts = extra_prompts(
                self.data.train, need, self.spec.train.seed, step, rounds, first
            )
            extra += len(prompts)
            seeds = self._seeds(step, first, prompts, 1 + rounds)
            more, _ = self._score(self._rollouts(model, prompts, g, seeds))
            kept += [grp for grp in more if not is_flat(grp)]
            dropped += [grp for grp in more if is_flat(grp)]
        short = max(0, target - len(kept))
        batch = kept[:target] + dropped[:short]
        renumbered(batch)
        return batch, {
            "sampling/flat_groups": flat_share,  # of the step's first draw
            "sampling/extra_rounds": float(rounds),
            "sampling/extra_prompts": float(extra),
            "sampling/flat_groups_kept": float(short),  # the rounds ran out
        }

    def _seeds(self, step: int, first: int, examples: list[Example], stream: int) -> list[int]:
        """Per-prompt sampling seeds; `stream` keeps rollouts, demonstrations' groups and each
        dynamic-sampling round apart."""
        return prompt_seeds(self.spec.train.seed, step, first, len(examples), stream)

    def _truncated(self, seq: Sequence) -> bool:
        return is_truncated(seq, self.settings.max_new_tokens, self.tokenizer.eos_token_id)

    def _rollouts(
        self, model: torch.nn.Module, examples: list[Example], n: int, seeds: list[int]
    ) -> list[Pending]:
        """(row, sequences, scored) per example: n sampled completions (example i's from
        seeds[i]), then any demo."""
        # Each forward of a sharded model gathers from every rank: a rank with nothing to
        # sample where a peer samples decodes a stand-in beside it, then drops it.
        peers_sample = n > 0 and any_rank(model, bool(examples))  # False unless sharded
        if not examples:
            if peers_sample:
                stand_in = [list(self.data.train[0].sequences[0].prompt_ids)]
                self.sample(model, self.tokenizer, stand_in, n, self.settings, seeds=[0])
            return []
        prompts = [list(e.sequences[0].prompt_ids) for e in examples]
        out = (
            self.sample(model, self.tokenizer, prompts, n, self.settings, seeds=seeds)
            if n
            else None
        )
        pending = []
        for p, example in enumerate(examples):
            seqs = (
                []
                if out is None
                else [
                    Sequence(
                        tuple(out.prompt_ids[i]),
                        tuple(out.completion_ids[i]) or (self.tokenizer.eos_token_id,),
                    )
                    for i in range(p * n, (p + 1) * n)
                ]
            )
            demo = example.sequences[0]
            if demo.completion_ids:
                seqs.append(Sequence(demo.prompt_ids, demo.completion_ids))
            pending.append((example.row, seqs, True))
        return pending

    def _score(self, pending: list[Pending]) -> tuple[list[RolloutGroup], dict[str, float]]:
        """Rewards for all scored completions in one scorer call; group ids in batch order;
        the mean of each reward function. Unscored ones (offline pairs whose rows lack what
        the rewards read) keep their ±1."""
        seqs = [seq for _, group, _ in pending for seq in group]
        texts = self.tokenizer.batch_decode(
            [s.completion_ids for s in seqs], skip_special_tokens=True
        )
        scored = [flag for _, group, flag in pending for _ in group]
        rows = [row for row, group, _ in pending for _ in group]
        result = self.scorer(
            [t for t, f in zip(texts, scored, strict=True) if f],
            [r for r, f in zip(rows, scored, strict=True) if f],
        )
        totals = iter(result.total)
        rewards = [next(totals) if f else s.reward for s, f in zip(seqs, scored, strict=True)]
        r = self.spec.rollout
        if r.overlong_buffer:  # DAPO's soft overlong punishment, on what the rewards scored
            rewards = [
                reward
                + (overlong_penalty(len(s.completion_ids), r.max_new_tokens, r.overlong_buffer,
                                    r.overlong_penalty) if f else 0.0)
                for reward, s, f in zip(rewards, seqs, scored, strict=True)
            ]  # fmt: skip
        groups, i = [], 0
        for p, (row, group, _) in enumerate(pending):
            members = [
                Sequence(s.prompt_ids, s.completion_ids, rewards[i + j], p)
                for j, s in enumerate(group)
            ]
            groups.append(RolloutGroup(members, texts[i : i + len(group)], row))
            i += len(group)
        return groups, dict(result.per_function)

    def _add_baselines(self, model: torch.nn.Module, groups: list[RolloutGroup]) -> None:
        """ReMax: each group's baseline is the reward of its prompt's greedy completion."""
        greedy = RolloutSettings(self.settings.max_new_tokens, greedy=True, stop=self.settings.stop)
        prompts = [list(g.sequences[0].prompt_ids) for g in groups]
        out = self.sample(model, self.tokenizer, prompts, 1, greedy)
        texts = self.tokenizer.batch_decode(out.completion_ids, skip_special_tokens=True)
        rewards = self.scorer(texts, [g.row for g in groups]).total
        for group, reward in zip(groups, rewards, strict=True):
            group.baseline = reward

    @torch.no_grad()
    def _add_logprobs(self, model: torch.nn.Module, groups: list[RolloutGroup]) -> None:
        """Reference log-probs (if the preset uses them) and old ones (if it updates twice)."""
        if self.cfg.needs_reference and self.reference is not None:
            with self.reference.scoring() as ref_model:
                store_rows(groups, unpad_rows(*self._logprobs(ref_model, groups)), "ref_logprobs")
        if self.iterations > 1:
            was = model.training
            model.eval()
            store_rows(groups, unpad_rows(*self._logprobs(model, groups)), "old_logprobs")
            model.train(was)

    # --- one update on a micro-batch of groups -----------------------------------------------

    def units(self, groups: list[RolloutGroup]) -> float:
        return aggregation_units(self.cfg, [g.sequences for g in groups])

    def step_moments(
        self,
        model: torch.nn.Module,
        micro: list[list[RolloutGroup]],
        total: Callable[[Tensor], Tensor],
    ) -> Tensor | None:
        """The step's moments of what the preset normalises over the batch (the reward std
        of adv_scale batch, REINFORCE++'s returns, adv_normalize's advantages), summed over
        micro-batches and ranks; None when it normalises over nothing. The sampling policy's
        log-probs they may read are the stored old ones, else a no-grad forward."""
        stages = moment_stages(self.cfg)
        if not stages:
            return None
        with torch.no_grad():
            inputs = [self._loss_inputs(model, groups, old_only=True) for groups in micro]
        known = None
        for _ in range(stages):
            known = total(sum(gro_moments(self.cfg, moments=known, **kw) for kw in inputs))
        return known

    def step(
        self,
        model: torch.nn.Module,
        groups: list[RolloutGroup],
        moments: Tensor | None = None,
    ) -> StepResult:
        out = gro_loss(self.cfg, **self._loss_inputs(model, groups), moments=moments)
        metrics = {k: torch.tensor(v) for k, v in out.stats.items()}
        return out.loss, metrics, group_samples(groups, out)

    def _loss_inputs(
        self, model: torch.nn.Module, groups: list[RolloutGroup], old_only: bool = False
    ) -> dict[str, Tensor | None]:
        """gro_loss's arguments for a micro-batch of groups. With `old_only` (no grad), the
        sampling policy's log-probs stand in for the current ones: stored when the batch is
        updated more than once, else computed, but only when the preset reads them."""
        stored = bool(groups and groups[0].old_logprobs)
        if old_only and (stored or not moments_read_old(self.cfg)):
            logprobs, mask = None, completion_mask([len(s.completion_ids) for g in groups
                                                     for s in g.sequences])  # fmt: skip
        else:
            logprobs, mask = self._logprobs(model, groups)
        mask = mask.to(self.device)
        if self.spec.rollout.mask_truncated:  # DAPO's overlong filtering
            cut = [self._truncated(s) for g in groups for s in g.sequences]
            mask = mask & ~torch.tensor(cut, device=self.device).unsqueeze(1)
        return loss_inputs(self.cfg, groups, logprobs, mask, old_only=old_only)

    # --- evaluation ------------------------------------------------------------------------

    @torch.no_grad()
    def evaluate(self, model: torch.nn.Module, max_examples: int) -> dict[str, float]:
        """Held-out greedy and sampled reward, pass@k, KL to the reference, diversity."""
        examples = self.data.eval[:max_examples]
        if not examples:
            return {}
        s = self.settings
        return evaluate_policy(
            model,
            self.tokenizer,
            examples,
            [e.row for e in examples],
            self.scorer,
            num_generations=self.spec.rollout.num_generations,
            max_new_tokens=s.max_new_tokens,
            temperature=s.temperature,
            top_p=s.top_p,
            stop=s.stop,
            reference=self.reference,
            seed=self.spec.train.seed,
        )


def _method_args(spec: JobSpec) -> dict[str, Any]:
    """The spec's method_args; a preset's max_completion_length (TRL's name for the length
    limit, Dr. GRPO's normaliser) defaults to the rollouts' max_new_tokens, as in TRL."""
    args = dict(spec.method_args)
    if "max_completion_length" in {a.name for a in get_method(spec.method).args}:
        args.setdefault("max_completion_length", spec.rollout.max_new_tokens)
    return args
