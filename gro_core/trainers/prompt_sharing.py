"""Shared-prompt rows: the sequences of one group scored in one row, their prompt once.

A preference pair (or any group of completions of one prompt) is laid out as
[prompt | completion 1 | completion 2 ...] with a 4D attention mask under which each
completion sees its prompt and itself but not its siblings. Every completion token then
sees exactly what it sees in a row of its own, while the prompt, and its share of the
FLOPs, is computed once per group instead of once per sequence.

Attention that limits how far back a token looks (a sliding window, chunked attention)
counts distance in columns, and in a shared row a completion's columns sit after its
siblings', so past the window it would see the wrong tokens. `shared_layout_refusal`
reads that from the model's config, whatever the lengths of the first batches;
`shares_prompts` then also checks on the model itself that it honours the mask.
"""

from __future__ import annotations

import torch

from gro_core.data.encode import (
    Example,
    Sequence,
    TokenBatch,
    attention_implementation,
    collate,
    completion_logprobs,
)


def shareable(groups: list[tuple[Sequence, ...]]) -> bool:
    """Whether `collate_shared` saves anything and can lay these groups out: some group has
    several sequences, each group's sequences have one prompt (truncation may cut the
    prompts of one pair differently) and every completion at least one token."""
    return any(len(g) > 1 for g in groups) and all(
        all(s.prompt_ids == g[0].prompt_ids and s.completion_ids for s in g) for g in groups
    )


def collate_shared(groups: list[tuple[Sequence, ...]], pad_id: int) -> TokenBatch:
    """One row per group of sequences with one prompt: [prompt | completion 1 | ... ].

    The prompt is left-padded to the longest prompt P, then completion slot s (as wide as
    the longest s-th completion, tokens first, padding after) follows. A 4D mask lets a
    completion attend to its prompt and to itself but not to its siblings, and its
    positions continue from the prompt's, so each completion token sees exactly what it
    sees in its own row, while the prompt, and its share of the FLOPs, is computed once
    per group instead of once per sequence (a third of a DPO step on short answers).
    Every row scores the same columns: the last prompt column (which predicts each
    slot's first token), then each slot's columns but its last. `shareable` says when
    this layout applies.
    """
    prompt = max(len(g[0].prompt_ids) for g in groups)
    widths = [
        max(len(g[s].completion_ids) for g in groups if len(g) > s)
        for s in range(max(len(g) for g in groups))
    ]
    starts = [prompt + sum(widths[:s]) for s in range(len(widths))]  # slot columns
    scored = sum(widths)  # C: scored columns per row; slot s's are offsets[s] onwards
    offsets = [start - prompt for start in starts]
    sequences = [s for g in groups for s in g]
    k = max(len(s.completion_ids) for s in sequences)
    nowhere = len(groups) * scored  # the appended zero: where padding reads its log-prob
    input_ids, real, positions, targets, mask, place = [], [], [], [], [], []
    for r, group in enumerate(groups):
        p, lead = len(group[0].prompt_ids), prompt - len(group[0].prompt_ids)
        ids, seen = [pad_id] * lead + list(group[0].prompt_ids), [0] * lead + [1] * p
        pos, row_targets = [0] * lead + list(range(p)), []
        for s, width in enumerate(widths):
            tokens = list(group[s].completion_ids) if s < len(group) else []
            c = len(tokens)
            ids += tokens + [pad_id] * (width - c)
            seen += [1] * c + [0] * (width - c)
            pos += list(range(p, p + width))  # padding too: any position in range will do
            row_targets += tokens + [pad_id] * (width - c)
            if s < len(group):
                first = r * scored + offsets[s]
                mask.append([False] * (k - c) + [True] * c)
                place.append([nowhere] * (k - c) + list(range(first, first + c)))
        input_ids.append(ids)
        real.append(seen)
        positions.append(pos)
        targets.append(row_targets)
    attention = _shared_attention(real, starts, widths, prompt + scored)
    keep = [
        column
        for start, width in zip(starts, widths, strict=True)
        for column in (prompt - 1, *range(start, start + width - 1))
    ]
    return TokenBatch(
        input_ids=torch.tensor(input_ids),
        attention_mask=attention[:, None],
        position_ids=torch.tensor(positions),
        targets=torch.tensor(targets),
        mask=torch.tensor(mask),
        rewards=torch.tensor([s.reward for s in sequences]),
        group_ids=torch.tensor([s.group for s in sequences]),
        keep=torch.tensor(keep),
        place=torch.tensor(place),
    )


def _shared_attention(
    real: list[list[int]], starts: list[int], widths: list[int], length: int
) -> torch.Tensor:
    """(R, L, L) bool: which key column each query column of a shared row attends to.

    real: (R, L) 1 where a row holds a token; slot s spans columns starts[s] onwards,
    widths[s] wide, after the prompt's columns.
    """
    segment = torch.zeros(length, dtype=torch.long)  # 0 prompt, s + 1 slot s
    for s, (start, width) in enumerate(zip(starts, widths, strict=True)):
        segment[start : start + width] = s + 1
    causal = torch.ones((length, length), dtype=torch.bool).tril()
    # Key column j is visible from query column i: causal, from the prompt or i's own slot.
    visible = causal & ((segment[None, :] == 0) | (segment[None, :] == segment[:, None]))
    attention = visible & torch.tensor(real, dtype=torch.bool)[:, None, :]  # (R, L, L)
    # Padding queries see themselves, so no softmax row is empty (NaN would reach the
    # weights' gradients through 0 · NaN).
    return attention | torch.eye(length, dtype=torch.bool)


# Online scoring never builds shared rows longer than this (chunking.SHARED_MAX_ROW).
SHARED_ROW_LIMIT = 2048


def shared_layout_refusal(
    model: torch.nn.Module, longest_row: int = SHARED_ROW_LIMIT
) -> str | None:
    """Why `model`'s config rules out shared rows of up to `longest_row` tokens, or None."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    config = getattr(base, "config", None)
    if config is None:
        return "the model has no config to check"
    config = getattr(config, "get_text_config", lambda: config)()
    if attention_implementation(model) not in ("sdpa", "eager"):
        return f"attention {attention_implementation(model)!r} takes no 4D mask"
    layers = set(getattr(config, "layer_types", None) or ())
    if layers - {"full_attention", "sliding_attention"}:
        other = ", ".join(sorted(layers - {"full_attention", "sliding_attention"}))
        return f"its layers use {other}, a mask the shared layout cannot honour"
    window = getattr(config, "sliding_window", None)
    if layers:
        sliding = "sliding_attention" in layers
    else:
        sliding = window is not None and getattr(config, "use_sliding_window", True) is not False
    if sliding and (window is None or window < longest_row):
        return f"its sliding window ({window}) is shorter than a shared row ({longest_row})"
    if getattr(config, "attention_chunk_size", None):
        return "it uses chunked attention"
    return None


def shares_prompts(model: torch.nn.Module, examples: list[Example], pad_id: int) -> bool:
    """Whether `model` scores `collate_shared` batches of these examples' groups right
    (`scores_shared_rows` on a few of them)."""
    groups = [e.sequences for e in examples]
    longest = max(
        (len(g[0].prompt_ids) + sum(len(s.completion_ids) for s in g) for g in groups), default=0
    )
    if shared_layout_refusal(model, longest) is not None:
        return False
    return scores_shared_rows(model, groups, pad_id)


@torch.no_grad()
def scores_shared_rows(
    model: torch.nn.Module, groups: list[tuple[Sequence, ...]], pad_id: int
) -> bool:
    """Whether `model` scores `collate_shared` batches as it scores one row per sequence.

    They need an attention that takes a custom 4D mask (transformers' sdpa and eager), no
    attention window (`shared_layout_refusal`, from the config) and a model that places
    tokens by `position_ids`, which a few of `groups` scored both ways (in eval mode, so
    dropout cannot differ) check; a model that fails or disagrees gets one row per sequence.
    """
    if shared_layout_refusal(model) is not None:
        return False
    groups = [g for g in groups if shareable([g])][:4]
    if not groups:
        return False
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        shared = completion_logprobs(model, collate_shared(groups, pad_id).to(device))
        rows = collate([s for g in groups for s in g], pad_id).to(device)
        plain = completion_logprobs(model, rows)
    except (RuntimeError, TypeError, ValueError, IndexError):
        return False  # e.g. a model that builds its own mask from a 2D one
    finally:
        model.train(was_training)
    dtype = next(model.parameters()).dtype
    tolerance = 1e-3 if dtype == torch.float32 else 5e-2
    return bool(((shared - plain).abs() * rows.mask).max() <= tolerance)
