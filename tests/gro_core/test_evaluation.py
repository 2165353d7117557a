"""Evaluation: pass@k, diversity, evaluate_policy on a tiny model, evaluate_run, `gro eval`."""

from __future__ import annotations

import itertools
import json
from fractions import Fraction
from pathlib import Path

import pytest
import torch

from gro_core.cli import main as gro
from gro_core.data.encode import encode_prompts
from gro_core.evaluation.metrics import bigram_jaccard, distinct_n, pairwise_similarity, pass_at_k
from gro_core.evaluation.policy import evaluate_policy
from gro_core.evaluation.runs import evaluate_run
from gro_core.models import load_policy, load_tokenizer
from gro_core.rewards import RewardScorer, ScoredFunction, build_scorer
from gro_core.spec import load_spec
from gro_core.tasks import generate
from gro_core.trainers import run

TINY = "builtin:tiny-llama"
METRICS = {
    "eval/reward",
    "eval/accuracy",
    "eval/reward/task",
    "eval/reward_sampled",
    "eval/pass@1",
    "eval/pass@4",
    "eval/kl_ref",
    "eval/kl_ref_per_token",
    "eval/distinct_1",
    "eval/distinct_2",
    "eval/pairwise_similarity",
    "eval/length",
}


def _cache_dir(factory: pytest.TempPathFactory) -> str:
    return str(factory.getbasetemp() / "gro-cache")


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRO_CACHE_DIR", _cache_dir(tmp_path_factory))


# --- pass@k ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("c", "k", "expected"),
    [
        # k = 1: the share of correct samples.
        *((c, 1, c / 4) for c in range(5)),
        # k = n: any correct sample among all four.
        (0, 4, 0.0), (1, 4, 1.0), (2, 4, 1.0), (3, 4, 1.0), (4, 4, 1.0),
        # k = 2, c = 1: 1 − C(3, 2)/C(4, 2) = 1 − 3/6.
        (1, 2, 0.5),
    ],
)  # fmt: skip
def test_pass_at_k_matches_hand_computed_values(c: int, k: int, expected: float) -> None:
    assert pass_at_k(4, c, k) == pytest.approx(expected)


def test_pass_at_k_equals_enumerating_every_subset_of_k_samples() -> None:
    for n in range(1, 7):
        for c in range(n + 1):
            samples = [True] * c + [False] * (n - c)
            for k in range(1, n + 1):
                subsets = list(itertools.combinations(samples, k))
                hits = Fraction(sum(any(s) for s in subsets), len(subsets))
                assert pass_at_k(n, c, k) == pytest.approx(float(hits)), (n, c, k)


def test_pass_at_k_refuses_impossible_counts() -> None:
    with pytest.raises(ValueError, match="k <= n"):
        pass_at_k(4, 1, 5)
    with pytest.raises(ValueError, match="c <= n"):
        pass_at_k(4, 5, 1)


# --- diversity ---------------------------------------------------------------------------------


def test_identical_completions_have_low_distinct_n_and_similarity_one() -> None:
    same = [[5, 6, 7]] * 4
    assert distinct_n(same, 1) == pytest.approx(3 / 12)
    assert distinct_n(same, 2) == pytest.approx(2 / 8)
    assert pairwise_similarity(same) == 1.0


def test_completions_sharing_nothing_have_distinct_one_and_similarity_zero() -> None:
    different = [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
    assert distinct_n(different, 1) == 1.0
    assert distinct_n(different, 2) == 1.0
    assert pairwise_similarity(different) == 0.0


def test_similarity_is_the_jaccard_of_token_bigrams() -> None:
    # {12, 23} vs {23, 34}: one shared of three.
    assert bigram_jaccard([1, 2, 3], [2, 3, 4]) == pytest.approx(1 / 3)
    # Pairs: (a, a) = 1, (a, b) = 1/3, (a, b) = 1/3.
    assert pairwise_similarity([[1, 2, 3], [1, 2, 3], [2, 3, 4]]) == pytest.approx(5 / 9)
    assert bigram_jaccard([], []) == 1.0 and bigram_jaccard([1], [2]) == 0.0
    assert distinct_n([[1, 1, 2], [1]], 1) == pytest.approx(2 / 4)
    assert distinct_n([[1]], 2) == 0.0  # no bigram at all


# --- evaluate_policy ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def policy(tmp_path_factory: pytest.TempPathFactory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GRO_CACHE_DIR", _cache_dir(tmp_path_factory))
        tok, model = load_tokenizer(TINY), load_policy(TINY)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():  # a random init predicts one token forever: perturb it
        for p in model.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=gen))
    rows = generate("builtin:reverse", 4, seed=0, split="eval")
    return model, tok, encode_prompts(tok, rows, 64), rows


def _evaluate(policy, scorer=None, **options) -> dict[str, float]:
    model, tok, examples, rows = policy
    scorer = scorer or build_scorer([], task="builtin:reverse", eos=tok.eos_token)
    options = {"num_generations": 4, "max_new_tokens": 6} | options
    return evaluate_policy(model, tok, examples, rows, scorer, **options)


def test_evaluate_policy_reports_every_metric_and_is_seeded(policy) -> None:
    model = policy[0]
    metrics = _evaluate(policy, reference=model, seed=1)
    assert set(metrics) == METRICS
    assert metrics == _evaluate(policy, reference=model, seed=1)
    assert metrics != _evaluate(policy, reference=model, seed=2)
    assert 0 < metrics["eval/length"] <= 6
    assert 0 < metrics["eval/distinct_1"] <= 1 and 0 <= metrics["eval/pairwise_similarity"] <= 1


def test_kl_to_the_policy_itself_is_zero_and_to_another_model_is_not(policy) -> None:
    model = policy[0]
    assert abs(_evaluate(policy, reference=model)["eval/kl_ref"]) < 1e-4
    other = load_policy(TINY)  # the unperturbed weights
    kl = _evaluate(policy, reference=other)
    assert kl["eval/kl_ref"] > 1.0
    assert kl["eval/kl_ref_per_token"] == pytest.approx(kl["eval/kl_ref"] / kl["eval/length"])


def test_pass_at_1_is_the_mean_of_a_zero_one_reward(policy) -> None:
    def odd_length(completions: list[str], rows: list[dict]) -> list[float]:
        return [float(len(c) % 2) for c in completions]

    scorer = RewardScorer([ScoredFunction("reward/odd", "test", 1.0, odd_length)])
    metrics = _evaluate(policy, scorer)
    assert 0 < metrics["eval/reward_sampled"] < 1, "both outcomes should occur"
    assert metrics["eval/pass@1"] == pytest.approx(metrics["eval/reward_sampled"])
    assert metrics["eval/pass@1"] < metrics["eval/pass@4"] <= 1
    assert metrics["eval/reward/odd"] == metrics["eval/reward"]
    assert "eval/kl_ref" not in metrics  # no reference given


def test_evaluate_policy_refuses_a_k_above_the_samples(policy) -> None:
    with pytest.raises(ValueError, match="pass@k"):
        _evaluate(policy, ks=(1, 8))


# --- evaluate_run and `gro eval` ---------------------------------------------------------------


def _spec_doc(method: str, task: str) -> dict:
    return {
        "model": TINY,
        "method": method,
        "data": {"task": task},
        "rollout": {"num_generations": 2, "max_new_tokens": 4},
        "train": {"steps": 2, "batch_size": 4, "lr": 1e-2, "warmup_steps": 0},
        "eval": {"every": 0, "num_prompts": 3},
        "checkpoint": {"every": 0, "keep": 1},
    }


@pytest.fixture(scope="module")
def sft_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sft-run")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GRO_CACHE_DIR", _cache_dir(tmp_path_factory))
        run(load_spec(_spec_doc("sft", "builtin:reverse-sft")), out, [])
    return out


def test_evaluate_run_on_a_spec_evaluates_its_starting_model(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_text(json.dumps(_spec_doc("grpo", "builtin:reverse")))
    metrics = evaluate_run(str(path))
    assert {"eval/reward", "eval/pass@2", "eval/kl_ref", "eval/distinct_2"} <= set(metrics)
    assert metrics["eval/kl_ref"] == pytest.approx(0.0, abs=1e-4)  # its own reference
    assert metrics["eval/length"] <= 4


def test_evaluate_run_on_a_checkpoint_and_on_its_run_directory_agree(sft_run: Path) -> None:
    checkpoint = sft_run / "checkpoints" / "step-2"
    metrics = evaluate_run(str(checkpoint))
    assert {"eval/reward", "eval/pass@1", "eval/pass@2", "eval/kl_ref"} <= set(metrics)
    assert metrics["eval/kl_ref"] > 0.1, "two SFT steps at lr 1e-2 move the policy"
    assert evaluate_run(str(sft_run)) == metrics
    more = evaluate_run(str(sft_run), num_prompts=5, num_generations=3, with_reference=False)
    assert "eval/pass@3" in more and "eval/kl_ref" not in more


def test_gro_eval_prints_one_row_per_target(tmp_path: Path, sft_run: Path, capsys) -> None:
    spec = tmp_path / "job.yaml"
    spec.write_text(json.dumps(_spec_doc("sft", "builtin:reverse-sft")))
    args = ["eval", str(spec), str(sft_run), "--num-prompts", "2", "--max-new-tokens", "3"]
    assert gro(args) == 0
    header, *rows = capsys.readouterr().out.strip().splitlines()
    assert header.split()[:3] == ["target", "reward", "accuracy"]
    assert [r.split()[0] for r in rows] == [str(spec), str(sft_run)]
    assert gro([*args, "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert [r["target"] for r in results] == [str(spec), str(sft_run)]
    assert results[0]["metrics"]["eval/kl_ref"] == pytest.approx(0.0, abs=1e-4)


def test_gro_eval_fails_on_a_directory_without_checkpoints(tmp_path: Path, capsys) -> None:
    assert gro(["eval", str(tmp_path)]) == 1
    assert "checkpoint" in capsys.readouterr().err
