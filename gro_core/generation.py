"""Batched generation for evaluation: prompts in token ids, completions out.

Prompts are left padded so every row's next token sits at the same position and one
`generate` call with a KV cache serves the whole batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import PreTrainedTokenizerBase


@dataclass(frozen=True)
class SamplingSettings:
    """greedy=True ignores temperature, top_p and top_k."""

    max_new_tokens: int = 32
    greedy: bool = True
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0


def left_pad(prompts: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(input_ids, attention_mask), both (B, L), rows right-aligned."""
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(prompts), width), dtype=torch.long)
    for i, prompt in enumerate(prompts):
        ids[i, width - len(prompt) :] = torch.tensor(prompt)
        attention[i, width - len(prompt) :] = 1
    return ids, attention


@torch.no_grad()
def generate_completions(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    prompts: list[list[int]],
    settings: SamplingSettings,
    batch_size: int = 64,
) -> list[list[int]]:
    """Completion token ids for each prompt, cut after the first eos (which is kept)."""
    device = next(model.parameters()).device
    eos = tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    was_training = model.training
    model.eval()
    out: list[list[int]] = []
    try:
        for start in range(0, len(prompts), batch_size):
            ids, attention = left_pad(prompts[start : start + batch_size], pad)
            generated = model.generate(
                input_ids=ids.to(device),
                attention_mask=attention.to(device),
                max_new_tokens=settings.max_new_tokens,
                do_sample=not settings.greedy,
                temperature=settings.temperature if not settings.greedy else None,
                top_p=settings.top_p if not settings.greedy else None,
                top_k=settings.top_k if not settings.greedy else None,
                pad_token_id=pad,
                eos_token_id=eos,
                use_cache=True,
            )
            out.extend(_cut_at_eos(row.tolist(), eos) for row in generated[:, ids.shape[1] :])
    finally:
        model.train(was_training)
    return out


def _cut_at_eos(tokens: list[int], eos: int | None) -> list[int]:
    if eos is not None and eos in tokens:
        return tokens[: tokens.index(eos) + 1]
    return tokens
