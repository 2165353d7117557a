"""From dataset records to token sequences, and from sequences to padded model batches.

A `Sequence` is one prompt + completion in token ids with its reward and group. An
`Example` is what the sampler draws: one SFT pair, one preference pair (two sequences of
one group, so chosen and rejected go through one forward together), or one unpaired
completion. Batches are LEFT padded so every completion ends at the last position: the
model then computes logits for the last K positions only (`logits_to_keep`), never for
prompt tokens, which for real vocabularies is a large share of the forward's FLOPs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor
from transformers import PreTrainedTokenizerBase

from gro_core.data import render_completion, render_prompt


@dataclass(frozen=True)
class Sequence:
    """One prompt + completion in token ids."""

    prompt_ids: tuple[int, ...]
    completion_ids: tuple[int, ...]
    reward: float = 0.0  # +1 chosen / desirable, −1 rejected / undesirable
    group: int = 0  # completions of one pair or prompt share it

    @property
    def length(self) -> int:
        return len(self.prompt_ids) + len(self.completion_ids)


@dataclass(frozen=True)
class Example:
    """What the sampler draws: its sequences go into the same batch."""

    sequences: tuple[Sequence, ...]
    row: dict[str, Any] = field(default_factory=dict, compare=False)
    index: int = 0  # position in its split: the key of cached reference log-probs

    @property
    def length(self) -> int:
        return max(s.length for s in self.sequences)


def encode_pair(
    tokenizer: PreTrainedTokenizerBase, prompt: Any, completion: Any, max_length: int
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Token ids of a prompt and its completion (ending in eos), truncated to `max_length`.

    A string prompt is encoded with the tokenizer's special tokens (bos); a chat prompt is
    rendered by its template, which writes them itself. Over-long examples lose prompt
    tokens from the left first (the end of a prompt matters most), then completion tokens
    from the right, and always keep at least one of each.
    """
    prompt_ids = encode_prompt(tokenizer, prompt)
    text = render_completion(tokenizer, prompt, completion)
    completion_ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    eos = tokenizer.eos_token_id
    if eos is not None and (not completion_ids or completion_ids[-1] != eos):
        completion_ids = [*completion_ids, eos]
    return _truncate(prompt_ids, completion_ids, max_length)


def encode_prompt(tokenizer: PreTrainedTokenizerBase, prompt: Any) -> list[int]:
    """Token ids of a prompt as the model sees it before its completion."""
    text = render_prompt(tokenizer, prompt)
    return tokenizer(text, add_special_tokens=isinstance(prompt, str))["input_ids"]


def _truncate(
    prompt_ids: list[int], completion_ids: list[int], max_length: int
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    excess = len(prompt_ids) + len(completion_ids) - max_length
    if excess > 0:
        cut = min(excess, len(prompt_ids) - 1)
        prompt_ids = prompt_ids[cut:]
        excess -= cut
    if excess > 0:
        completion_ids = completion_ids[: max(1, len(completion_ids) - excess)]
    return tuple(prompt_ids), tuple(completion_ids)


def encode_records(
    tokenizer: PreTrainedTokenizerBase, kind: str, records: list[dict], max_length: int
) -> list[Example]:
    """One Example per record; preference rows give a pair, the others one sequence."""
    examples = []
    for index, record in enumerate(records):
        prompt = record["prompt"]

        def seq(completion: Any, reward: float, index: int = index, prompt: Any = prompt):
            ids = encode_pair(tokenizer, prompt, completion, max_length)
            return Sequence(*ids, reward=reward, group=index)

        if kind == "preference":
            pair = (seq(record["chosen"], 1.0), seq(record["rejected"], -1.0))
            examples.append(Example(pair, record, index))
        elif kind == "unpaired":
            reward = 1.0 if record["label"] else -1.0
            examples.append(Example((seq(record["completion"], reward),), record, index))
        elif kind == "sft":
            examples.append(Example((seq(record["completion"], 1.0),), record, index))
        else:
            raise ValueError(f"cannot train offline on {kind} data: prompts need rollouts")
    return examples


def encode_prompts(
    tokenizer: PreTrainedTokenizerBase, records: list[dict], max_length: int
) -> list[Example]:
    """Prompt-only Examples for online methods: the completion comes from rollouts."""
    examples = []
    for index, record in enumerate(records):
        ids = encode_prompt(tokenizer, record["prompt"])[-max_length:]
        examples.append(Example((Sequence(tuple(ids), ()),), record, index))
    return examples


def mismatched(examples: list[Example]) -> list[Example]:
    """Example i's prompt with example i+1's (first) completion, cyclically: the unrelated
    pairs KTO's reference point z0 is estimated on (as TRL does). Index i is kept."""
    n = len(examples)
    return [
        Example(
            (
                Sequence(
                    e.sequences[0].prompt_ids, examples[(i + 1) % n].sequences[0].completion_ids
                ),
            ),
            {},
            e.index,
        )
        for i, e in enumerate(examples)
    ]


@dataclass
class TokenBatch:
    """Left-padded sequences, and where their completions sit in the last K positions.

    input_ids, attention_mask, position_ids: (B, L); targets, mask: (B, K) the tokens the
    last K logits predict and which of them are completion tokens; rewards, group_ids: (B,).
    """

    input_ids: Tensor
    attention_mask: Tensor
    position_ids: Tensor
    targets: Tensor
    mask: Tensor
    rewards: Tensor
    group_ids: Tensor

    def to(self, device: torch.device) -> TokenBatch:
        return TokenBatch(*(t.to(device, non_blocking=True) for t in vars(self).values()))


def collate(sequences: list[Sequence], pad_id: int) -> TokenBatch:
    """Left-pad `sequences` into one TokenBatch."""
    width = max(s.length for s in sequences)
    k = max(len(s.completion_ids) for s in sequences)
    input_ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(sequences), width), dtype=torch.long)
    mask = torch.zeros((len(sequences), k), dtype=torch.bool)
    for i, s in enumerate(sequences):
        ids = s.prompt_ids + s.completion_ids
        input_ids[i, width - len(ids) :] = torch.tensor(ids)
        attention[i, width - len(ids) :] = 1
        mask[i, k - len(s.completion_ids) :] = True
    # Positions count real tokens only, so left padding changes nothing the model computes.
    positions = (attention.cumsum(dim=1) - 1).clamp(min=0)
    return TokenBatch(
        input_ids=input_ids,
        attention_mask=attention,
        position_ids=positions,
        targets=input_ids[:, width - k :],
        mask=mask,
        rewards=torch.tensor([s.reward for s in sequences]),
        group_ids=torch.tensor([s.group for s in sequences]),
    )


def completion_logprobs(model: torch.nn.Module, batch: TokenBatch) -> Tensor:
    """(B, K) log π(y_t | x, y_<t) of each completion token; zero where `batch.mask` is off.

    Logits are computed only for the K positions that predict completion tokens, and the
    log-softmax is taken as gather − logsumexp, so no (B, K, V) log-prob tensor is kept.
    """
    k = batch.targets.shape[1]
    logits = model(
        input_ids=batch.input_ids,
        attention_mask=batch.attention_mask,
        position_ids=batch.position_ids,
        logits_to_keep=k + 1,
        use_cache=False,
    ).logits[:, :-1]  # (B, K, V): position t predicts token t + 1
    logits = logits.float()
    picked = logits.gather(-1, batch.targets.unsqueeze(-1)).squeeze(-1)  # (B, K)
    logprobs = picked - torch.logsumexp(logits, dim=-1)
    return logprobs * batch.mask


def unpad_rows(values: Tensor, mask: Tensor) -> list[Tensor]:
    """(B, K) right-aligned per-token values -> B CPU tensors of each row's masked values."""
    values, mask = values.float().cpu(), mask.cpu()
    return [values[i][mask[i]].clone() for i in range(values.shape[0])]


def right_align(rows: list[Tensor], width: int) -> Tensor:
    """The inverse of unpad_rows: B rows of per-token values -> (B, width), zero-padded left."""
    out = torch.zeros((len(rows), width))
    for i, row in enumerate(rows):
        out[i, width - len(row) :] = row
    return out


def scored_samples(
    entries: list[tuple[Any, Any, float]], out: Any, limit: int
) -> list[dict[str, Any]]:
    """samples.jsonl records (JOBSPEC.md) for the first `limit` (prompt, completion, reward)
    entries, with the GRO quantities gro_loss gave each: `out` is its GROOutput."""
    return [
        {
            "prompt": prompt,
            "completion": completion,
            "reward": reward,
            "advantage": float(out.advantages[i]),
            "anchor_distance": float(out.anchor_distances[i]),
            "weight": float(out.weights[i]),
        }
        for i, (prompt, completion, reward) in enumerate(entries[:limit])
    ]
