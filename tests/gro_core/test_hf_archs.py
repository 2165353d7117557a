"""The architecture matrix: gro on random-weight models of real Hugging Face architectures.

Every model is built locally by `tests.helpers.hf_models` (no downloads) with a byte-level
BPE tokenizer and the habits of its real checkpoints (vocabulary, tied embeddings, sliding
window, eos lists, chat template or none, pad token or none).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from pydantic import ValidationError
from transformers import AutoModelForCausalLM

from gro_core.data.encode import (
    Example,
    Sequence,
    collate,
    completion_logprobs,
    encode_pair,
    encode_prompt,
    encode_records,
)
from gro_core.models import (
    LoraSettings,
    load_policy,
    load_reference,
    load_run_model,
    load_tokenizer,
)
from gro_core.rollout import static_decode
from gro_core.rollout.sampling import RolloutSettings, left_pad, sample
from gro_core.rollout.stopping import model_stop_ids, stop_token_ids
from gro_core.spec import SpecError, load_spec
from gro_core.trainers import JsonlWriter, run
from gro_core.trainers.prompt_sharing import (
    collate_shared,
    scores_shared_rows,
    shared_layout_refusal,
    shares_prompts,
)
from tests.helpers.hf_models import ARCHS, CHAT_ARCHS, encourage_stopping

ARCH_NAMES = list(ARCHS)
ModelDir = Callable[[str], Path]


@pytest.mark.parametrize("arch", ARCH_NAMES)
def test_helper_builds_each_architecture_with_its_habits(hf_model_dir: ModelDir, arch: str) -> None:
    path = hf_model_dir(arch)
    spec = ARCHS[arch]
    model = AutoModelForCausalLM.from_pretrained(path)
    tokenizer = load_tokenizer(path)
    assert model.config.model_type == arch
    assert model.config.vocab_size == spec.vocab_size
    assert model.get_output_embeddings().weight.shape[0] == spec.vocab_size
    tied = model.get_output_embeddings().weight is model.get_input_embeddings().weight
    assert tied == spec.tied
    text = "GRO trains every method as one objective."
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert len(ids) < len(text)  # merges were learnt: BPE, not characters
    assert tokenizer.decode(ids) == text
    eos = model.generation_config.eos_token_id
    assert len(eos if isinstance(eos, list) else [eos]) == len(spec.generation_eos)
    assert bool(tokenizer.chat_template) == (arch in CHAT_ARCHS)
    assert tokenizer.pad_token_id is not None  # load_tokenizer falls back to eos
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits
    assert logits.shape == (1, len(ids), spec.vocab_size)


# --- stopping like generate ----------------------------------------------------------------

WORDS = ["the", "model", "trains", "every", "method", "as", "one", "objective"]
WORDS += ["with", "rewards", "and", "groups"]


def _prompts(tokenizer, n: int = 10) -> list[list[int]]:
    texts = [" ".join(WORDS[i : i + 3 + i % 4]) for i in range(n)]
    if tokenizer.chat_template:
        return [encode_prompt(tokenizer, [{"role": "user", "content": t}]) for t in texts]
    return [encode_prompt(tokenizer, t) for t in texts]


def _until_end(row: list[int], ends: set[int]) -> list[int]:
    for at, token in enumerate(row):
        if token in ends:
            return row[: at + 1]
    return row


@pytest.fixture(scope="module")
def stopping_model(hf_model_dir: ModelDir) -> Callable[[str], tuple]:
    """Per architecture: (model whose extra end ids are sometimes greedy, tokenizer, prompts,
    the end ids changed)."""
    made: dict[str, tuple] = {}

    def get(arch: str) -> tuple:
        if arch not in made:
            path = hf_model_dir(arch)
            model = AutoModelForCausalLM.from_pretrained(path)
            tokenizer = load_tokenizer(path)
            prompts = _prompts(tokenizer)
            ids, attention = left_pad(prompts, tokenizer.pad_token_id)
            changed = encourage_stopping(model, ids, attention, NEW_TOKENS)
            made[arch] = (model, tokenizer, prompts, changed)
        return made[arch]

    return get


NEW_TOKENS = 16


@pytest.mark.slow
@pytest.mark.parametrize("arch", ARCH_NAMES)
def test_greedy_rollouts_stop_where_generate_stops(stopping_model, arch: str) -> None:
    model, tokenizer, prompts, changed = stopping_model(arch)
    ids, attention = left_pad(prompts, tokenizer.pad_token_id)
    with torch.no_grad():
        out = model.generate(
            input_ids=ids,
            attention_mask=attention,
            max_new_tokens=NEW_TOKENS,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
        )[:, ids.shape[1] :]
    ends = set(model_stop_ids(model, tokenizer))
    want = [_until_end(row, ends) for row in out.tolist()]
    got = sample(model, tokenizer, prompts, 1, RolloutSettings(NEW_TOKENS, greedy=True))
    assert got.completion_ids == want
    # The test means something: some rows end on an id only generation_config names.
    assert any(row[-1] in changed for row in want)


def test_stop_ids_are_the_generation_configs_and_the_tokenizers(hf_model_dir: ModelDir) -> None:
    path = hf_model_dir("gemma2")
    model = AutoModelForCausalLM.from_pretrained(path)
    tokenizer = load_tokenizer(path)
    end_of_turn = tokenizer.convert_tokens_to_ids("<end_of_turn>")
    assert model_stop_ids(model, tokenizer) == (tokenizer.eos_token_id, end_of_turn)
    assert stop_token_ids(None, tokenizer) == (tokenizer.eos_token_id,)


# --- chat data ------------------------------------------------------------------------------


@pytest.mark.parametrize("arch", CHAT_ARCHS)
def test_chat_targets_end_exactly_as_the_template_ends_a_turn(
    hf_model_dir: ModelDir, arch: str
) -> None:
    tokenizer = load_tokenizer(hf_model_dir(arch))
    prompt = [{"role": "user", "content": "2+2?"}]
    reply = [{"role": "assistant", "content": "4"}]
    prompt_ids, completion_ids = encode_pair(tokenizer, prompt, reply, 256)
    whole = tokenizer.apply_chat_template([*prompt, *reply], tokenize=False)
    assert tokenizer.decode([*prompt_ids, *completion_ids]) == whole
    (record,) = encode_records(tokenizer, "sft", [{"prompt": prompt, "completion": reply}], 256)
    assert record.sequences[0].completion_ids == completion_ids
    # A string completion still gets the eos that ends it.
    _, text_ids = encode_pair(tokenizer, "2+2?", " 4", 256)
    assert text_ids[-1] == tokenizer.eos_token_id


# --- LoRA per architecture ------------------------------------------------------------------

# One attention and one MLP projection of each architecture, under its own names.
PROJECTIONS = {
    "llama": ("q_proj", "down_proj"),
    "qwen2": ("v_proj", "up_proj"),
    "qwen3": ("k_proj", "gate_proj"),
    "gemma2": ("o_proj", "down_proj"),
    "phi3": ("qkv_proj", "gate_up_proj"),
    "mistral": ("q_proj", "down_proj"),
    "gpt_neox": ("query_key_value", "dense_4h_to_h"),
    "gpt2": ("c_attn", "c_fc"),
}


@pytest.mark.parametrize("arch", ARCH_NAMES)
def test_default_lora_adapts_attention_and_mlp_projections(
    hf_model_dir: ModelDir, arch: str
) -> None:
    model = load_policy(hf_model_dir(arch), lora=LoraSettings(r=2), device="cpu")
    adapted = {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if hasattr(m, "lora_A")}
    assert set(PROJECTIONS[arch]) <= adapted
    assert "lm_head" not in adapted and "embed_out" not in adapted
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)


def test_lora_targets_matching_no_module_are_refused_with_the_modules_it_has(
    hf_model_dir: ModelDir,
) -> None:
    with pytest.raises(ValueError, match="match no module of this gpt2 model") as err:
        load_policy(hf_model_dir("gpt2"), lora=LoraSettings(target_modules=["q_proj", "v_proj"]))
    assert "c_attn" in str(err.value) and "c_fc" in str(err.value)
    # A list that names some of the model's modules is peft's to apply.
    model = load_policy(hf_model_dir("gpt2"), lora=LoraSettings(target_modules=["c_attn", "x"]))
    assert any(hasattr(m, "lora_A") for m in model.modules())


# --- layouts the model's attention cannot honour --------------------------------------------


def _long_groups(vocab: int, prompt: int, completion: int) -> list[tuple]:
    gen = torch.Generator().manual_seed(3)
    ids = torch.randint(10, min(vocab, 400), (prompt + 2 * completion,), generator=gen).tolist()
    head = tuple(ids[:prompt])
    return [
        (
            Sequence(head, tuple(ids[prompt : prompt + completion])),
            Sequence(head, tuple(ids[prompt + completion :])),
        )
    ]


def test_sliding_window_refuses_shared_rows_from_the_config(hf_model_dir: ModelDir) -> None:
    """Gemma2 (window 8): a probe on short groups passes, longer ones disagree by nats, so
    the config alone decides, before any probe."""
    model = AutoModelForCausalLM.from_pretrained(hf_model_dir("gemma2")).eval()
    short = _long_groups(1024, 2, 2)  # rows of 6 tokens: inside the window
    long = _long_groups(1024, 6, 10)  # rows of 26
    with torch.no_grad():
        shared = completion_logprobs(model, collate_shared(long, 0))
        plain = completion_logprobs(model, collate(list(long[0]), 0))
    assert (shared - plain).abs().max() > 0.05  # the layout really is wrong past the window
    assert "sliding window (8)" in shared_layout_refusal(model)
    examples = [Example(g, {}, i) for i, g in enumerate(short)]
    assert not shares_prompts(model, examples, 0)
    assert not scores_shared_rows(model, short, 0)


def test_a_window_wider_than_every_row_keeps_shared_rows(hf_model_dir: ModelDir) -> None:
    model = AutoModelForCausalLM.from_pretrained(hf_model_dir("mistral"))
    assert shared_layout_refusal(model) is None  # no window (Mistral v0.2 and later)
    model.config.sliding_window = 4096  # Mistral v0.1: wider than any shared row
    assert shared_layout_refusal(model) is None
    assert shared_layout_refusal(model, longest_row=5000) is not None
    model.config.sliding_window = 16
    assert "sliding window (16)" in shared_layout_refusal(model)
    for arch in ("llama", "qwen2", "qwen3", "phi3", "gpt_neox", "gpt2"):
        assert (
            shared_layout_refusal(AutoModelForCausalLM.from_pretrained(hf_model_dir(arch))) is None
        )


# --- dropout and the model_options keys -----------------------------------------------------


def _gpt2_batch():
    seqs = [Sequence((5, 6, 7, 8), (9, 10, 11)), Sequence((12, 13), (14, 15, 16, 17))]
    return collate(seqs, 0)


def test_dropout_is_off_in_training_unless_kept(hf_model_dir: ModelDir) -> None:
    """GPT-2 ships with dropout 0.1: a policy in train mode scored like its reference
    (kl/ref 0 before any update) only with it off."""
    path = hf_model_dir("gpt2")
    policy = load_policy(path, device="cpu").train()
    reference = load_reference(policy)
    batch = _gpt2_batch()
    with reference.scoring() as ref:
        want = completion_logprobs(ref, batch)
    torch.manual_seed(0)
    torch.testing.assert_close(completion_logprobs(policy, batch), want)
    kept = load_policy(path, device="cpu", dropout=True).train()
    assert not torch.allclose(completion_logprobs(kept, batch), want)


def test_model_options_reach_the_loaded_model(hf_model_dir: ModelDir, tmp_path: Path) -> None:
    document = {
        "model": str(hf_model_dir("qwen3")),
        "method": "sft",
        "data": {"train": str(tmp_path / "train.jsonl")},
        "model_options": {
            "dtype": "bfloat16",
            "attention": "eager",
            "gradient_checkpointing": True,
        },
    }
    (tmp_path / "train.jsonl").write_text('{"prompt": "a", "completion": "b"}\n')
    spec = load_spec(document)
    model = load_run_model(spec, None, device="cpu")
    assert next(model.parameters()).dtype == torch.bfloat16
    assert model.config._attn_implementation == "eager"
    assert model.is_gradient_checkpointing
    assert load_spec({**document, "model_options": {}}).model_options.dtype == "auto"
    with pytest.raises((ValidationError, SpecError), match=r"model_options\.dtype"):
        load_spec({**document, "model_options": {"dtype": "int8"}})


# --- the static decoding loop ---------------------------------------------------------------

STATIC_ARCHS = ("llama", "mistral", "qwen2", "qwen3")


def test_static_loop_drives_llama_style_architectures_only(hf_model_dir: ModelDir) -> None:
    for arch in ARCH_NAMES:
        model = AutoModelForCausalLM.from_pretrained(hf_model_dir(arch))
        assert static_decode.supports(model) == (arch in STATIC_ARCHS), arch
    mistral = AutoModelForCausalLM.from_pretrained(hf_model_dir("mistral"))
    mistral.config.sliding_window = 16  # a window the static loop does not apply
    assert not static_decode.supports(mistral)


@pytest.mark.slow
@pytest.mark.parametrize("arch", STATIC_ARCHS)
def test_static_and_generic_loops_both_equal_generate(
    stopping_model, arch: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    model, tokenizer, prompts, _ = stopping_model(arch)
    ids, attention = left_pad(prompts, tokenizer.pad_token_id)
    with torch.no_grad():
        out = model.generate(
            input_ids=ids.repeat_interleave(2, 0),
            attention_mask=attention.repeat_interleave(2, 0),
            max_new_tokens=NEW_TOKENS,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
        )[:, ids.shape[1] :]
    ends = set(model_stop_ids(model, tokenizer))
    want = [_until_end(row, ends) for row in out.tolist()]
    settings = RolloutSettings(NEW_TOKENS, greedy=True)
    calls: list[bool] = []
    real = static_decode.decode
    monkeypatch.setattr(static_decode, "decode", lambda *a: calls.append(True) or real(*a))
    static = sample(model, tokenizer, prompts, 2, settings)
    assert calls  # the static loop ran
    monkeypatch.setattr(static_decode, "supports", lambda _model: False)
    generic = sample(model, tokenizer, prompts, 2, settings)
    assert static.completion_ids == want == generic.completion_ids
    for a, b in zip(static.logprobs, generic.logprobs, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


# --- every method on every architecture -----------------------------------------------------

QUESTIONS = [("2+2?", "4", "5"), ("Capital of France?", "Paris", "Rome"), ("3*3?", "9", "6")]
QUESTIONS += [("Colour of the sky?", "blue", "green")]


def _prompt(arch: str, question: str) -> str | list[dict]:
    return [{"role": "user", "content": question}] if arch in CHAT_ARCHS else question


def _answer(arch: str, text: str) -> str | list[dict]:
    return [{"role": "assistant", "content": text}] if arch in CHAT_ARCHS else f" {text}"


def _rows(arch: str, method: str) -> list[dict]:
    rows = []
    for question, good, bad in QUESTIONS:
        prompt = _prompt(arch, question)
        if method == "sft":
            rows.append({"prompt": prompt, "completion": _answer(arch, good)})
        elif method == "dpo":
            chosen, rejected = _answer(arch, good), _answer(arch, bad)
            rows.append({"prompt": prompt, "chosen": chosen, "rejected": rejected})
        else:
            rows.append({"prompt": prompt})
    return rows


def _job(arch: str, method: str, path: Path, tmp: Path, lora: bool) -> dict:
    data = tmp / f"{method}.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in _rows(arch, method)))
    spec = {
        "model": str(path),
        "method": method,
        "data": {"train": str(data)},
        "rollout": {"num_generations": 2, "max_new_tokens": 6},
        "train": {"steps": 2, "batch_size": 2, "lr": 1e-2, "warmup_steps": 0},
        "eval": {"every": 0},
        "checkpoint": {"every": 0, "keep": 1},
    }
    if method in ("grpo", "gro"):
        spec["rewards"] = [{"type": "length_penalty", "target_chars": 8}]
    if lora:
        spec["lora"] = {"r": 2}
    return spec


MATRIX = [(a, m, False) for a in ARCH_NAMES for m in ("sft", "dpo", "grpo", "gro")]
MATRIX += [(a, "grpo" if i % 2 else "dpo", True) for i, a in enumerate(ARCH_NAMES)]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("arch", "method", "lora"), MATRIX, ids=[f"{a}-{m}{'-lora' * lo}" for a, m, lo in MATRIX]
)
def test_each_method_trains_each_architecture(
    hf_model_dir: ModelDir, tmp_path: Path, arch: str, method: str, lora: bool
) -> None:
    spec = load_spec(_job(arch, method, hf_model_dir(arch), tmp_path, lora))
    out = tmp_path / "run"
    result = run(spec, out, callbacks=[JsonlWriter(out)])
    assert result.status == "succeeded" and result.steps == 2
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    losses = [m["value"] for m in metrics if m["name"].startswith("loss")]
    assert losses and all(math.isfinite(x) for x in losses)
    kl = [m["value"] for m in metrics if m["name"] == "kl/ref" and m["step"] == 1]
    # Where the method logs it: no dropout, so the policy is its reference before an update.
    assert all(abs(v) < 1e-4 for v in kl)
