"""The rollout engine's fast decoding loop for Llama-style models (Llama, Mistral, Qwen2,
Qwen3): a static KV cache.

transformers' per-token forward rebuilds the attention mask, concatenates every layer's cache
with the new key and value (a copy of the whole cache per token per layer) and recomputes the
rotary tables; for the small models gro trains on a CPU that bookkeeping is most of a
rollout's time (6.3 ms of a tiny-llama decode step of 64 rows, 30% of it in `torch.cat`).

This loop keeps the per-token math in the model's own modules (projections, norms, MLP, the
modeling file's `apply_rotary_pos_emb`, SDPA as transformers calls it), so LoRA adapters that
peft puts inside those modules still apply, and owns the rest:
- keys and values are written in place into buffers sized for prompt + max_new_tokens;
- cos/sin for every position come from one call of the model's rotary module;
- the padding mask is one preallocated boolean row per sequence;
- rows that finished (eos) are dropped from the batch once they are at least half of it, so a
  few long completions do not keep 64 rows of pad tokens decoding.

Each prompt goes through the model's normal forward once, however many completions it gets,
and its cache is copied into the buffers of its G rows. Greedy output matches `model.generate`
token for token (tested); sampled rows consume the generator exactly as the plain loop until
the first compaction, and deterministically after.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.distributed.fsdp import FSDPModule
from transformers import DynamicCache

# Architectures whose decoder layers have Llama's structure and attribute names: Qwen2 adds
# biases to q/k/v (inside the projections), Qwen3 RMS-norms each head's q and k, Mistral is
# Llama with an optional sliding window (not driven here: such models use the generic loop).
SUPPORTED_MODEL_TYPES = frozenset({"llama", "mistral", "qwen2", "qwen3"})
# Rotary variants whose cos/sin depend on the position only (not on the sequence length seen).
_STATIC_ROPE = frozenset({"default", "linear", "llama3"})

# (b, V) float logits, (b,) their rows in the full batch, decode step -> (b,) tokens
PickFn = Callable[[Tensor, Tensor, int], Tensor]


def _base(model: torch.nn.Module) -> torch.nn.Module:
    return model.get_base_model() if hasattr(model, "get_base_model") else model  # peft wraps


def sharded(model: torch.nn.Module) -> bool:
    """Whether FSDP shards `model`: its layers then hold DTensors that only the modules' own
    forward (which gathers them) may use."""
    return any(isinstance(module, FSDPModule) for module in model.modules())


def supports(model: torch.nn.Module) -> bool:
    """Whether `model` can decode through this loop (else the rollout uses the generic one):
    the loop calls the layers directly, so a sharded model takes the generic one."""
    config = getattr(_base(model), "config", None)
    if sharded(model):
        return False
    if config is None or getattr(config, "model_type", None) not in SUPPORTED_MODEL_TYPES:
        return False
    rope = (getattr(config, "rope_parameters", None) or {}).get("rope_type", "default")
    return (
        rope in _STATIC_ROPE
        and getattr(config, "_attn_implementation", "sdpa") in ("sdpa", "eager")
        and getattr(config, "pretraining_tp", 1) == 1
        and not _windowed(config)
    )


def _windowed(config: Any) -> bool:
    """Whether some layer attends through a sliding window (this loop attends to all)."""
    layers = set(getattr(config, "layer_types", None) or ())
    if layers:
        return layers != {"full_attention"}
    window = getattr(config, "sliding_window", None)
    return window is not None and getattr(config, "use_sliding_window", True) is not False


@dataclass
class _DecodeState:
    """The rows still decoding: their index in the full batch, cache, mask and next position."""

    rows: Tensor  # (b,) indices into the full batch
    keys: list[Tensor]  # per layer (b, H_kv, width + max_new_tokens, head_dim)
    values: list[Tensor]
    mask: Tensor  # (b, width + max_new_tokens) bool: attend to this position
    position: Tensor  # (b,) rotary position of the next token (real tokens before it)
    done: Tensor  # (b,) finished (eos seen)

    def keep(self, alive: Tensor) -> _DecodeState:
        """Only the rows in `alive` (indices into this batch): one copy of their cache."""
        return _DecodeState(
            self.rows.index_select(0, alive),
            [k.index_select(0, alive) for k in self.keys],
            [v.index_select(0, alive) for v in self.values],
            self.mask.index_select(0, alive),
            self.position.index_select(0, alive),
            self.done.index_select(0, alive),
        )


def prefill(
    model: torch.nn.Module, ids: Tensor, attention: Tensor, cache: dict[str, DynamicCache]
) -> tuple[Any, Tensor]:
    """Left-padded prompts through `model` once, filling `cache` ({cache kwarg: cache}):
    (the model's output, last-position logits only; the prompts' position ids)."""
    positions = (attention.cumsum(dim=1) - 1).clamp(min=0)
    out = model(
        input_ids=ids,
        attention_mask=attention,
        position_ids=positions,
        use_cache=True,
        logits_to_keep=1,
        **cache,
    )
    return out, positions


def _start_batch(
    model: torch.nn.Module,
    ids: Tensor,
    attention: Tensor,
    repeats: int,
    max_new_tokens: int,
    cache_kwarg: str,
) -> tuple[_DecodeState, Tensor]:
    """Each distinct prompt through the model's own forward once, then its cache, mask and
    last logits repeated for its `repeats` rows: (the batch's buffers, logits (P·G, V))."""
    width = ids.shape[1]
    cache = DynamicCache()
    out, positions = prefill(model, ids, attention, {cache_kwarg: cache})
    total = width + max_new_tokens
    keys, values = [], []
    for layer in cache.layers:
        for source, buffers in ((layer.keys, keys), (layer.values, values)):
            rows = source.repeat_interleave(repeats, dim=0)  # (P·G, H_kv, width, hd)
            buffer = rows.new_empty(*rows.shape[:2], total, rows.shape[3])
            buffer[:, :, :width] = rows
            buffers.append(buffer)
    batch = ids.shape[0] * repeats
    mask = torch.zeros(batch, total, dtype=torch.bool, device=ids.device)
    mask[:, :width] = attention.bool().repeat_interleave(repeats, dim=0)
    rows = torch.arange(batch, device=ids.device)
    done = torch.zeros(batch, dtype=torch.bool, device=ids.device)
    position = (positions[:, -1] + 1).repeat_interleave(repeats)
    logits = out.logits[:, -1].repeat_interleave(repeats, dim=0)
    return _DecodeState(rows, keys, values, mask, position, done), logits


def _layer_step(
    layer: torch.nn.Module,
    h: Tensor,
    cos_sin: tuple[Tensor, Tensor],
    keys: Tensor,
    values: Tensor,
    slot: int,
    mask: Tensor | None,
    rotary: Callable[..., tuple[Tensor, Tensor]],
) -> Tensor:
    """One decoder layer on one new token per row, h (b, 1, D), its key/value at `slot`."""
    attn = layer.self_attn
    b = h.shape[0]
    x = layer.input_layernorm(h)
    q = attn.q_proj(x).view(b, 1, -1, attn.head_dim)
    k = attn.k_proj(x).view(b, 1, -1, attn.head_dim)
    if hasattr(attn, "q_norm"):  # Qwen3: per-head RMS norm of q and k, before rotary
        q, k = attn.q_norm(q), attn.k_norm(k)
    q, k = q.transpose(1, 2), k.transpose(1, 2)  # (b, H, 1, hd), (b, H_kv, 1, hd)
    v = attn.v_proj(x).view(b, 1, -1, attn.head_dim).transpose(1, 2)
    q, k = rotary(q, k, *cos_sin)
    keys[:, :, slot : slot + 1] = k
    values[:, :, slot : slot + 1] = v
    gqa = {"enable_gqa": True} if q.shape[1] != k.shape[1] else {}
    o = F.scaled_dot_product_attention(
        q,
        keys[:, :, : slot + 1],
        values[:, :, : slot + 1],
        attn_mask=mask,
        scale=attn.scaling,
        **gqa,
    )  # (b, H, 1, hd)
    h = h + attn.o_proj(o.transpose(1, 2).contiguous().reshape(b, 1, -1))
    return h + layer.mlp(layer.post_attention_layernorm(h))


@torch.no_grad()
def decode(
    model: torch.nn.Module,
    ids: Tensor,
    attention: Tensor,
    repeats: int,
    max_new_tokens: int,
    pick: PickFn,
    eos: Tensor,
    pad: int,
    cache_kwarg: str,
) -> tuple[Tensor, Tensor]:
    """(P·G, K) tokens (pad after a row's eos) and their log-probs (0 there), K <= max_new_tokens;
    rows g·G .. g·G + G - 1 continue prompt g.

    ids, attention: (P, width) left-padded prompts, each decoded `repeats` (G) times; `pick`
    turns a step's logits into tokens.
    """
    base = _base(model)
    inner = base.model  # LlamaModel and kin: embed_tokens, layers, norm, rotary_emb
    rotary = sys.modules[type(inner.layers[0].self_attn).__module__].apply_rotary_pos_emb
    state, logits = _start_batch(model, ids, attention, repeats, max_new_tokens, cache_kwarg)
    width = ids.shape[1]
    # cos/sin of every position, by the model's own rotary module: (1, P, hd) each.
    where = torch.arange(width + max_new_tokens, device=ids.device)[None]
    cos, sin = inner.rotary_emb(inner.embed_tokens.weight, position_ids=where)
    # transformers drops the mask when no prompt is padded; so does this loop (same kernels).
    padded = not bool(attention.bool().all())
    written: list[tuple[Tensor, Tensor, Tensor]] = []  # per step: (rows, tokens, log-probs)
    for step in range(max_new_tokens):
        logits = logits.float()
        token = pick(logits, state.rows, step).masked_fill(state.done, pad)
        logp = logits.gather(1, token[:, None]).squeeze(1) - logits.logsumexp(dim=-1)
        written.append((state.rows, token, logp.masked_fill(state.done, 0.0)))
        state.done = state.done | torch.isin(token, eos)
        alive = (~state.done).nonzero().squeeze(1)
        if len(alive) == 0 or step + 1 == max_new_tokens:
            break
        if 2 * len(alive) <= len(state.done):
            state, token = state.keep(alive), token[alive]
        slot = width + step
        state.mask[:, slot] = True
        h = inner.embed_tokens(token[:, None])  # (b, 1, D)
        cos_sin = (
            cos[0].index_select(0, state.position)[:, None],
            sin[0].index_select(0, state.position)[:, None],
        )
        mask = state.mask[:, None, None, : slot + 1] if padded else None
        for i, layer in enumerate(inner.layers):
            h = _layer_step(layer, h, cos_sin, state.keys[i], state.values[i], slot, mask, rotary)
        logits = base.lm_head(inner.norm(h))[:, -1]  # (b, V)
        state.position = state.position + 1
    return _assemble(written, ids.shape[0] * repeats, pad)


def _assemble(
    written: list[tuple[Tensor, Tensor, Tensor]], total: int, pad: int
) -> tuple[Tensor, Tensor]:
    """(total, steps) tokens and log-probs from each step's (rows, tokens, log-probs), in one
    scatter each (an indexed write per step costs ~0.1 ms); rows that left hold pad and 0."""
    rows = torch.cat([r for r, _, _ in written])
    columns = torch.cat([torch.full_like(r, step) for step, (r, _, _) in enumerate(written)])
    tokens = rows.new_full((total, len(written)), pad)
    logps = torch.zeros((total, len(written)), device=rows.device)
    tokens[rows, columns] = torch.cat([t for _, t, _ in written])
    logps[rows, columns] = torch.cat([lp for _, _, lp in written])
    return tokens, logps
