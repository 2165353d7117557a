"""The hf rollout backend: exact greedy decoding, seeded sampling, recorded log-probs, stops.

Every behaviour is checked on both decoding loops: the static-KV-cache loop that Llama-
architecture models take (gro_core.rollout.static_decode) and the generic loop every other
model takes.
"""

from __future__ import annotations

import pytest
import torch

from gro_core.data.encode import Sequence, collate, completion_logprobs
from gro_core.models import LoraSettings, load_policy, load_tokenizer
from gro_core.rollout import static_decode
from gro_core.rollout.sampling import (
    RolloutSettings,
    left_pad,
    prompt_seeds,
    sample,
    sample_categorical,
)
from gro_core.rollout.vllm_engine import _request_seeds

TINY = "builtin:tiny-llama"


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRO_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "gro-cache"))


@pytest.fixture(params=["static", "generic"])
def engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Which decoding loop the test runs: builtins take the static one unless told not to."""
    if request.param == "generic":
        monkeypatch.setattr(static_decode, "supports", lambda model: False)
    return request.param


def perturb(model: torch.nn.Module, scale: float = 0.3) -> None:
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():  # a random init predicts one token forever: perturb it
        for p in model.parameters():
            p.add_(scale * torch.randn(p.shape, generator=gen))


@pytest.fixture
def model_and_tokenizer(engine: str):
    tok, model = load_tokenizer(TINY), load_policy(TINY)
    perturb(model)
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


def test_builtin_models_take_the_static_cache_loop() -> None:
    assert static_decode.supports(load_policy(TINY))
    assert not static_decode.supports(torch.nn.Linear(2, 2))


def test_rows_that_finish_early_leave_the_batch_without_changing_the_others(
    model_and_tokenizer,
) -> None:
    # A push towards eos (a hook on the output layer, seen by generate too) ends most rows
    # early while some run to the budget: the static loop drops finished rows from its batch
    # once they are half of it (twice here), and every row must still equal generate's.
    model, tok = model_and_tokenizer
    bias = torch.zeros(len(tok))
    bias[tok.eos_token_id] = 3.0
    model.lm_head.register_forward_hook(lambda module, args, logits: logits + bias)
    prompts = encode(tok, [f"{a}+{b}=" for a in range(5) for b in range(0, 50, 7)])
    ours = sample(model, tok, prompts, 1, RolloutSettings(max_new_tokens=24, greedy=True))
    lengths = sorted(len(c) for c in ours.completion_ids)
    assert lengths[len(lengths) // 2] < lengths[-1] == 24  # half finish while others go on
    assert ours.completion_ids == hf_greedy(model, tok, prompts, 24)


def test_lora_adapters_apply_in_the_static_loop() -> None:
    tok = load_tokenizer(TINY)
    model = load_policy(TINY, lora=LoraSettings(r=4, target_modules=["q_proj", "v_proj"]))
    perturb(model)  # the adapters' B starts at zero: make them matter
    assert static_decode.supports(model)
    prompts = encode(tok, PROMPTS)
    ours = sample(model, tok, prompts, 1, RolloutSettings(max_new_tokens=10, greedy=True))
    assert ours.completion_ids == hf_greedy(model, tok, prompts, 10)
    with model.disable_adapter():
        plain = sample(model, tok, prompts, 1, RolloutSettings(max_new_tokens=10, greedy=True))
    assert plain.completion_ids != ours.completion_ids


def test_categorical_draws_follow_the_probabilities_and_skip_impossible_tokens() -> None:
    probs = torch.tensor([0.1, 0.0, 0.6, 0.3, 0.0]).repeat(40_000, 1)
    draws = sample_categorical(probs, torch.Generator().manual_seed(0))
    counts = torch.bincount(draws, minlength=5).float() / len(draws)
    assert counts[1] == counts[4] == 0
    assert torch.allclose(counts, probs[0], atol=0.01)
    again = sample_categorical(probs[:50], torch.Generator().manual_seed(0))
    assert torch.equal(again, draws[:50])  # seeded


def test_a_prompt_with_its_own_seed_samples_alike_whatever_else_is_in_the_batch(
    model_and_tokenizer,
) -> None:
    # What lets fsdp ranks that split a step's prompts sample what one process does.
    model, tok = model_and_tokenizer
    prompts = encode(tok, PROMPTS)
    settings = RolloutSettings(max_new_tokens=10, temperature=1.5)
    seeds = prompt_seeds(seed=3, step=5, first=0, count=len(prompts))
    whole = sample(model, tok, prompts, 4, settings, seeds=seeds)
    # The last prompt alone, as the second rank's share would start at global index 2.
    alone = sample(model, tok, prompts[2:], 4, settings, seeds=prompt_seeds(3, 5, 2, 1))
    assert alone.completion_ids == whole.completion_ids[8:]
    other_step = sample(model, tok, prompts, 4, settings, seeds=prompt_seeds(3, 6, 0, 3))
    assert other_step.completion_ids != whole.completion_ids
    # A generator shared by the batch (the old way) ties a prompt's draws to its neighbours.
    gen = torch.Generator().manual_seed(0)
    shared = sample(model, tok, prompts, 4, settings, torch.Generator().manual_seed(0))
    assert (
        sample(model, tok, prompts[2:], 4, settings, gen).completion_ids
        != shared.completion_ids[8:]
    )


def test_prompt_seeds_depend_on_the_global_index_not_the_split() -> None:
    assert prompt_seeds(1, 2, 0, 4)[2:] == prompt_seeds(1, 2, 2, 2)
    assert len(set(prompt_seeds(1, 2, 0, 4) + prompt_seeds(1, 3, 0, 4))) == 8
    assert prompt_seeds(1, 2, 0, 2, stream=1) != prompt_seeds(1, 2, 0, 2)


def test_vllm_request_seeds_of_a_prompt_come_from_its_own_seed() -> None:
    seeds = prompt_seeds(0, 1, 0, 3)
    whole = _request_seeds(3, 4, None, seeds)
    assert len(whole) == 12 and whole[8:] == _request_seeds(1, 4, None, seeds[2:])
    with pytest.raises(ValueError, match="2 seeds for 3 prompts"):
        _request_seeds(3, 4, None, seeds[:2])
