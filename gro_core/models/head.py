"""Log-probs of the taken tokens from final hidden states, never holding the logits.

A causal LM's last step is `logits = lm_head(h)`: (tokens, V) floats. At real vocabularies
(Qwen2's 151,936) those logits, kept for backward in float32, are most of a step's memory:
64 completions x 32 tokens x 152k x 4 bytes is 1.2 GB, more again for the log-softmax.
Here the head is applied to a chunk of rows at a time, each chunk's log-probs are reduced to
one number per token (the taken token's log-prob, and the entropy when asked), and the
backward pass recomputes each chunk's logits from the saved hidden states and head weight
(`_HeadLogprobs`, a custom autograd function). Peak memory is one chunk's logits, sized
from `LOGITS_BUDGET_BYTES`, whatever the vocabulary.

Only heads known to be `logits = h @ W.T (+ b)`, optionally soft-capped (Gemma 2's
`final_logit_softcapping`), take this path (`head_of`); any other model (a scaled head, a
LoRA-adapted head, an unknown architecture) is scored through its own forward.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch.distributed.fsdp import FSDPModule

# At most this many bytes of float32 logits (and the two temporaries of the same shape that
# softmax and its gradient need) live at once.
LOGITS_BUDGET_BYTES = 256 * 2**20
_TEMPORARIES = 3

# Model types whose causal-LM forward is exactly `lm_head(decoder(...).last_hidden_state)`,
# soft-capped by `config.final_logit_softcapping` where that is set.
PLAIN_HEAD_TYPES = frozenset(
    {
        "llama",
        "mistral",
        "mixtral",
        "qwen2",
        "qwen2_moe",
        "qwen3",
        "qwen3_moe",
        "phi3",
        "gemma",
        "gemma2",
        "gemma3_text",
        "gpt2",
        "gpt_neox",
        "olmo",
        "olmo2",
        "starcoder2",
        "smollm3",
    }
)


@dataclass(frozen=True)
class Head:
    """The pieces of a causal LM the chunked path needs."""

    decoder: torch.nn.Module  # the body: returns last_hidden_state
    weight: Tensor  # (V, H)
    bias: Tensor | None  # (V,)
    softcap: float | None


def _causal_lm(model: torch.nn.Module) -> torch.nn.Module:
    return model.get_base_model() if hasattr(model, "get_base_model") else model  # peft wraps


def head_of(model: torch.nn.Module) -> Head | None:
    """The decoder and head of `model` when its logits are a plain (capped) projection."""
    if isinstance(model, FSDPModule):
        # fsdp: the root's forward hook gathers the embeddings and head; reading the
        # decoder and head weight directly would see only this rank's shards.
        return None
    causal = _causal_lm(model)
    config = getattr(causal, "config", None)
    if getattr(config, "model_type", None) not in PLAIN_HEAD_TYPES:
        return None
    head = causal.get_output_embeddings() if hasattr(causal, "get_output_embeddings") else None
    decoder = getattr(causal, getattr(causal, "base_model_prefix", ""), None)
    # type(): a peft LoRA layer around the head is a subclass of nothing here, and its
    # adapter would be skipped by reading `.weight` alone.
    if type(head) is not torch.nn.Linear or not isinstance(decoder, torch.nn.Module):
        return None
    return Head(decoder, head.weight, head.bias, getattr(config, "final_logit_softcapping", None))


def chunk_rows(vocab: int, budget: int = LOGITS_BUDGET_BYTES) -> int:
    """Rows of (rows, vocab) float32 logits that fit the budget with their temporaries."""
    return max(1, budget // (vocab * 4 * _TEMPORARIES))


def _logits(hidden: Tensor, weight: Tensor, bias: Tensor | None, softcap: float | None) -> Tensor:
    """(n, V) float32 (at least) logits of one chunk, computed in the model's dtype first, as
    the model's own head computes them."""
    logits = hidden @ weight.T
    if bias is not None:
        logits = logits + bias
    logits = logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits
    if softcap is not None:
        logits = torch.tanh(logits / softcap) * softcap
    return logits


class _HeadLogprobs(torch.autograd.Function):
    """log softmax(head(h))[target] per row; backward recomputes each chunk's logits."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        hidden: Tensor,
        weight: Tensor,
        bias: Tensor | None,
        targets: Tensor,
        softcap: float | None,
        rows: int,
    ) -> Tensor:
        out = hidden.new_empty(
            hidden.shape[0], dtype=torch.promote_types(hidden.dtype, torch.float32)
        )
        lse = torch.empty_like(out)
        for start in range(0, hidden.shape[0], rows):
            part = slice(start, start + rows)
            logits = _logits(hidden[part], weight, bias, softcap)
            lse[part] = torch.logsumexp(logits, dim=-1)
            out[part] = logits.gather(1, targets[part, None]).squeeze(1) - lse[part]
        ctx.save_for_backward(hidden, weight, bias, targets, lse)
        ctx.softcap, ctx.rows = softcap, rows
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        hidden, weight, bias, targets, lse = ctx.saved_tensors
        need_h, need_w, need_b = ctx.needs_input_grad[:3]
        grad_h = torch.zeros_like(hidden) if need_h else None
        grad_w = torch.zeros_like(weight, dtype=grad.dtype) if need_w else None
        grad_b = torch.zeros_like(bias, dtype=grad.dtype) if need_b else None
        for start in range(0, hidden.shape[0], ctx.rows):
            part = slice(start, start + ctx.rows)
            logits = _logits(hidden[part], weight, bias, ctx.softcap)
            # d(picked - lse)/d logits = onehot - softmax, times the incoming gradient.
            dlogits = (logits - lse[part, None]).exp_().mul_(-grad[part, None])
            dlogits.scatter_add_(1, targets[part, None], grad[part, None])
            if ctx.softcap is not None:  # through c·tanh(z / c): times 1 - tanh²
                dlogits.mul_(1 - (logits / ctx.softcap) ** 2)
            dz = dlogits.to(weight.dtype)
            if grad_h is not None:
                grad_h[part] = dz @ weight
            if grad_w is not None:
                grad_w += (dz.T @ hidden[part]).to(grad_w.dtype)
            if grad_b is not None:
                grad_b += dlogits.sum(dim=0)
        grad_w = None if grad_w is None else grad_w.to(weight.dtype)
        grad_b = None if grad_b is None else grad_b.to(bias.dtype)
        return grad_h, grad_w, grad_b, None, None, None


def head_logprobs(
    head: Head, hidden: Tensor, targets: Tensor, budget: int = LOGITS_BUDGET_BYTES
) -> Tensor:
    """(..., ) log-probs of `targets` (...,) under the head applied to `hidden` (..., H)."""
    shape = targets.shape
    rows = chunk_rows(head.weight.shape[0], budget)
    flat = _HeadLogprobs.apply(
        hidden.reshape(-1, hidden.shape[-1]),
        head.weight,
        head.bias,
        targets.reshape(-1),
        head.softcap,
        rows,
    )
    return flat.view(shape)


@torch.no_grad()
def head_entropy(head: Head, hidden: Tensor, budget: int = LOGITS_BUDGET_BYTES) -> Tensor:
    """(...,) entropy of the head's distribution at each of `hidden`'s rows (no grad: logged)."""
    flat = hidden.reshape(-1, hidden.shape[-1])
    rows = chunk_rows(head.weight.shape[0], budget)
    out = []
    for start in range(0, flat.shape[0], rows):
        logp = _logits(flat[start : start + rows], head.weight, head.bias, head.softcap)
        logp = logp.log_softmax(dim=-1)
        out.append(-(logp.exp() * logp).sum(dim=-1))
    return torch.cat(out).view(hidden.shape[:-1]) if out else flat.new_zeros(hidden.shape[:-1])


def plain_logprobs(logits: Tensor, targets: Tensor) -> Tensor:
    """The reference path: log-probs of `targets` from full (..., V) logits."""
    logits = logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits
    picked = logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return picked - torch.logsumexp(logits, dim=-1)


def token_logprobs(
    model: torch.nn.Module,
    targets: Tensor,
    keep: int | Tensor,
    *,
    drop_last: bool = False,
    budget: int = LOGITS_BUDGET_BYTES,
    **forward: Any,
) -> Tensor:
    """Run `model` on the `forward` inputs; log-probs (R, C) of `targets` (R, C) at the
    positions `keep` picks, as `logits_to_keep` picks them (the last `keep`, or these
    indices), without the last of them when `drop_last`.

    For models with a plain head (`head_of`) the logits are never held; others go through
    their own forward, which computes logits at the kept positions only.
    """
    head = head_of(model)
    if head is None:
        logits = model(**forward, logits_to_keep=keep).logits
        return plain_logprobs(logits[:, :-1] if drop_last else logits, targets)
    hidden = head.decoder(**forward).last_hidden_state
    hidden = hidden[:, -keep:] if isinstance(keep, int) else hidden.index_select(1, keep)
    if drop_last:
        hidden = hidden[:, :-1]
    return head_logprobs(head, hidden, targets, budget)
