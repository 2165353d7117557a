"""Log-probs of rollouts: each prompt computed once, completions in length-sorted chunks.

A batch of rollouts is G completions of each of a few prompts, of mixed lengths. One padded
batch of prompt + completion rows (what `encode.collate` builds) repeats two kinds of work:
- each prompt G times: its tokens see only the prompt (attention is causal), so their hidden
  states, keys and values are the same in all G rows;
- padding: with 64 completions of mostly 4-5 tokens, one that runs to 32 pads every row to
  prompt + 32, and a CPU computes padding like real tokens.
Here the distinct prompts go through the model once (their keys and values kept, with grad),
and the completions go through in a few chunks of similar length, each attending to its
prompts' keys and values. That is the same math on the same tokens (tested against one padded
batch, log-probs and gradients); autograd joins the pieces, so one loss and one backward still
cover the batch, and a prompt's gradient sums over its G completions as before.

How many chunks is a trade: each forward has a fixed cost (Python and per-op overhead),
counted as `overhead` tokens' worth of compute.

When the model takes a custom 4D attention mask, there is a third layout, chosen when the
same cost model says it is cheaper: one row per prompt, [prompt | its G completions]
(`prompt_sharing.collate_shared`), completions longest first so the rows' slots line up.
One forward for the whole batch instead of a prompt forward and a few chunks: for a small
model on a CPU, where per-op overhead is most of the time, that halves the scoring time.
"""

from __future__ import annotations

import torch
from torch import Tensor
from transformers import DynamicCache

from gro_core.data.encode import Sequence, completion_logprobs
from gro_core.models.head import head_logprobs, head_of, plain_logprobs, token_logprobs
from gro_core.rollout.sampling import cache_kwarg, left_pad
from gro_core.trainers.prompt_sharing import SHARED_ROW_LIMIT, collate_shared

# What one more forward costs beyond its tokens, in tokens' worth of compute (measured on a
# CPU, tiny- and small-llama). With a backward it is a pass over every parameter's gradient,
# which scales with the model like a token does: ~150 tokens at any size. Without one it is
# mostly per-call overhead (~2 ms): 2.5e7 / N tokens, N parameters.
_BACKWARD_OVERHEAD_TOKENS = 150
_FORWARD_OVERHEAD_PARAMS = 2.5e7
# Shared rows longer than this are never used: their (L, L) mask grows with a row's square.
SHARED_MAX_ROW = SHARED_ROW_LIMIT


def overhead_tokens(model: torch.nn.Module, *, backward: bool) -> int:
    """The fixed cost of one more forward (and backward) of `model`, in tokens (at least 8)."""
    if backward:
        return _BACKWARD_OVERHEAD_TOKENS
    params = sum(p.numel() for p in model.parameters())
    return max(8, round(_FORWARD_OVERHEAD_PARAMS / max(params, 1)))


def length_chunks(lengths: list[int], overhead: int) -> list[list[int]]:
    """Indices of `lengths`, sorted by length and cut into chunks that minimise the padded
    tokens computed (rows × longest, per chunk) plus `overhead` per chunk. O(n²) exact DP."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    n = len(order)
    best = [0.0] + [float("inf")] * n  # best[j]: cost of the first j sorted sequences
    cut = [0] * (n + 1)
    for j in range(1, n + 1):
        longest = lengths[order[j - 1]]
        for i in range(j):
            cost = best[i] + (j - i) * longest + overhead
            if cost < best[j]:
                best[j], cut[j] = cost, i
    chunks, j = [], n
    while j > 0:
        chunks.append(order[cut[j] : j])
        j = cut[j]
    return chunks[::-1]


class _Prefixes:
    """The distinct prompts after one forward: what every completion of theirs attends to."""

    def __init__(self, model: torch.nn.Module, prompts: list[tuple[int, ...]], pad_id: int):
        device = next(model.parameters()).device
        ids, attention = (t.to(device) for t in left_pad([list(p) for p in prompts], pad_id))
        cache = DynamicCache()
        forward = {
            "input_ids": ids,
            "attention_mask": attention,
            "position_ids": (attention.cumsum(dim=1) - 1).clamp(min=0),
            "use_cache": True,
            cache_kwarg(model): cache,
        }
        self.head = head_of(model)
        if self.head is None:  # its own forward, logits at the last position only
            self.first: Tensor = model(**forward, logits_to_keep=1).logits[:, -1]  # (U, V)
        else:  # the last hidden state: the logits of token 0 are projected per completion
            self.first = self.head.decoder(**forward).last_hidden_state[:, -1]  # (U, H)
        self.keys = [layer.keys for layer in cache.layers]  # per layer (U, H_kv, W, hd)
        self.values = [layer.values for layer in cache.layers]
        self.mask = attention  # (U, W)
        self.lengths = attention.sum(dim=1)  # (U,)

    def first_logprobs(self, rows: Tensor, tokens: Tensor) -> Tensor:
        """(b, 1) log-probs of each completion's first token, `rows[i]` its prompt."""
        first = self.first.index_select(0, rows)
        if self.head is None:
            return plain_logprobs(first, tokens)[:, None]
        return head_logprobs(self.head, first, tokens)[:, None]

    def cache(self, rows: Tensor) -> DynamicCache:
        """A cache holding prompt `rows[i]`'s keys and values for completion row i."""
        cache = DynamicCache()
        for layer, (k, v) in enumerate(zip(self.keys, self.values, strict=True)):
            cache.update(k.index_select(0, rows), v.index_select(0, rows), layer)
        return cache


def _right_pad(rows: list[tuple[int, ...]], width: int, pad_id: int) -> tuple[Tensor, Tensor]:
    """(ids, mask), both (b, width), rows left-aligned; one tensor from nested lists."""
    ids = torch.tensor([list(r) + [pad_id] * (width - len(r)) for r in rows], dtype=torch.long)
    lengths = torch.tensor([len(r) for r in rows])
    return ids, torch.arange(width)[None] < lengths[:, None]


def _chunk_logprobs(
    model: torch.nn.Module,
    prefixes: _Prefixes,
    prompt_of: Tensor,
    completions: list[tuple[int, ...]],
    pad_id: int,
) -> Tensor:
    """(b, k) log-probs of each completion's tokens, left-aligned (token j at column j)."""
    device = prompt_of.device
    k = max(len(c) for c in completions)
    first_tokens = torch.tensor([c[0] for c in completions], device=device)
    first = prefixes.first_logprobs(prompt_of, first_tokens)  # (b, 1)
    if k == 1:
        return first
    # Tokens 0..k-2 go in; each position predicts the next token.
    inputs, real = (t.to(device) for t in _right_pad([c[:-1] for c in completions], k - 1, pad_id))
    targets, _ = _right_pad([c[1:] for c in completions], k - 1, pad_id)
    prompt_mask = prefixes.mask.index_select(0, prompt_of)
    attention = torch.cat([prompt_mask, real.long()], dim=1)  # (b, W + k - 1)
    positions = prefixes.lengths[prompt_of, None] + torch.arange(k - 1, device=device)
    picked = token_logprobs(
        model,
        targets.to(device),
        k - 1,
        input_ids=inputs,
        attention_mask=attention,
        position_ids=positions,
        use_cache=True,
        **{cache_kwarg(model): prefixes.cache(prompt_of)},
    )  # (b, k - 1)
    return torch.cat([first, picked], dim=1)


def _right_align(values: Tensor, lengths: Tensor, width: int) -> tuple[Tensor, Tensor]:
    """Left-aligned (b, k) rows of `lengths` valid values -> (b, width) right-aligned, and mask."""
    columns = torch.arange(width, device=values.device)[None]  # (1, width)
    source = columns - (width - lengths[:, None])  # column t holds token t - (width - k_i)
    valid = source >= 0
    picked = values.gather(1, source.clamp(min=0, max=values.shape[1] - 1))
    return torch.where(valid, picked, torch.zeros_like(picked)), valid


def grouped_logprobs(
    model: torch.nn.Module,
    sequences: list[Sequence],
    pad_id: int,
    overhead: int,
    *,
    share: bool = False,
) -> tuple[Tensor, Tensor]:
    """(B, K) log-probs of each completion token and the (B, K) completion mask, laid out as
    `collate(sequences)` lays them out (right-aligned, zero elsewhere); with grad if enabled.

    `share`: the model scores shared-prompt rows right (`prompt_sharing.scores_shared_rows`),
    so that layout may be used where it is cheaper. Every completion needs at least one
    token (rollouts end in eos or hold one).
    """
    index: dict[tuple[int, ...], int] = {}
    prompt_of = [index.setdefault(tuple(s.prompt_ids), len(index)) for s in sequences]
    lengths = [len(s.completion_ids) for s in sequences]
    chunks = length_chunks(lengths, overhead)
    if share:
        groups = _by_prompt(prompt_of, lengths, len(index))
        if shared_rows_cheaper([len(p) for p in index], groups, lengths, chunks, overhead):
            return _shared_logprobs(model, sequences, groups, pad_id)
    return _chunked_logprobs(model, sequences, prompt_of, list(index), chunks, pad_id)


def shared_rows_cheaper(
    prompts: list[int],
    groups: list[list[int]],
    lengths: list[int],
    chunks: list[list[int]],
    overhead: int,
) -> bool:
    """Whether one forward of shared-prompt rows computes fewer tokens (padding and the
    overheads included) than a prompt forward plus `chunks`, with rows of at most
    SHARED_MAX_ROW tokens. `prompts`: the distinct prompts' lengths; `groups`: each one's
    sequence indices, longest completion first; `lengths`: completion lengths."""
    row = max(prompts) + sum(
        max(lengths[g[s]] for g in groups if len(g) > s) for s in range(max(map(len, groups)))
    )
    chunked = len(prompts) * max(prompts) + overhead
    chunked += sum(len(c) * max(lengths[i] for i in c) + overhead for c in chunks)
    return row <= SHARED_MAX_ROW and len(prompts) * row + overhead <= chunked


def _by_prompt(prompt_of: list[int], lengths: list[int], prompts: int) -> list[list[int]]:
    """Each prompt's sequences (indices), longest completion first."""
    groups: list[list[int]] = [[] for _ in range(prompts)]
    for i, p in enumerate(prompt_of):
        groups[p].append(i)
    return [sorted(g, key=lambda i: -lengths[i]) for g in groups]


def _shared_logprobs(
    model: torch.nn.Module, sequences: list[Sequence], groups: list[list[int]], pad_id: int
) -> tuple[Tensor, Tensor]:
    """One forward of shared-prompt rows; outputs back in `sequences` order."""
    device = next(model.parameters()).device
    batch = collate_shared([tuple(sequences[i] for i in g) for g in groups], pad_id).to(device)
    values = completion_logprobs(model, batch)
    return _unsort(values, batch.mask, [i for g in groups for i in g])


def _unsort(values: Tensor, mask: Tensor, order: list[int]) -> tuple[Tensor, Tensor]:
    """Rows that hold sequences `order[0]`, `order[1]`, ... put back in sequence order."""
    inverse = torch.empty(len(order), dtype=torch.long)
    inverse[torch.tensor(order)] = torch.arange(len(order))
    inverse = inverse.to(values.device)
    # index_select: its backward is an index_add, far cheaper than advanced indexing's.
    return values.index_select(0, inverse), mask.index_select(0, inverse)


def _chunked_logprobs(
    model: torch.nn.Module,
    sequences: list[Sequence],
    prompt_of: list[int],
    prompts: list[tuple[int, ...]],
    chunks: list[list[int]],
    pad_id: int,
) -> tuple[Tensor, Tensor]:
    """The distinct prompts once, then the completions chunk by chunk on their keys/values."""
    device = next(model.parameters()).device
    prefixes = _Prefixes(model, prompts, pad_id)
    width = max(len(s.completion_ids) for s in sequences)
    parts, masks, order = [], [], []
    for chunk in chunks:
        completions = [tuple(sequences[i].completion_ids) for i in chunk]
        rows = torch.tensor([prompt_of[i] for i in chunk], device=device)
        values = _chunk_logprobs(model, prefixes, rows, completions, pad_id)
        lengths = torch.tensor([len(c) for c in completions], device=device)
        aligned, valid = _right_align(values, lengths, width)
        parts.append(aligned)
        masks.append(valid)
        order += chunk
    return _unsort(torch.cat(parts), torch.cat(masks), order)
