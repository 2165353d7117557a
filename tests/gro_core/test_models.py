"""Tests for gro_core.models: builtins and their cache, loading, LoRA, the reference, rewards.

Models load with device="cpu" so that the comparisons below hold on CUDA machines too.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from gro_core.models import (
    BUILTIN_MODELS,
    LoraSettings,
    Reference,
    build_char_tokenizer,
    count_parameters,
    load_policy,
    load_reference,
    load_reward_model,
    load_tokenizer,
    pick_device,
    pick_dtype,
    resolve_model,
)
from gro_core.models import builtin as builtin_module

PRINTABLE = "".join(chr(code) for code in range(32, 127)) + "\n\t"
TINY = "builtin:tiny-llama"


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One tiny-llama build shared by the tests that only read it."""
    return resolve_model(TINY, tmp_path_factory.mktemp("cache"))


def _input_ids(tokenizer, texts: list[str]) -> dict[str, torch.Tensor]:
    return dict(tokenizer(texts, return_tensors="pt", padding=True))


def _logits(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    with torch.no_grad():
        return model(**batch).logits


# --- the character tokenizer -------------------------------------------------------------------


def test_char_tokenizer_round_trips_printable_ascii_without_unk() -> None:
    tokenizer = build_char_tokenizer()
    rng = random.Random(0)
    texts = [PRINTABLE, "  two  spaces\n\nand lines\n", *("".join(rng.choices(PRINTABLE, k=200)),)]
    for text in texts:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        assert len(ids) == len(text)  # one token per character
        assert tokenizer.unk_token_id not in ids
        assert tokenizer.decode(ids) == text


def test_char_tokenizer_adds_bos_but_not_eos() -> None:
    tokenizer = build_char_tokenizer()
    ids = tokenizer("hi")["input_ids"]
    assert ids[0] == tokenizer.bos_token_id
    assert len(ids) == 3
    assert tokenizer.decode(ids, skip_special_tokens=True) == "hi"


def test_chat_template_renders_and_encodes() -> None:
    tokenizer = build_char_tokenizer()
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": "4"},
    ]
    prompt = tokenizer.apply_chat_template(
        messages[:-1], tokenize=False, add_generation_prompt=True
    )
    assert prompt == "<bos><|system|>\nBe brief.<eos><|user|>\n2+2?<eos><|assistant|>\n"
    # The full conversation extends the prompt by the answer and <eos>: prompts split cleanly.
    full = tokenizer.apply_chat_template(messages, tokenize=False)
    assert full == prompt + "4<eos>"
    ids = tokenizer(full, add_special_tokens=False)["input_ids"]
    assert ids.count(tokenizer.bos_token_id) == 1
    assert ids.count(tokenizer.eos_token_id) == 3
    assert tokenizer.unk_token_id not in ids


# --- builtins and their cache ------------------------------------------------------------------


def test_builtin_parameter_counts(tmp_path: Path) -> None:
    tiny = AutoModelForCausalLM.from_pretrained(resolve_model(TINY, tmp_path))
    small = AutoModelForCausalLM.from_pretrained(resolve_model("builtin:small-llama", tmp_path))
    assert count_parameters(tiny) == 439_552
    assert 400_000 <= count_parameters(tiny) <= 600_000
    assert 22_000_000 <= count_parameters(small) <= 28_000_000


def test_builtin_is_identical_across_cache_dirs(tmp_path: Path) -> None:
    first = Path(resolve_model(TINY, tmp_path / "a"))
    torch.manual_seed(1234)  # the global seed must not matter
    second = Path(resolve_model(TINY, tmp_path / "b"))
    weights_a = load_file(first / "model.safetensors")
    weights_b = load_file(second / "model.safetensors")
    assert weights_a.keys() == weights_b.keys()
    for key, tensor in weights_a.items():
        assert torch.equal(tensor, weights_b[key]), key
    assert (first / "tokenizer.json").read_bytes() == (second / "tokenizer.json").read_bytes()


def test_builtin_build_leaves_global_rng_alone(tmp_path: Path) -> None:
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    resolve_model(TINY, tmp_path)
    assert torch.equal(torch.rand(3), expected)


def test_second_resolve_reuses_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = Path(resolve_model(TINY, tmp_path))
    mtime = (path / "model.safetensors").stat().st_mtime_ns

    def no_rebuild(*args: object) -> None:
        raise AssertionError("rebuilt a cached builtin")

    monkeypatch.setattr(builtin_module, "_write_builtin", no_rebuild)
    assert resolve_model(TINY, tmp_path) == str(path)
    assert (path / "model.safetensors").stat().st_mtime_ns == mtime


def test_cache_is_readable_by_whoever_may_read_its_dir(tmp_path: Path) -> None:
    path = Path(resolve_model(TINY, tmp_path))
    (tmp_path / "plain").mkdir()  # what the umask gives a new directory
    dir_readable = path.stat().st_mode & 0o444
    assert dir_readable == (tmp_path / "plain").stat().st_mode & 0o444
    for file in path.iterdir():
        assert file.stat().st_mode & 0o444 == dir_readable, file.name


def test_cache_dir_defaults_to_env_var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRO_CACHE_DIR", str(tmp_path))
    assert resolve_model(TINY) == str(tmp_path / "models" / "tiny-llama")


def test_stale_cache_is_rebuilt(tmp_path: Path) -> None:
    path = Path(resolve_model(TINY, tmp_path))
    marker = path / "gro_builtin.json"
    marker.write_text(json.dumps({"name": "tiny-llama", "format": -1}))
    (path / "model.safetensors").unlink()
    assert resolve_model(TINY, tmp_path) == str(path)
    assert (path / "model.safetensors").exists()
    assert json.loads(marker.read_text())["format"] != -1


def test_race_keeps_the_other_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_write = builtin_module._write_builtin
    target = tmp_path / "models" / "tiny-llama"

    def write_while_another_process_finishes(name, spec, out_dir: Path) -> None:
        real_write(name, spec, out_dir)
        # The other process renames its complete build into place just before we do.
        other = tmp_path / "models" / "other-build"
        real_write(name, spec, other)
        (other / "theirs").touch()
        other.rename(target)

    monkeypatch.setattr(builtin_module, "_write_builtin", write_while_another_process_finishes)
    assert resolve_model(TINY, tmp_path) == str(target)
    assert (target / "theirs").exists()
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["tiny-llama"]


def test_other_names_are_returned_unchanged(tmp_path: Path) -> None:
    assert resolve_model("meta-llama/Llama-3.2-1B", tmp_path) == "meta-llama/Llama-3.2-1B"
    assert resolve_model(tmp_path / "my-model") == str(tmp_path / "my-model")


def test_unknown_builtin_is_refused_with_the_known_names(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="builtin:tiny-llama") as err:
        resolve_model("builtin:huge-llama", tmp_path)
    assert all(f"builtin:{name}" in str(err.value) for name in BUILTIN_MODELS)


def test_builtin_dir_loads_with_plain_from_pretrained(tiny_dir: str) -> None:
    plain = AutoModelForCausalLM.from_pretrained(tiny_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_dir)
    policy = load_policy(tiny_dir, device="cpu")
    assert plain.config.vocab_size == len(tokenizer)
    assert plain.config.max_position_embeddings >= 1024
    assert plain.config.pad_token_id == tokenizer.pad_token_id
    for (name, theirs), ours in zip(
        plain.state_dict().items(), policy.state_dict().values(), strict=True
    ):
        assert torch.equal(theirs, ours), name


# --- tokenizer, device and dtype ---------------------------------------------------------------


def test_load_tokenizer_pads_on_the_right_with_pad(tiny_dir: str) -> None:
    tokenizer = load_tokenizer(tiny_dir)
    assert tokenizer.pad_token == "<pad>"
    assert tokenizer.padding_side == "right"
    ids = tokenizer(["a", "abc"], padding=True)["input_ids"]
    assert ids[0][-1] == tokenizer.pad_token_id


def test_load_tokenizer_falls_back_to_eos_for_padding(tmp_path: Path) -> None:
    tokenizer = build_char_tokenizer()
    tokenizer.pad_token = None
    tokenizer.save_pretrained(tmp_path)
    assert load_tokenizer(tmp_path).pad_token == "<eos>"


def test_pick_device() -> None:
    assert pick_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert pick_device("auto").type == expected
    with pytest.raises(ValueError, match="unknown device"):
        pick_device("abacus")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_pick_device_refuses_missing_cuda() -> None:
    with pytest.raises(ValueError, match="CUDA is not available"):
        pick_device("cuda:1")


def test_pick_dtype() -> None:
    assert pick_dtype("auto", torch.device("cpu")) == torch.float32
    assert pick_dtype("bfloat16", "cpu") == torch.bfloat16
    assert pick_dtype("float16", "cpu") == torch.float16
    assert pick_dtype("float32", "cuda") == torch.float32
    with pytest.raises(ValueError, match="unknown dtype"):
        pick_dtype("float8", "cpu")


def test_load_policy_honours_dtype(tiny_dir: str) -> None:
    policy = load_policy(tiny_dir, device="cpu", dtype="bfloat16")
    assert all(p.dtype == torch.bfloat16 for p in policy.parameters())


# --- LoRA, gradient checkpointing and the reference --------------------------------------------


def test_lora_trains_only_the_adapters(tiny_dir: str) -> None:
    policy = load_policy(tiny_dir, device="cpu", lora=LoraSettings(r=4))
    trainable = [name for name, p in policy.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in name for name in trainable)
    # Every linear layer but the head (all-linear): four attention projections (h -> h) and
    # three MLP ones (h <-> i) per layer; A is r x fan-in, B fan-out x r.
    spec = BUILTIN_MODELS["tiny-llama"]
    h, i = spec.hidden_size, spec.intermediate_size
    expected = spec.num_layers * 4 * (4 * 2 * h + 3 * (h + i))
    assert count_parameters(policy, trainable_only=True) == expected


def test_lora_settings_refuse_bad_values() -> None:
    with pytest.raises(ValueError, match=r"lora\.r"):
        LoraSettings(r=0)
    with pytest.raises(ValueError, match=r"lora\.dropout"):
        LoraSettings(dropout=1.0)


def test_lora_reference_is_the_base_model(tiny_dir: str) -> None:
    tokenizer = load_tokenizer(tiny_dir)
    batch = _input_ids(tokenizer, ["the base model", "x"])
    base_logits = _logits(load_policy(tiny_dir, device="cpu"), batch)
    policy = load_policy(tiny_dir, device="cpu", lora=LoraSettings())
    reference = load_reference(policy)
    assert reference.adapters_disabled
    # LoRA starts as the identity: policy and reference both equal the base.
    torch.testing.assert_close(_logits(policy, batch), base_logits)
    with torch.no_grad():
        for name, param in policy.named_parameters():
            if "lora_B" in name:
                param.add_(0.5)
    policy_logits = _logits(policy, batch)
    assert not torch.allclose(policy_logits, base_logits, atol=1e-3)
    with reference.scoring() as model:
        assert model is policy  # no second copy
        torch.testing.assert_close(model(**batch).logits, base_logits)
    # Adapters are back on after scoring.
    torch.testing.assert_close(_logits(policy, batch), policy_logits)


def test_separate_reference_is_frozen_and_independent(tiny_dir: str) -> None:
    tokenizer = load_tokenizer(tiny_dir)
    batch = _input_ids(tokenizer, ["an independent copy"])
    policy = load_policy(tiny_dir, device="cpu")
    reference = load_reference(policy)
    before = _logits(policy, batch)
    with torch.no_grad():
        for param in policy.parameters():
            param.mul_(1.5)
    assert not torch.allclose(_logits(policy, batch), before, atol=1e-3)
    with reference.scoring() as model:
        assert model is not policy
        assert not any(p.requires_grad for p in model.parameters())
        torch.testing.assert_close(model(**batch).logits, before)


def test_reference_from_another_model_matches_policy_dtype(tiny_dir: str) -> None:
    policy = load_policy(tiny_dir, device="cpu", dtype="bfloat16", lora=LoraSettings())
    reference = load_reference(policy, tiny_dir)
    assert not reference.adapters_disabled
    with reference.scoring() as model:
        assert model is not policy
        assert all(p.dtype == torch.bfloat16 and not p.requires_grad for p in model.parameters())


def test_scoring_is_eval_mode_without_grad_and_restores_training(tiny_dir: str) -> None:
    policy = load_policy(tiny_dir, device="cpu", lora=LoraSettings(dropout=0.1))
    policy.train()
    reference = load_reference(policy)
    batch = _input_ids(load_tokenizer(tiny_dir), ["abc"])
    with reference.scoring() as model:
        assert not model.training
        assert not model(**batch).logits.requires_grad
    assert policy.training


def test_scoring_builds_no_graph_even_for_a_trainable_module() -> None:
    reference = Reference(torch.nn.Linear(2, 1), adapters_disabled=False)
    with reference.scoring() as model:
        assert not model(torch.ones(1, 2)).requires_grad


def test_adapters_disabled_needs_a_peft_model() -> None:
    with pytest.raises(ValueError, match="peft"):
        Reference(torch.nn.Linear(2, 1), adapters_disabled=True)


def test_released_reference_refuses_to_score(tiny_dir: str) -> None:
    reference = load_reference(load_policy(tiny_dir, device="cpu"))
    reference.release()
    assert reference.released
    with pytest.raises(RuntimeError, match="released"), reference.scoring():
        pass


def test_gradient_checkpointing_with_lora_trains(tiny_dir: str) -> None:
    policy = load_policy(tiny_dir, device="cpu", lora=LoraSettings(), gradient_checkpointing=True)
    assert policy.get_base_model().is_gradient_checkpointing
    assert policy.config.use_cache is False
    policy.train()
    batch = _input_ids(load_tokenizer(tiny_dir), ["checkpointed"])
    policy(**batch, labels=batch["input_ids"]).loss.backward()
    # lora_B: it starts at zero, so lora_A's gradients are zero until B has moved.
    grads = [p.grad for name, p in policy.named_parameters() if "lora_B" in name]
    assert grads and all(g is not None and g.abs().sum() > 0 for g in grads)


# --- reward models -----------------------------------------------------------------------------


def test_reward_model_scores_each_padded_row_like_its_unpadded_self(tiny_dir: str) -> None:
    tokenizer = load_tokenizer(tiny_dir)
    reward_model = load_reward_model(tiny_dir, device="cpu").eval()
    assert reward_model.config.pad_token_id == tokenizer.pad_token_id
    texts = ["short", "a much longer sequence"]
    batch = _input_ids(tokenizer, texts)
    assert batch["input_ids"][0, -1] == tokenizer.pad_token_id  # right padding in play
    scores = _logits(reward_model, batch)
    assert scores.shape == (2, 1)
    alone = torch.cat([_logits(reward_model, _input_ids(tokenizer, [t])) for t in texts])
    torch.testing.assert_close(scores, alone, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(scores[0], scores[1])


def test_reward_model_takes_pad_id_from_tokenizer(tiny_dir: str, tmp_path: Path) -> None:
    # Many Hugging Face checkpoints have no pad id in their config; the tokenizer supplies it.
    shutil.copytree(tiny_dir, tmp_path, dirs_exist_ok=True)
    config = json.loads((tmp_path / "config.json").read_text())
    config["pad_token_id"] = None
    (tmp_path / "config.json").write_text(json.dumps(config))
    reward_model = load_reward_model(tmp_path, device="cpu")
    assert reward_model.config.pad_token_id == load_tokenizer(tmp_path).pad_token_id
