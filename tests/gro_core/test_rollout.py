"""The hf rollout backend: exact greedy decoding, seeded sampling, recorded log-probs, stops."""

from __future__ import annotations

import pytest
import torch

from gro_core.models import load_policy, load_tokenizer
from gro_core.rollout import RolloutSettings, left_pad, sample
from gro_core.trainers.encode import Sequence, collate, completion_logprobs

TINY = "builtin:tiny-llama"


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRO_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "gro-cache"))


@pytest.fixture
def model_and_tokenizer():
    tok, model = load_tokenizer(TINY), load_policy(TINY)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():  # a random init predicts one token forever: perturb it
        for p in model.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=gen))
    return model, tok


PROMPTS = ["12+7=", "rev abcd=", "1="]


@torch.no_grad()
def hf_greedy(model, tok, prompts: list[list[int]], max_new_tokens: int) -> list[list[int]]:
    """The reference: transformers' own `generate`, greedy, cut after the first eos."""
    ids, attention = left_pad(prompts, tok.pad_token_id)
    out = model.generate(
        input_ids=ids,
        attention_mask=attention,
        max_new_tokens=max_new_tokens,
        do_sample=False,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
    )
    rows = [row.tolist() for row in out[:, ids.shape[1] :]]
    return [r[: r.index(tok.eos_token_id) + 1] if tok.eos_token_id in r else r for r in rows]


def encode(tok, texts: list[str]) -> list[list[int]]:
    return [tok(t)["input_ids"] for t in texts]


def test_greedy_rollouts_match_transformers_generate(model_and_tokenizer) -> None:
    model, tok = model_and_tokenizer
    prompts = encode(tok, PROMPTS)
    ours = sample(model, tok, prompts, 2, RolloutSettings(max_new_tokens=12, greedy=True))
    theirs = hf_greedy(model, tok, prompts, 12)
    assert ours.completion_ids[::2] == theirs
    assert ours.completion_ids[1::2] == theirs
    assert ours.group_ids.tolist() == [0, 0, 1, 1, 2, 2]


def test_sampling_is_seeded_and_varies_within_a_group(model_and_tokenizer) -> None:
    model, tok = model_and_tokenizer
    prompts = encode(tok, PROMPTS)
    settings = RolloutSettings(max_new_tokens=6, temperature=1.0)

    def draw(seed: int):
        return sample(model, tok, prompts, 4, settings, torch.Generator().manual_seed(seed))

    assert draw(1).completion_ids == draw(1).completion_ids
    assert draw(1).completion_ids != draw(2).completion_ids
    assert len({tuple(c) for c in draw(1).completion_ids[:4]}) > 1


def test_top_k_one_is_greedy(model_and_tokenizer) -> None:
    model, tok = model_and_tokenizer
    prompts = encode(tok, PROMPTS)
    greedy = sample(model, tok, prompts, 1, RolloutSettings(max_new_tokens=8, greedy=True))
    top1 = sample(
        model,
        tok,
        prompts,
        1,
        RolloutSettings(max_new_tokens=8, top_k=1),
        torch.Generator().manual_seed(3),
    )
    assert greedy.completion_ids == top1.completion_ids


def test_recorded_logprobs_equal_a_teacher_forced_forward(model_and_tokenizer) -> None:
    model, tok = model_and_tokenizer
    prompts = encode(tok, PROMPTS)
    out = sample(
        model,
        tok,
        prompts,
        2,
        RolloutSettings(max_new_tokens=6, temperature=0.7),
        torch.Generator().manual_seed(5),
    )
    seqs = [
        Sequence(tuple(p), tuple(c))
        for p, c in zip(out.prompt_ids, out.completion_ids, strict=True)
    ]
    batch = collate(seqs, tok.pad_token_id)
    with torch.no_grad():
        forward = completion_logprobs(model, batch)
    for i, recorded in enumerate(out.logprobs):
        assert torch.allclose(forward[i][batch.mask[i]], recorded, atol=1e-4)


def test_stop_strings_end_completions(model_and_tokenizer) -> None:
    model, tok = model_and_tokenizer
    prompts = encode(tok, PROMPTS)
    free = sample(model, tok, prompts, 1, RolloutSettings(max_new_tokens=10, greedy=True))
    text = tok.decode(free.completion_ids[0], skip_special_tokens=True)
    stop = text[2:4]
    assert len(stop) == 2
    cut = sample(
        model, tok, prompts, 1, RolloutSettings(max_new_tokens=10, greedy=True, stop=(stop,))
    )
    cut_text = tok.decode(cut.completion_ids[0], skip_special_tokens=True)
    assert cut_text.endswith(stop) and stop not in cut_text[:-1]
    assert len(cut.logprobs[0]) == len(cut.completion_ids[0])
