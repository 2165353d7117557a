"""From dataset records to token sequences, and from sequences to padded model batches.

A `Sequence` is one prompt + completion in token ids with its reward and group. An
`Example` is what the sampler draws: one SFT pair, one preference pair (two sequences of
one group, so chosen and rejected go through one forward together), or one unpaired
completion. Batches put one sequence in a row, LEFT padded so every completion ends at the
last position, or one group in a row, its prompt once and its completions after it
(`gro_core.trainers.prompt_sharing`). Either way the model computes logits only at the
positions that predict completion tokens (`logits_to_keep`), never for prompt tokens,
which for real vocabularies is a large share of the forward's FLOPs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor
from transformers import PreTrainedTokenizerBase

from gro_core.data import render_completion, render_prompt
from gro_core.models.head import token_logprobs


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
    """Token ids of a prompt and its completion (ending as `ended` says), truncated to
    `max_length`.

    A string prompt is encoded with the tokenizer's special tokens (bos); a chat prompt is
    rendered by its template, which writes them itself. Over-long examples lose prompt
    tokens from the left first (the end of a prompt matters most), then completion tokens
    from the right, and always keep at least one of each.
    """
    prompt_ids = encode_prompt(tokenizer, prompt)
    text = render_completion(tokenizer, prompt, completion)
    completion_ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return _truncate(prompt_ids, ended(tokenizer, completion, completion_ids), max_length)


def ended(
    tokenizer: PreTrainedTokenizerBase,
    completion: Any,
    ids: list[int],
    specials: set[int] | None = None,
) -> list[int]:
    """`ids` with the tokenizer's eos appended where the model would not otherwise learn to
    stop: a string completion not ending in eos. A chat completion ends as the template ends
    a turn (`<|im_end|>\\n`, `<end_of_turn>\\n`), the tokens `generate` stops on, so it is
    kept exactly, unless the template wrote no special token at all."""
    eos = tokenizer.eos_token_id
    if eos is None or (ids and ids[-1] == eos):
        return ids
    specials = _special_ids(tokenizer) if specials is None else specials
    if not isinstance(completion, str) and set(ids) & specials:
        return ids
    return [*ids, eos]


def _special_ids(tokenizer: PreTrainedTokenizerBase) -> set[int]:
    """Ids of the tokenizer's special tokens, the added ones (`<|im_end|>`) included."""
    added = getattr(tokenizer, "added_tokens_decoder", {}) or {}
    return {i for i, token in added.items() if getattr(token, "special", False)} | set(
        tokenizer.all_special_ids
    )


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
    """One Example per record; preference rows give a pair, the others one sequence.

    The same ids as `encode_pair` on each (prompt, completion), but every text is rendered
    first and tokenized in one call per field: for short rows the tokenizer's per-call
    overhead, not its work, is what costs, and a pair's prompt is encoded once.
    """
    fields = {"preference": ("chosen", "rejected"), "unpaired": ("completion",)}
    fields["sft"] = fields["unpaired"]
    if kind not in fields:
        raise ValueError(f"cannot train offline on {kind} data: prompts need rollouts")
    if not records:
        return []
    prompts = _encode_prompts(tokenizer, [r["prompt"] for r in records])
    completions = [_encode_completions(tokenizer, records, name) for name in fields[kind]]
    examples = []
    for index, record in enumerate(records):
        if kind == "preference":
            rewards: tuple[float, ...] = (1.0, -1.0)
        else:
            rewards = (1.0 if kind == "sft" or record["label"] else -1.0,)
        sequences = tuple(
            Sequence(*_truncate(prompts[index], ids[index], max_length), reward=r, group=index)
            for ids, r in zip(completions, rewards, strict=True)
        )
        examples.append(Example(sequences, record, index))
    return examples


def _encode_prompts(tokenizer: PreTrainedTokenizerBase, prompts: list[Any]) -> list[list[int]]:
    """`encode_prompt` of each prompt, in one tokenizer call per kind of prompt."""
    out: list[list[int]] = [[] for _ in prompts]
    for is_text in (True, False):
        at = [i for i, p in enumerate(prompts) if isinstance(p, str) == is_text]
        if at:
            texts = [render_prompt(tokenizer, prompts[i]) for i in at]
            ids = tokenizer(texts, add_special_tokens=is_text)["input_ids"]
            for i, row in zip(at, ids, strict=True):
                out[i] = row
    return out


def _encode_completions(
    tokenizer: PreTrainedTokenizerBase, records: list[dict], name: str
) -> list[list[int]]:
    """The completion ids `encode_pair` gives field `name` of each record, eos-terminated."""
    texts = [render_completion(tokenizer, r["prompt"], r[name]) for r in records]
    rows = tokenizer(texts, add_special_tokens=False)["input_ids"]
    specials = _special_ids(tokenizer)
    return [ended(tokenizer, r[name], row, specials) for r, row in zip(records, rows, strict=True)]


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
    """Model rows, and where the completions of N sequences sit in them.

    Two layouts: one row per sequence (`collate`), or one row per group of sequences that
    share a prompt (`prompt_sharing.collate_shared`). Either way the outputs are per
    sequence, so the rest of the code does not see which layout scored them.

    input_ids, position_ids: (R, L); attention_mask: (R, L), or (R, 1, L, L) bool for
    shared rows; targets: (R, C) the token each scored logit predicts; mask: (N, K) which
    of the N sequences' last K positions are completion tokens (right-aligned);
    rewards, group_ids: (N,). keep: None for one row per sequence (the last K + 1
    positions are scored, C = K), else (C,) the columns scored in every row; place: None,
    or (N, K) where each completion token's log-prob lies in the flattened (R·C) scores,
    R·C for padding.
    """

    input_ids: Tensor
    attention_mask: Tensor
    position_ids: Tensor
    targets: Tensor
    mask: Tensor
    rewards: Tensor
    group_ids: Tensor
    keep: Tensor | None = None
    place: Tensor | None = None

    def to(self, device: torch.device) -> TokenBatch:
        moved = {
            k: None if t is None else t.to(device, non_blocking=True) for k, t in vars(self).items()
        }
        return TokenBatch(**moved)


def collate(sequences: list[Sequence], pad_id: int) -> TokenBatch:
    """Left-pad `sequences` into one TokenBatch, one row each."""
    # Rows are built as Python lists and converted once per field: a few small tensor
    # writes per row would cost more than the step's loss.
    width = max(s.length for s in sequences)
    k = max(len(s.completion_ids) for s in sequences)
    input_ids, attention, positions, mask = [], [], [], []
    for s in sequences:
        pad = width - s.length
        input_ids.append([pad_id] * pad + [*s.prompt_ids, *s.completion_ids])
        attention.append([0] * pad + [1] * s.length)
        # Positions count real tokens only, so left padding changes nothing the model computes.
        positions.append([0] * pad + list(range(s.length)))
        mask.append([False] * (k - len(s.completion_ids)) + [True] * len(s.completion_ids))
    ids = torch.tensor(input_ids)
    return TokenBatch(
        input_ids=ids,
        attention_mask=torch.tensor(attention),
        position_ids=torch.tensor(positions),
        targets=ids[:, width - k :],
        mask=torch.tensor(mask),
        rewards=torch.tensor([s.reward for s in sequences]),
        group_ids=torch.tensor([s.group for s in sequences]),
    )


def completion_logprobs(model: torch.nn.Module, batch: TokenBatch) -> Tensor:
    """(N, K) log π(y_t | x, y_<t) of each completion token; zero where `batch.mask` is off.

    Only the positions that predict completion tokens are scored, and their (R, C, V) logits
    are never held: `models.head.token_logprobs` projects them a chunk at a time.
    """
    keep: int | Tensor = batch.targets.shape[1] + 1 if batch.keep is None else batch.keep
    # One row per sequence: the last K + 1 positions, of which position t predicts t + 1.
    logprobs = token_logprobs(
        model,
        batch.targets,
        keep,
        drop_last=batch.keep is None,
        input_ids=batch.input_ids,
        attention_mask=_attention_mask(model, batch.attention_mask),
        position_ids=batch.position_ids,
        use_cache=False,
    )  # (R, C)
    if batch.place is None:
        return logprobs * batch.mask
    # Each sequence's tokens, right-aligned; padding reads the appended zero.
    flat = torch.cat([logprobs.flatten(), logprobs.new_zeros(1)])
    return flat[batch.place]


def _attention_mask(model: torch.nn.Module, mask: Tensor) -> Tensor:
    """A 4D boolean mask as the model's attention takes it: sdpa reads booleans, eager
    adds the mask to its scores."""
    if mask.dim() != 4 or attention_implementation(model) != "eager":
        return mask
    dtype = next(model.parameters()).dtype
    return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(
        ~mask, torch.finfo(dtype).min
    )


def attention_implementation(model: torch.nn.Module) -> str | None:
    """The attention kernel transformers picked for `model` (sdpa, eager, flash_...)."""
    config = getattr(model, "config", None)
    return getattr(config, "_attn_implementation", None)


def unpad_rows(values: Tensor, mask: Tensor) -> list[Tensor]:
    """(B, K) right-aligned per-token values -> B CPU tensors of each row's masked values."""
    values, mask = values.float().cpu(), mask.cpu()
    return [values[i][mask[i]].clone() for i in range(values.shape[0])]


def completion_mask(lengths: list[int]) -> Tensor:
    """(B, max length) bool: each row's last `lengths[i]` columns, the layout of right_align
    and of the trainers' log-probs; for what reads only which tokens there are."""
    width = max(lengths, default=0)
    return torch.arange(width)[None, :] >= width - torch.tensor(lengths, dtype=torch.long)[:, None]


def right_align(rows: list[Tensor], width: int) -> Tensor:
    """The inverse of unpad_rows: B rows of per-token values -> (B, width), zero-padded left."""
    out = torch.zeros((len(rows), width))
    for i, row in enumerate(rows):
        out[i, width - len(row) :] = row
    return out
