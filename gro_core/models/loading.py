"""Load tokenizers, policies and reward models from a Hugging Face id, a directory or a builtin.

Every model goes through `resolve_model` and then `from_pretrained`, so a builtin and a
downloaded checkpoint take the same path. Device and dtype are picked here, once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from peft import LoraConfig, get_peft_model
from transformers import (
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from gro_core.models.adapters import adapter_base, is_adapter_dir, merge_adapters
from gro_core.models.builtin import resolve_model

ModelName = str | os.PathLike[str]

_DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
}

# Every linear layer but the output head (peft's shorthand): attention and MLP projections
# under whatever names the architecture uses (q_proj, qkv_proj, c_attn, query_key_value...).
ALL_LINEAR = "all-linear"
DEFAULT_LORA_TARGETS = (ALL_LINEAR,)


def pick_device(device: str = "auto") -> torch.device:
    """ "auto" means the first CUDA GPU if there is one, else the CPU; other names are checked."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        picked = torch.device(device)
    except RuntimeError as err:
        raise ValueError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N") from err
    if picked.type == "cuda":
        # Fail here, not on the first tensor moved: the message names the device asked for.
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r} asked for, but CUDA is not available")
        if picked.index is not None and picked.index >= torch.cuda.device_count():
            count = torch.cuda.device_count()
            raise ValueError(f"device {device!r} asked for, but only {count} GPU(s) are visible")
    return picked


def pick_dtype(dtype: str, device: torch.device | str) -> torch.dtype:
    """Resolve a dtype name; "auto" is bfloat16 on GPUs that support it, else float32.

    float16 is never chosen automatically: training in it needs a gradient scaler, which gro's
    trainers do not use. Ask for "float16" explicitly for inference on older GPUs.
    """
    if dtype == "auto":
        on_cuda = torch.device(device).type == "cuda"
        return torch.bfloat16 if on_cuda and torch.cuda.is_bf16_supported() else torch.float32
    if dtype not in _DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; use auto, float32, bfloat16 or float16")
    return _DTYPES[dtype]


def load_tokenizer(
    name_or_path: ModelName, cache_dir: str | Path | None = None
) -> PreTrainedTokenizerBase:
    """The model's tokenizer, with a pad token (its eos token when it has none).

    Padding side is left as the tokenizer's own default (right for builtins); code that
    generates pads prompts on the left itself.
    """
    tokenizer = AutoTokenizer.from_pretrained(resolve_model(name_or_path, cache_dir))
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            # Adding a new token would change the vocabulary, and the model with it.
            raise ValueError(f"tokenizer of {name_or_path!r} has neither a pad nor an eos token")
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


@dataclass
class LoraSettings:
    """Low-rank adapters (peft's LoRA) trained in place of the full weights."""

    r: int = 8
    """Rank of each adapter."""
    alpha: float = 16
    """Scale: the adapter's output is multiplied by alpha / r."""
    dropout: float = 0.0
    """Dropout on the adapter's input."""
    target_modules: list[str] | None = None
    """Module names to adapt (peft matches a name or a dotted suffix); None or ["all-linear"]
    means every linear layer but the output head."""

    def __post_init__(self) -> None:
        if self.r < 1:
            raise ValueError(f"lora.r must be at least 1, got {self.r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"lora.dropout must be in [0, 1), got {self.dropout}")

    def to_peft(self) -> LoraConfig:
        """The equivalent peft config for a causal language model."""
        targets: str | list[str] = self.target_modules or list(DEFAULT_LORA_TARGETS)
        if targets == [ALL_LINEAR]:
            targets = ALL_LINEAR  # peft reads the shorthand only as a string
        return LoraConfig(
            r=self.r,
            lora_alpha=self.alpha,
            lora_dropout=self.dropout,
            target_modules=targets,
            task_type="CAUSAL_LM",
        )


def load_policy(
    name_or_path: ModelName,
    *,
    dtype: str = "auto",
    device: str = "auto",
    lora: LoraSettings | None = None,
    gradient_checkpointing: bool = False,
    attention: str = "auto",
    dropout: bool = False,
    cache_dir: str | Path | None = None,
) -> torch.nn.Module:
    """The model to train: a causal LM, wrapped in LoRA adapters when `lora` is given.

    With LoRA only the adapters require grad. With gradient checkpointing the config's
    `use_cache` is off (a KV cache is useless when activations are recomputed); generation
    code should pass `use_cache=True` itself. `attention`: transformers' attention
    implementation ("auto": its own choice). The model's dropout is switched off unless
    `dropout` (LoRA's own is `lora.dropout`). The model comes back in eval mode, as
    `from_pretrained` leaves it; trainers call `.train()`. A LoRA checkpoint loads as its
    base with the adapters merged in (gro_core.models.adapters).
    """
    target = pick_device(device)
    kernel = {} if attention == "auto" else {"attn_implementation": attention}
    path = resolve_model(name_or_path, cache_dir)
    if is_adapter_dir(path):  # a LoRA checkpoint: its base with the adapters merged in
        base = load_policy(adapter_base(path), dtype=dtype, device=device, attention=attention)
        model = merge_adapters(base, path)
    else:
        model = AutoModelForCausalLM.from_pretrained(
            path, dtype=pick_dtype(dtype, target), **kernel
        ).to(target)
    if not dropout:
        disable_dropout(model)
    if gradient_checkpointing:
        # Non-reentrant checkpointing gives gradients to adapters even though the frozen
        # embeddings' outputs do not require grad.
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.config.use_cache = False
    if lora is not None:
        check_lora_targets(model, lora.target_modules)
        model = get_peft_model(model, lora.to_peft())
    return model


def disable_dropout(model: torch.nn.Module) -> None:
    """Zero every dropout of `model`: its Dropout modules and the rates attention modules
    pass to their kernel (`attention_dropout`, read in training mode only)."""
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
        for name in ("attention_dropout", "dropout", "attn_dropout_p"):
            if isinstance(getattr(module, name, None), float):
                setattr(module, name, 0.0)


def linear_module_names(model: torch.nn.Module) -> list[str]:
    """The distinct last names of `model`'s linear layers (Conv1D is GPT-2's), head included."""
    kinds = ("Linear", "Conv1D")
    names = {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if type(m).__name__ in kinds}
    return sorted(names)


def check_lora_targets(model: torch.nn.Module, targets: list[str] | None) -> None:
    """Refuse a target list that names no module of `model` (peft's own error is a traceback
    that names only the targets), listing the linear layers it has."""
    if not targets or targets == [ALL_LINEAR]:
        return
    names = [n for n, _ in model.named_modules()]
    if any(n == t or n.endswith(f".{t}") for n in names for t in targets):
        return
    kind = getattr(getattr(model, "config", None), "model_type", type(model).__name__)
    raise ValueError(
        f"lora.target_modules {targets} match no module of this {kind} model; its linear "
        f"layers are {', '.join(linear_module_names(model))} (or use all-linear, the default)"
    )


def load_reward_model(
    name_or_path: ModelName,
    *,
    dtype: str = "auto",
    device: str = "auto",
    dropout: bool = False,
    cache_dir: str | Path | None = None,
) -> PreTrainedModel:
    """A sequence classifier with one output: `model(input_ids, attention_mask).logits` is (B, 1).

    Loading from a causal-LM checkpoint (a builtin, say) keeps the body and adds a new,
    randomly initialised score head. The config's pad token id is set from the tokenizer: the
    model scores the last non-pad token of each row, so padded batches score like unpadded rows.
    """
    path = resolve_model(name_or_path, cache_dir)
    target = pick_device(device)
    model = AutoModelForSequenceClassification.from_pretrained(
        path, num_labels=1, dtype=pick_dtype(dtype, target)
    ).to(target)
    if model.config.pad_token_id is None:
        model.config.pad_token_id = load_tokenizer(path).pad_token_id
    if not dropout:
        disable_dropout(model)
    return model


def count_parameters(model: torch.nn.Module, *, trainable_only: bool = False) -> int:
    """Number of parameters; tied weights are counted once."""
    # parameters() yields a shared tensor once, which is what makes tied weights count once.
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
