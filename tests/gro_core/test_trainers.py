"""The training loop: batching, log-probs, checkpoints, resume, failures, run outputs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from gro_core.cli import main as gro
from gro_core.data.encode import (
    Sequence,
    collate,
    completion_logprobs,
    encode_pair,
    encode_records,
)
from gro_core.models import load_policy, load_tokenizer
from gro_core.spec import load_spec
from gro_core.trainers import Callback, DataError, JsonlWriter, TrainingError, run
from gro_core.trainers.checkpoint import checkpoint_dirs, save_checkpoint
from gro_core.trainers.loop import Trainer, weighted_metrics
from gro_core.trainers.prompt_sharing import collate_shared, shareable, shares_prompts
from gro_core.trainers.reference_cache import ReferenceCache
from gro_core.trainers.sampler import StepSampler, epoch_batches

TINY = "builtin:tiny-llama"


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRO_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "gro-cache"))


def spec_for(method: str, task: str, **train) -> dict:
    return {
        "model": TINY,
        "method": method,
        "data": {"task": task},
        "rollout": {"num_generations": 4, "max_new_tokens": 6},
        "train": {"steps": 6, "batch_size": 4, "lr": 1e-3, "warmup_steps": 1} | train,
        "eval": {"every": 3, "num_prompts": 8},
        "checkpoint": {"every": 2, "keep": 2},
    }


def read_metrics(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


# --- encoding and log-probs --------------------------------------------------------------


def test_truncation_keeps_the_end_of_the_prompt_and_at_least_one_completion_token() -> None:
    tok = load_tokenizer(TINY)
    prompt, completion = encode_pair(tok, "abcdefghij=", "0123456789", max_length=8)
    assert len(prompt) + len(completion) == 8
    assert len(prompt) == 1 and tok.decode(prompt) == "="
    assert tok.decode(completion) == "0123456"
    prompt, completion = encode_pair(tok, "ab=", "xy", max_length=64)
    assert completion[-1] == tok.eos_token_id and tok.decode(prompt) == "<bos>ab="


def test_completion_logprobs_match_one_unpadded_forward_per_sequence() -> None:
    tok, model = load_tokenizer(TINY), load_policy(TINY)
    pairs = [("33+11=", "44"), ("1+2=", "3"), ("rev abcdef=", "fedcba")]
    seqs = [Sequence(*encode_pair(tok, p, c, 64)) for p, c in pairs]
    batch = collate(seqs, tok.pad_token_id)
    got = completion_logprobs(model, batch)
    assert torch.all(got[~batch.mask] == 0)
    for i, s in enumerate(seqs):
        ids = torch.tensor([s.prompt_ids + s.completion_ids])
        logp = model(ids).logits[0].float().log_softmax(-1)
        start = len(s.prompt_ids) - 1
        want = torch.stack([logp[start + j, t] for j, t in enumerate(s.completion_ids)])
        assert torch.allclose(got[i][batch.mask[i]], want, atol=1e-5)


def _pairs(tok, rows: list[tuple[str, str, str]]) -> list[tuple[Sequence, ...]]:
    return [
        tuple(Sequence(*encode_pair(tok, p, c, 64), group=i) for c in (chosen, rejected))
        for i, (p, chosen, rejected) in enumerate(rows)
    ]


PAIRS = [
    ("33+11=", "44", "46"),
    ("1+2=", "3", "12345"),
    ("rev abcdef=", "fedcba", "f"),
]


def test_shared_prompt_rows_score_like_one_row_per_sequence() -> None:
    tok, model = load_tokenizer(TINY), load_policy(TINY)
    # Groups of 2 and 1, prompts and completions of different lengths.
    groups = [*_pairs(tok, PAIRS), (Sequence(*encode_pair(tok, "x=", "yz", 64), group=9),)]
    assert shareable(groups)
    shared = collate_shared(groups, tok.pad_token_id)
    assert shared.input_ids.shape[0] == len(groups), "one row per group"
    plain = collate([s for g in groups for s in g], tok.pad_token_id)
    assert torch.equal(shared.mask, plain.mask)
    assert torch.equal(shared.rewards, plain.rewards)
    assert torch.equal(shared.group_ids, plain.group_ids)
    got, want = completion_logprobs(model, shared), completion_logprobs(model, plain)
    assert torch.all(got[~shared.mask] == 0)
    assert torch.allclose(got, want, atol=1e-5)
    params = list(model.parameters())
    grads = torch.autograd.grad(got.sum(), params)
    expected = torch.autograd.grad(want.sum(), params)
    for g, e in zip(grads, expected, strict=True):
        assert torch.allclose(g, e, atol=1e-5, rtol=1e-4)


def test_shared_rows_are_used_only_when_a_group_has_one_prompt() -> None:
    tok = load_tokenizer(TINY)
    (pair,) = _pairs(tok, PAIRS[:1])
    cut = Sequence(pair[0].prompt_ids[1:], pair[1].completion_ids)  # truncated differently
    assert not shareable([(pair[0], cut)])
    assert not shareable([(pair[0],), (pair[1],)]), "no group to share a prompt with"


class _NoCustomMask(torch.nn.Module):
    """A model that ignores a 4D attention mask (as models that build their own do)."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model, self.config = model, model.config

    def forward(self, attention_mask: torch.Tensor, **kwargs):
        return self.model(
            attention_mask=None if attention_mask.dim() == 4 else attention_mask, **kwargs
        )


def test_prompt_sharing_is_checked_on_the_model_itself() -> None:
    tok, model = load_tokenizer(TINY), load_policy(TINY)
    examples = encode_records(
        tok, "preference", [{"prompt": p, "chosen": c, "rejected": r} for p, c, r in PAIRS], 64
    )
    assert shares_prompts(model, examples, tok.pad_token_id)
    model.config._attn_implementation = "eager"  # an additive float mask
    assert shares_prompts(model, examples, tok.pad_token_id)
    model.config._attn_implementation = "sdpa"
    # Completions would see their sibling: the check catches it, whatever the layer says.
    assert not shares_prompts(_NoCustomMask(model), examples, tok.pad_token_id)
    model.config._attn_implementation = "flash_attention_2"
    assert not shares_prompts(model, examples, tok.pad_token_id)


def test_batch_encoding_gives_the_ids_of_one_pair_at_a_time() -> None:
    tok = load_tokenizer(TINY)
    chat = [{"role": "user", "content": "hi there"}]
    records = [
        {"prompt": "33+11=", "chosen": "44", "rejected": "46"},
        {"prompt": chat, "chosen": [{"role": "assistant", "content": "yo"}], "rejected": "no"},
        {"prompt": "a long prompt to cut=", "chosen": "x" * 30, "rejected": "y"},
    ]
    for max_length in (64, 12):
        examples = encode_records(tok, "preference", records, max_length)
        for record, example in zip(records, examples, strict=True):
            for name, seq in zip(("chosen", "rejected"), example.sequences, strict=True):
                want = encode_pair(tok, record["prompt"], record[name], max_length)
                assert (seq.prompt_ids, seq.completion_ids) == want
    unpaired = encode_records(
        tok, "unpaired", [{"prompt": "a=", "completion": "b", "label": False}], 64
    )
    assert unpaired[0].sequences[0].reward == -1.0


def test_cached_reference_logprobs_equal_a_fresh_forward_after_save_and_load(
    tmp_path: Path,
) -> None:
    from gro_core.data.encode import mismatched

    tok, model = load_tokenizer(TINY), load_policy(TINY)
    records = [{"prompt": p, "chosen": c, "rejected": r} for p, c, r in PAIRS * 3]
    examples = encode_records(tok, "preference", records, 64)
    splits = {"train": examples, "train_kl": mismatched(examples)}
    ReferenceCache.compute(
        model, splits, tok.pad_token_id, torch.device("cpu"), batch_tokens=64
    ).save(tmp_path / "ref.pt")
    cache = ReferenceCache.load(tmp_path / "ref.pt")
    for split, items in splits.items():
        chunk = [items[i] for i in (7, 0, 4)]
        batch = collate([s for e in chunk for s in e.sequences], tok.pad_token_id)
        with torch.no_grad():
            want = completion_logprobs(model, batch)
        got = cache.batch(split, chunk, batch.mask.shape[1])
        assert got.shape == want.shape and torch.allclose(got, want, atol=1e-5), split


def test_reference_pass_batches_by_padded_tokens_not_a_fixed_count() -> None:
    from gro_core.data.encode import Example, Sequence
    from gro_core.trainers.reference_cache import token_batches

    def example(length: int, i: int) -> Example:
        pair = (Sequence((1,) * (length - 2), (2, 2)), Sequence((1,) * (length - 2), (3, 3)))
        return Example(pair, {}, i)

    short = [example(10, i) for i in range(100)]  # 200 rows of 10 tokens
    assert [len(b) for b in token_batches(short, 8192)] == [100]
    long = [example(1000, i) for i in range(10)]  # two rows of 1,000 tokens each
    assert [len(b) for b in token_batches(long, 8192)] == [4, 4, 2]
    mixed = sorted([*short[:50], *long[:3]], key=lambda e: e.length)
    batches = token_batches(mixed, 4096)
    assert [e for b in batches for e in b] == mixed  # every example once, in order
    assert all(2 * len(b) * max(e.length for e in b) <= 4096 for b in batches)
    assert token_batches([example(5000, 0)], 4096) == [[example(5000, 0)]]  # one at least


def test_step_metrics_are_weighted_by_micro_batch_whether_floats_or_tensors() -> None:
    parts = [({"a": torch.tensor(1.0), "b": 4.0}, 0.25), ({"a": 3.0, "b": torch.tensor(8.0)}, 0.75)]
    assert weighted_metrics(parts) == {"a": 2.5, "b": 7.0}
    assert weighted_metrics([]) == {}


def test_batches_are_deterministic_complete_and_length_bucketed() -> None:
    lengths = [(i * 7919) % 97 for i in range(1000)]
    a = epoch_batches(lengths, 10, seed=3, epoch=0)
    assert a == epoch_batches(lengths, 10, seed=3, epoch=0)
    assert a != epoch_batches(lengths, 10, seed=3, epoch=1)
    assert sorted(i for b in a for i in b) == list(range(1000))
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in a) / len(a)
    assert spread < 15, "batches should hold similar lengths"
    sampler = StepSampler(lengths, 10, seed=3)
    assert sampler.batch(101) == epoch_batches(lengths, 10, seed=3, epoch=1)[0]


# --- checkpoints ---------------------------------------------------------------------------


def test_checkpoints_are_atomic_and_only_the_last_k_are_kept(tmp_path: Path) -> None:
    model, tok = load_policy(TINY), load_tokenizer(TINY)
    for step in (2, 4, 6):
        save_checkpoint(tmp_path, step, model, tok, {"step": step}, keep=2)
    assert [s for s, _ in checkpoint_dirs(tmp_path)] == [4, 6]

    class Broken(torch.nn.Module):
        def save_pretrained(self, path: Path) -> None:
            Path(path).mkdir()
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(tmp_path, 8, Broken(), None, {"step": 8}, keep=2)
    assert [s for s, _ in checkpoint_dirs(tmp_path)] == [4, 6]
    assert not [p for p in (tmp_path / "checkpoints").iterdir() if p.name.startswith(".")]


# --- the loop ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "task"),
    [
        ("sft", "builtin:arithmetic-sft"),
        ("dpo", "builtin:arithmetic-preference"),
        ("grpo", "builtin:reverse"),  # online, two updates per batch of rollouts
    ],
)
def test_resume_is_bit_identical_to_an_uninterrupted_run(
    tmp_path: Path, method: str, task: str
) -> None:
    spec = load_spec(spec_for(method, task, num_iterations=2 if method == "grpo" else 1))
    whole = tmp_path / "whole"
    run(spec, whole, [JsonlWriter(whole)])

    class StopAfter(Callback):
        def __init__(self, step: int) -> None:
            self.step, self.seen = step, 0

        def on_step_end(self, step: int, total: int, metrics: dict) -> None:
            self.seen = step

        def should_stop(self) -> bool:
            return self.seen >= self.step

    parts = tmp_path / "parts"
    writer = JsonlWriter(parts)
    first = run(spec, parts, [writer, StopAfter(3)])
    writer.close()
    assert first.status == "cancelled" and first.steps == 3
    # Lines the interrupted run wrote after its last checkpoint must not survive a resume.
    second = run(spec, parts, [JsonlWriter(parts)], resume=True)
    assert second.status == "succeeded" and second.steps == 6

    def key(m: dict) -> tuple:
        return (m["step"], m["name"])

    skip = ("perf/", "time/")  # wall-clock measurements differ between any two runs
    a = sorted((m for m in read_metrics(whole) if not m["name"].startswith(skip)), key=key)
    b = sorted((m for m in read_metrics(parts) if not m["name"].startswith(skip)), key=key)
    assert a == b
    wa = load_file(whole / "checkpoints" / "step-6" / "model.safetensors")
    wb = load_file(parts / "checkpoints" / "step-6" / "model.safetensors")
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def test_non_finite_loss_stops_with_the_step_and_keeps_the_last_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gro_core.trainers import offline

    real = offline.SFTObjective.step

    def poisoned(self, model, examples, moments=None):
        loss, metrics, samples = real(self, model, examples, moments)
        calls.append(1)
        return (loss * float("nan") if len(calls) == 5 else loss), metrics, samples

    calls: list[int] = []
    monkeypatch.setattr(offline.SFTObjective, "step", poisoned)
    spec = load_spec(spec_for("sft", "builtin:arithmetic-sft"))
    with pytest.raises(TrainingError, match=r"non-finite loss .* at step 5") as info:
        run(spec, tmp_path, [])
    assert info.value.code == "non_finite" and info.value.step == 5
    assert [s for s, _ in checkpoint_dirs(tmp_path)] == [2, 4]


def test_bad_dataset_fails_before_training_and_names_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "a", "chosen": "b", "rejected": "c"}\n{"prompt": "a"\n')
    spec = load_spec(
        spec_for("dpo", "builtin:arithmetic-preference") | {"data": {"train": str(bad)}}
    )
    with pytest.raises(DataError, match="line 2"):
        run(spec, tmp_path / "out", [])


def test_wrong_dataset_kind_for_the_method_is_refused(tmp_path: Path) -> None:
    sft = tmp_path / "sft.jsonl"
    sft.write_text('{"prompt": "a", "completion": "b"}\n')
    spec = load_spec(
        spec_for("dpo", "builtin:arithmetic-preference") | {"data": {"train": str(sft)}}
    )
    with pytest.raises(DataError, match=r"data\.train.*preference"):
        run(spec, tmp_path / "out", [])


def test_gro_train_cli_writes_the_run_outputs(tmp_path: Path) -> None:
    spec = tmp_path / "job.yaml"
    spec.write_text(json.dumps(spec_for("dpo", "builtin:arithmetic-preference")))
    out = tmp_path / "run"
    assert gro(["train", str(spec), "--out", str(out), "--quiet"]) == 0
    names = {m["name"] for m in read_metrics(out)}
    assert {"loss/value", "gro/weight/mean", "eval/pref_accuracy", "perf/tokens_per_s"} <= names
    # DPO's own loss, −log σ(β·margin): ln 2 while the policy is still the reference, and
    # never negative (the surrogate loss/policy is, which is why it is not what is shown).
    values = [m["value"] for m in read_metrics(out) if m["name"] == "loss/value"]
    assert values[0] == pytest.approx(math.log(2), abs=1e-6)
    assert all(v > 0 for v in values)
    # A built-in task's rows carry the answer, so offline runs report greedy task accuracy too.
    accuracy = [m["value"] for m in read_metrics(out) if m["name"] == "eval/accuracy"]
    assert accuracy and all(0.0 <= a <= 1.0 for a in accuracy)
    sample = json.loads((out / "samples.jsonl").read_text().splitlines()[0])
    assert set(sample) == {"step", "prompt", "completion", "reward", "advantage",
                           "anchor_distance", "weight"}  # fmt: skip
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "succeeded" and summary["steps"] == 6
    assert summary["spec"]["method"] == "dpo" and summary["spec"]["train"]["batch_size"] == 4
    assert [s for s, _ in checkpoint_dirs(out)] == [4, 6]
    assert (out / "reference_logprobs.pt").exists()


def test_gro_train_cli_rejects_a_bad_spec_with_the_key_path(tmp_path: Path, capsys) -> None:
    spec = tmp_path / "job.yaml"
    spec.write_text(json.dumps(spec_for("dpo", "builtin:arithmetic-preference") | {"trian": {}}))
    assert gro(["train", str(spec), "--out", str(tmp_path / "run")]) == 2
    assert "trian" in capsys.readouterr().err


def test_lora_run_trains_adapters_only_and_resumes(tmp_path: Path) -> None:
    doc = spec_for("dpo", "builtin:arithmetic-preference") | {"lora": {"r": 4, "alpha": 8}}
    doc["train"]["steps"] = 4
    result = run(load_spec(doc), tmp_path, [])
    assert result.status == "succeeded"
    last = tmp_path / "checkpoints" / "step-4"
    assert (last / "adapter_model.safetensors").exists()
    assert not (last / "model.safetensors").exists(), "LoRA checkpoints hold the adapters only"
    doc["train"]["steps"] = 6
    again = run(load_spec(doc), tmp_path, [], resume=True)
    assert again.steps == 6


@pytest.mark.parametrize("method", ["rloo", "remax", "grpo", "reinforce_pp", "awr", "gro"])
def test_online_presets_roll_out_score_and_update(tmp_path: Path, method: str) -> None:
    doc = spec_for(method, "builtin:reverse", steps=2)
    doc["eval"] = {"every": 2, "num_prompts": 4}
    # An untrained model never reverses a word; a length reward varies from the first step.
    doc["rewards"] = [{"type": "length_penalty", "target_chars": 3, "scale": 1.0}]
    run(load_spec(doc), tmp_path, [JsonlWriter(tmp_path)])
    names = {m["name"] for m in read_metrics(tmp_path)}
    assert {
        "reward/mean",
        "adv/mean",
        "gro/weight/mean",
        "eval/reward",
        "perf/rollout_s",
        "perf/logprobs_s",
        "reward/length_penalty",
    } <= names
    samples = [json.loads(x) for x in (tmp_path / "samples.jsonl").read_text().splitlines()]
    assert samples and all(s["prompt"].startswith("rev ") for s in samples)
    weights = load_file(tmp_path / "checkpoints" / "step-2" / "model.safetensors")
    initial = load_policy(TINY).state_dict()
    assert any(not torch.equal(weights[k], initial[k]) for k in weights), "no update happened"


def test_online_batches_mix_prompt_lengths(tmp_path: Path) -> None:
    # Offline batches are length-bucketed; prompts for rollouts are not, so a step's prompts
    # are an unbiased draw (bucketed, each step held one word length: a sawtooth reward curve).
    doc = spec_for("grpo", "builtin:reverse", steps=12, batch_size=8)
    trainer = Trainer(load_spec(doc), tmp_path, [], resume=False)
    lengths = [e.length for e in trainer.data.train]
    distinct = [len({lengths[i] for i in trainer.sampler.batch(step)}) for step in range(1, 13)]
    assert sum(distinct) / len(distinct) > 2


@pytest.mark.parametrize("kind", ["preference", "sft"])
def test_offline_mix_puts_offline_rows_into_online_batches(tmp_path: Path, kind: str) -> None:
    from gro_core.tasks import generate
    from gro_core.trainers import Trainer

    rows = tmp_path / "offline.jsonl"
    rows.write_text(
        "".join(json.dumps(r) + "\n" for r in generate(f"arithmetic-{kind}", 32, seed=1))
    )
    doc = spec_for("gro", "builtin:arithmetic", steps=2)
    doc["data"] = {"task": "builtin:arithmetic", "train": str(rows), "offline_mix": 0.5}
    trainer = Trainer(load_spec(doc), tmp_path / "run", [], resume=False)
    groups = trainer._collect(1).items
    assert len(groups) == 4
    offline = groups[2:]  # the last share of each batch comes from the offline rows
    for group in offline:
        if kind == "sft":  # the demonstration joins G - 1 rollouts and is scored like them
            assert len(group.sequences) == 4
            assert group.texts[-1] == group.row["completion"]
            assert group.sequences[-1].reward == 1.0
        else:  # a pair, scored by the task's rule reward: the chosen answer is right
            assert len(group.sequences) == 2
            assert group.texts == [group.row["chosen"], group.row["rejected"]]
            assert [s.reward for s in group.sequences] == [1.0, 0.0]
    assert [g.sequences[0].group for g in groups] == [0, 1, 2, 3]
    trainer.run()


def test_kto_estimates_z0_on_mismatched_pairs_with_the_cached_reference(tmp_path: Path) -> None:
    from gro_core.data.encode import mismatched
    from gro_core.trainers import Trainer

    doc = spec_for("kto", "builtin:arithmetic-unpaired", steps=2)
    trainer = Trainer(load_spec(doc), tmp_path, [], resume=False)
    objective = trainer.objective
    pairs = mismatched(trainer.data.train)
    first, second = trainer.data.train[0], trainer.data.train[1]
    assert pairs[0].sequences[0].prompt_ids == first.sequences[0].prompt_ids
    assert pairs[0].sequences[0].completion_ids == second.sequences[0].completion_ids
    # Before any update the policy is the reference: every log-ratio, so z0, is zero.
    z0 = objective._kl_point(trainer.model, trainer.data.train[:8], "train")
    assert float(z0) == pytest.approx(0.0, abs=1e-5)
    trainer.run()
    z0 = objective._kl_point(trainer.model, trainer.data.train[:8], "train")
    assert float(z0) >= 0.0


def test_weights_broken_by_a_step_are_not_checkpointed_and_the_error_names_the_last_good(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The update of step 4 makes the weights inf after its (finite) loss: the loss check would
    # only see it at step 5, after step 4's checkpoint was listed as the last good one.
    real = Trainer._clip_and_step

    def overflowing(self: Trainer, step: int) -> float:
        norm = real(self, step)
        if step == 4:
            with torch.no_grad():
                self.params[0].fill_(float("inf"))
        return norm

    monkeypatch.setattr(Trainer, "_clip_and_step", overflowing)
    spec = load_spec(spec_for("sft", "builtin:arithmetic-sft"))
    with pytest.raises(TrainingError, match="non-finite weights after step 4") as info:
        run(spec, tmp_path, [])
    assert info.value.code == "non_finite" and info.value.step == 4
    assert "the last good checkpoint is step-2" in str(info.value)
    assert [s for s, _ in checkpoint_dirs(tmp_path)] == [2]


_BATCH_NORMALISED = {
    # The step's reward std (TRL's scale_rewards="batch"); REINFORCE++ whitens its returns,
    # which read the sampling policy's log-probs (its KL): the step computes them first.
    "dapo-batch-scale": ("dapo", {"scale_rewards": "batch"}),
    "reinforce_pp": ("reinforce_pp", {}),
    "rloo-normalized": ("rloo", {"normalize_advantages": True}),
}


@pytest.mark.parametrize("name", list(_BATCH_NORMALISED))
def test_grad_accum_takes_the_step_of_the_whole_batch_when_advantages_use_its_spread(
    tmp_path: Path, name: str
) -> None:
    method, args = _BATCH_NORMALISED[name]
    weights = []
    for accum in (1, 2):
        doc = spec_for(method, "builtin:reverse", steps=2, batch_size=4, grad_accum=accum)
        doc |= {"method_args": args, "eval": {"every": 0}, "checkpoint": {"every": 0, "keep": 1}}
        doc["rewards"] = [{"type": "text_similarity", "field": "answer"}]  # graded, not 0/1
        doc["rollout"] = {"num_generations": 4, "max_new_tokens": 6, "temperature": 1.0}
        out = tmp_path / f"accum-{accum}"
        assert run(load_spec(doc), out, []).status == "succeeded"
        weights.append(load_file(out / "checkpoints" / "step-2" / "model.safetensors"))
    one, two = weights
    moved = load_policy(TINY).state_dict()
    assert any(not torch.allclose(one[k], moved[k]) for k in one)  # training changed them
    for key in one:  # micro-batches normalised alone would move them by ~1e-3
        torch.testing.assert_close(two[key], one[key], atol=2e-6, rtol=1e-5)


def test_ranks_sharing_an_offline_mix_step_collect_what_one_process_does(tmp_path: Path) -> None:
    from gro_core.tasks import generate

    rows = tmp_path / "offline.jsonl"
    # Demonstrations: each joins G - 1 rollouts sampled from its own seed.
    rows.write_text("".join(json.dumps(r) + "\n" for r in generate("arithmetic-sft", 32, seed=1)))
    doc = spec_for("gro", "builtin:arithmetic", steps=2, batch_size=8)
    # 8 places: 6 prompts, then 2 offline rows; a rank of 4 holds prompts and offline rows.
    doc["data"] = {"task": "builtin:arithmetic", "train": str(rows), "offline_mix": 0.25}
    trainer = Trainer(load_spec(doc), tmp_path / "run", [], resume=False)
    prompts = [trainer.data.train[i] for i in trainer.sampler.batch(1)]

    def texts(first: int, size: int) -> list[tuple[str, ...]]:
        share = prompts[first : first + size]
        collected = trainer.objective.collect(trainer.model, 1, share, first, len(prompts))
        return [tuple(g.texts) for g in collected.items]

    one = texts(0, 8)
    assert len(one) == 8
    assert texts(0, 4) + texts(4, 4) == one
    assert texts(0, 2) + texts(2, 2) + texts(4, 2) + texts(6, 2) == one
