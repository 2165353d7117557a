"""The architecture matrix: gro on random-weight models of real Hugging Face architectures.

Every model is built locally by `tests.helpers.hf_models` (no downloads) with a byte-level
BPE tokenizer and the habits of its real checkpoints (vocabulary, tied embeddings, sliding
window, eos lists, chat template or none, pad token or none).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM

from gro_core.models import load_tokenizer
from tests.helpers.hf_models import ARCHS, CHAT_ARCHS

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
