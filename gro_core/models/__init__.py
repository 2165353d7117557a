"""Models for gro: builtins, loading with device and dtype, LoRA, the reference, reward models,
and the model a run trains (`load_run_model`: a spec's starting model or one of its checkpoints).
A LoRA checkpoint loads as its base with the adapters merged (adapters.py); export.py writes a
checkpoint as a plain model directory (`gro export`).

path = resolve_model("builtin:tiny-llama")          # a local directory, built on first use
tokenizer = load_tokenizer(path)
policy = load_policy(path, lora=LoraSettings(r=8))
reference = load_reference(policy)                  # adapters off, no second copy
with reference.scoring() as model:
    ref_logits = model(input_ids).logits            # (B, T, V)
"""

from gro_core.models.builtin import (
    BUILTIN_MODELS,
    BuiltinSpec,
    build_char_tokenizer,
    default_cache_dir,
    resolve_model,
)
from gro_core.models.loading import (
    DEFAULT_LORA_TARGETS,
    LoraSettings,
    count_parameters,
    load_policy,
    load_reward_model,
    load_tokenizer,
    pick_device,
    pick_dtype,
)
from gro_core.models.reference_model import Reference, load_reference
from gro_core.models.run_model import load_run_model

__all__ = [
    "BUILTIN_MODELS",
    "DEFAULT_LORA_TARGETS",
    "BuiltinSpec",
    "LoraSettings",
    "Reference",
    "build_char_tokenizer",
    "count_parameters",
    "default_cache_dir",
    "load_policy",
    "load_reference",
    "load_reward_model",
    "load_run_model",
    "load_tokenizer",
    "pick_device",
    "pick_dtype",
    "resolve_model",
]
