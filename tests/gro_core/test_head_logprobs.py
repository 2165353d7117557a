"""Log-probs from hidden states in chunks (gro_core.models.head) against the plain forward."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM

from gro_core.data.encode import Sequence, collate, completion_logprobs
from gro_core.models.head import (
    Head,
    _HeadLogprobs,
    head_entropy,
    head_logprobs,
    head_of,
    plain_logprobs,
)
from gro_core.trainers.chunking import grouped_logprobs

ModelDir = Callable[[str], Path]
# Tied embeddings (qwen2 at 151,936, gpt2), soft-capping and a sliding window (gemma2).
ARCHS = ["llama", "qwen2", "gemma2", "gpt2", "gpt_neox"]


def _sequences(vocab: int, seed: int = 0) -> list[Sequence]:
    gen = torch.Generator().manual_seed(seed)
    out = []
    for i, (p, c) in enumerate([(5, 4), (3, 7), (6, 1), (5, 4)]):
        ids = torch.randint(3, min(vocab, 400), (p + c,), generator=gen).tolist()
        out.append(Sequence(tuple(ids[:p]), tuple(ids[p:]), group=i // 2))
    # Two completions of one prompt, so the grouped path shares a prefix.
    out.append(Sequence(out[0].prompt_ids, (7, 8, 9)))
    return out


def _plain(model: torch.nn.Module, sequences: list[Sequence]) -> torch.Tensor:
    batch = collate(sequences, 0)
    logits = model(
        input_ids=batch.input_ids,
        attention_mask=batch.attention_mask,
        position_ids=batch.position_ids,
    ).logits
    k = batch.targets.shape[1]
    return plain_logprobs(logits[:, -k - 1 : -1], batch.targets) * batch.mask


def _grads(model: torch.nn.Module, values: torch.Tensor, weights: torch.Tensor) -> list:
    model.zero_grad()
    (values * weights).sum().backward()
    return [p.grad.clone() for p in model.parameters() if p.grad is not None]


# Gemma2's own eager forward gives NaN in float64 (its mask and soft-capping), so float32 only.
CASES = [
    (a, d)
    for a in ARCHS
    for d in (torch.float64, torch.float32)
    if (a, d) != ("gemma2", torch.float64)
]


@pytest.mark.slow
@pytest.mark.parametrize(("arch", "dtype"), CASES, ids=[f"{a}-{str(d)[6:]}" for a, d in CASES])
def test_chunked_logprobs_and_gradients_equal_the_plain_forward(
    hf_model_dir: ModelDir, arch: str, dtype: torch.dtype, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = AutoModelForCausalLM.from_pretrained(hf_model_dir(arch), dtype=dtype)
    assert head_of(model) is not None
    # A budget of a few rows, so every batch is cut into several chunks.
    monkeypatch.setattr("gro_core.models.head.LOGITS_BUDGET_BYTES", 0)
    seqs = _sequences(model.config.vocab_size)
    weights = torch.randn(len(seqs), max(len(s.completion_ids) for s in seqs), dtype=dtype)
    plain = _plain(model, seqs)
    want = _grads(model, plain, weights)
    batch = collate(seqs, 0)
    chunked = completion_logprobs(model, batch)
    tol = {"rtol": 1e-10, "atol": 1e-10} if dtype == torch.float64 else {"rtol": 1e-4, "atol": 1e-5}
    torch.testing.assert_close(chunked, plain.to(chunked.dtype), **tol)
    for got, ref in zip(_grads(model, chunked, weights), want, strict=True):
        torch.testing.assert_close(got, ref, **tol)
    # The grouped layout (a prompt's keys and values reused) against itself through the
    # models' own forward: the layouts differ from each other in float64 rounding already.
    grouped, _ = grouped_logprobs(model, seqs, 0, overhead=0)
    grouped_grads = _grads(model, grouped, weights)
    for where in ("gro_core.models.head.head_of", "gro_core.trainers.chunking.head_of"):
        monkeypatch.setattr(where, lambda _model: None)
    reference, _ = grouped_logprobs(model, seqs, 0, overhead=0)
    torch.testing.assert_close(grouped, reference, **tol)
    torch.testing.assert_close(grouped, plain.to(grouped.dtype), **tol)
    for got, ref in zip(grouped_grads, _grads(model, reference, weights), strict=True):
        torch.testing.assert_close(got, ref, **tol)


def _random_head(bias: bool, softcap: float | None) -> tuple[Head, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    weight = torch.randn(50, 6, generator=gen, dtype=torch.float64, requires_grad=True)
    b = torch.randn(50, generator=gen, dtype=torch.float64, requires_grad=True) if bias else None
    hidden = torch.randn(7, 6, generator=gen, dtype=torch.float64, requires_grad=True)
    targets = torch.randint(0, 50, (7,), generator=gen)
    return Head(torch.nn.Identity(), weight, b, softcap), hidden, targets


@pytest.mark.parametrize(("bias", "softcap"), [(False, None), (True, None), (True, 2.0)])
def test_head_function_passes_gradcheck_with_bias_and_softcapping(
    bias: bool, softcap: float | None
) -> None:
    head, hidden, targets = _random_head(bias, softcap)
    inputs = (hidden, head.weight, head.bias, targets, softcap, 3)
    assert torch.autograd.gradcheck(_HeadLogprobs.apply, inputs)
    logits = hidden @ head.weight.T + (0 if head.bias is None else head.bias)
    if softcap is not None:
        logits = torch.tanh(logits / softcap) * softcap
    torch.testing.assert_close(
        head_logprobs(head, hidden, targets), plain_logprobs(logits, targets)
    )
    entropy = -(logits.softmax(-1) * logits.log_softmax(-1)).sum(-1)
    torch.testing.assert_close(head_entropy(head, hidden, budget=0), entropy.detach())


def test_logits_are_never_kept_for_backward_at_a_real_vocabulary(hf_model_dir: ModelDir) -> None:
    """Qwen2's 151,936 vocabulary: the graph saves no (tokens, V) logits (the plain path
    saves all of them, in float32), in either layout."""
    model = AutoModelForCausalLM.from_pretrained(hf_model_dir("qwen2"))
    vocab = model.config.vocab_size
    seqs = _sequences(vocab) * 8  # 40 sequences, up to 7 completion tokens each
    saved: list[torch.Size] = []

    def pack(t: torch.Tensor) -> torch.Tensor:
        saved.append(t.shape)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        values = completion_logprobs(model, collate(seqs, 0))
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        grouped_logprobs(model, seqs, 0, overhead=0)
    assert values.shape[0] == 40
    hidden = model.config.hidden_size
    with_vocab = {tuple(s) for s in saved if vocab in s}
    # Only the head's (V, H) weight: the backward recomputes logits a chunk at a time.
    assert with_vocab == {(vocab, hidden)}


def test_a_lora_adapted_head_is_scored_through_the_model(hf_model_dir: ModelDir) -> None:
    """Reading the head's weight would skip its adapter: such models use their own forward."""
    model = AutoModelForCausalLM.from_pretrained(hf_model_dir("llama"))
    config = LoraConfig(r=2, target_modules=["lm_head", "q_proj"], init_lora_weights=False)
    adapted = get_peft_model(model, config)
    assert head_of(adapted) is None
    seqs = _sequences(1024)
    torch.testing.assert_close(
        completion_logprobs(adapted, collate(seqs, 0)), _plain(adapted, seqs)
    )
    only_attention = get_peft_model(
        AutoModelForCausalLM.from_pretrained(hf_model_dir("llama")),
        LoraConfig(r=2, target_modules=["q_proj"], init_lora_weights=False),
    )
    assert head_of(only_attention) is not None
    torch.testing.assert_close(
        completion_logprobs(only_attention, collate(seqs, 0)), _plain(only_attention, seqs)
    )
