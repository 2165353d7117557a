"""Which tokens end a completion: as `model.generate` decides, plus the tokenizer's eos.

Instruct checkpoints list several end ids in `generation_config.eos_token_id` (Llama 3's
`<|eot_id|>` and `<|end_of_text|>`, Qwen2.5's `<|im_end|>` and `<|endoftext|>`, Gemma 2's
`<end_of_turn>` and `<eos>`); the tokenizer's `eos_token` is often only one of them.
`generate` stops at every one of them, so rollouts do too.
"""

from __future__ import annotations

from typing import Any

import torch


def _ids(value: Any) -> list[int]:
    if value is None:
        return []
    if isinstance(value, int):
        return [value]
    return [int(v) for v in value]


def stop_token_ids(generation_config: Any, tokenizer: Any) -> tuple[int, ...]:
    """The generation config's eos ids (all of them) and the tokenizer's eos, once each."""
    found = _ids(getattr(generation_config, "eos_token_id", None))
    found += _ids(getattr(tokenizer, "eos_token_id", None))
    return tuple(dict.fromkeys(found))


def model_stop_ids(model: torch.nn.Module, tokenizer: Any) -> tuple[int, ...]:
    """`stop_token_ids` of a (possibly peft-wrapped) transformers model."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return stop_token_ids(getattr(base, "generation_config", None), tokenizer)
