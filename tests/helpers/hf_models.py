"""Random-weight Hugging Face causal LMs of real architectures, built locally for tests.

Each `ArchSpec` is one architecture at a tiny width with the habits of its real
checkpoints: the vocabulary size (Qwen2's 151,936), tied embeddings, sliding windows, soft
capping, several end-of-turn ids in `generation_config`, a chat template or none, a pad token
or none. The tokenizer is a byte-level BPE trained with `tokenizers` on text in this repo (so
nothing is downloaded) and saved with the model by `save_pretrained`, so a test loads the
directory exactly as it would a downloaded checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    AutoModelForCausalLM,
    Gemma2Config,
    GenerationConfig,
    GPT2Config,
    GPTNeoXConfig,
    LlamaConfig,
    MistralConfig,
    Phi3Config,
    PretrainedConfig,
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen3Config,
)

_REPO = Path(__file__).resolve().parents[2]
_BPE_VOCAB = 400  # merges learnt; the model's vocabulary may be larger (ids never seen)

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
LLAMA3 = (
    "{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}"
    "<|end_header_id|>\n\n{{ m['content'] }}<|eot_id|>{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)
GEMMA = (
    "{{ bos_token }}{% for m in messages %}<start_of_turn>"
    "{{ 'model' if m['role'] == 'assistant' else m['role'] }}\n{{ m['content'] }}"
    "<end_of_turn>\n{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)
PHI3 = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}<|end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
MISTRAL = (
    "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'assistant' %}"
    "{{ m['content'] }}{{ eos_token }}{% else %}[INST] {{ m['content'] }} [/INST]"
    "{% endif %}{% endfor %}"
)


@dataclass(frozen=True)
class ArchSpec:
    """One architecture: its config, its special tokens and which of them end a turn."""

    name: str
    config_class: type[PretrainedConfig]
    config: dict[str, Any]
    vocab_size: int
    specials: tuple[str, ...]  # ids 0.. in this order
    tokens: dict[str, str | None]  # bos/eos/pad/unk -> one of `specials` (or None)
    generation_eos: tuple[str, ...] = ()  # generation_config.eos_token_id (all of them)
    chat_template: str | None = None
    tied: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


_SMALL = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2}
_HEADS = {"num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 512}

ARCHS: dict[str, ArchSpec] = {
    "llama": ArchSpec(
        "llama",
        LlamaConfig,
        {**_SMALL, **_HEADS},
        vocab_size=1024,
        specials=(
            "<|begin_of_text|>",
            "<|end_of_text|>",
            "<|eot_id|>",
            "<|start_header_id|>",
            "<|end_header_id|>",
        ),
        tokens={"bos": "<|begin_of_text|>", "eos": "<|eot_id|>", "pad": None},
        generation_eos=("<|end_of_text|>", "<|eot_id|>"),
        chat_template=LLAMA3,
    ),
    "qwen2": ArchSpec(
        "qwen2",
        Qwen2Config,
        {**_SMALL, **_HEADS, "hidden_size": 16, "intermediate_size": 32},
        vocab_size=151_936,
        specials=("<|endoftext|>", "<|im_start|>", "<|im_end|>"),
        tokens={"bos": None, "eos": "<|im_end|>", "pad": "<|endoftext|>"},
        generation_eos=("<|im_end|>", "<|endoftext|>"),
        chat_template=CHATML,
        tied=True,
    ),
    "qwen3": ArchSpec(
        "qwen3",
        Qwen3Config,
        {**_SMALL, **_HEADS, "head_dim": 8},
        vocab_size=2048,
        specials=("<|endoftext|>", "<|im_start|>", "<|im_end|>"),
        tokens={"bos": None, "eos": "<|im_end|>", "pad": "<|endoftext|>"},
        generation_eos=("<|im_end|>", "<|endoftext|>"),
        chat_template=CHATML,
        tied=True,
    ),
    "gemma2": ArchSpec(
        "gemma2",
        Gemma2Config,
        {
            **_SMALL,
            **_HEADS,
            "head_dim": 8,
            "sliding_window": 8,
            "final_logit_softcapping": 30.0,
            "attn_logit_softcapping": 50.0,
        },
        vocab_size=1024,
        specials=("<pad>", "<eos>", "<bos>", "<start_of_turn>", "<end_of_turn>"),
        tokens={"bos": "<bos>", "eos": "<eos>", "pad": "<pad>"},
        generation_eos=("<eos>", "<end_of_turn>"),
        chat_template=GEMMA,
        tied=True,
    ),
    "phi3": ArchSpec(
        "phi3",
        Phi3Config,
        {**_SMALL, **_HEADS, "pad_token_id": 0},
        vocab_size=1024,
        specials=("<|endoftext|>", "<|user|>", "<|assistant|>", "<|end|>", "<|system|>"),
        tokens={"bos": None, "eos": "<|endoftext|>", "pad": "<|endoftext|>"},
        generation_eos=("<|endoftext|>", "<|end|>"),
        chat_template=PHI3,
    ),
    "mistral": ArchSpec(
        "mistral",
        MistralConfig,
        {**_SMALL, **_HEADS, "sliding_window": None},
        vocab_size=1024,
        specials=("<unk>", "<s>", "</s>"),
        tokens={"bos": "<s>", "eos": "</s>", "pad": None, "unk": "<unk>"},
        generation_eos=("</s>",),
        chat_template=MISTRAL,
    ),
    "gpt_neox": ArchSpec(
        "gpt_neox",
        GPTNeoXConfig,
        {**_SMALL, "num_attention_heads": 4, "max_position_embeddings": 512},
        vocab_size=1024,
        specials=("<|endoftext|>", "<|padding|>"),
        tokens={"bos": "<|endoftext|>", "eos": "<|endoftext|>", "pad": "<|padding|>"},
        generation_eos=("<|endoftext|>",),
    ),
    "gpt2": ArchSpec(
        "gpt2",
        GPT2Config,
        {"n_embd": 32, "n_layer": 2, "n_head": 4, "n_positions": 512},
        vocab_size=1024,
        specials=("<|endoftext|>",),
        tokens={"bos": "<|endoftext|>", "eos": "<|endoftext|>", "pad": None},
        generation_eos=("<|endoftext|>",),
        tied=True,
    ),
}

CHAT_ARCHS = tuple(name for name, spec in ARCHS.items() if spec.chat_template)


def corpus() -> list[str]:
    """Local text to learn BPE merges from: the repo's own docs and sources."""
    paths = [*sorted((_REPO / "docs").glob("*.md")), _REPO / "README.md"]
    paths += sorted((_REPO / "gro_core" / "objective").glob("*.py"))
    return [p.read_text() for p in paths if p.exists()]


def build_tokenizer(spec: ArchSpec) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer with `spec`'s special tokens at ids 0.."""
    raw = Tokenizer(models.BPE())
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=_BPE_VOCAB,
        special_tokens=list(spec.specials),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    raw.train_from_iterator(corpus(), trainer)
    named = {f"{k}_token": v for k, v in spec.tokens.items() if v is not None}
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=raw, **named)
    if spec.chat_template:
        tokenizer.chat_template = spec.chat_template
    return tokenizer


def build_config(spec: ArchSpec, tokenizer: PreTrainedTokenizerFast) -> PretrainedConfig:
    ids = {
        f"{k}_token_id": tokenizer.convert_tokens_to_ids(v)
        for k, v in spec.tokens.items()
        if v is not None and k in ("bos", "eos", "pad")
    }
    return spec.config_class(
        **{**spec.config, **ids, "vocab_size": spec.vocab_size, "tie_word_embeddings": spec.tied}
    )


def build_model_dir(spec: ArchSpec, root: Path, *, seed: int = 0) -> Path:
    """Build `spec` with random weights (seeded) and save model + tokenizer under `root`."""
    torch.manual_seed(seed)
    tokenizer = build_tokenizer(spec)
    model = AutoModelForCausalLM.from_config(build_config(spec, tokenizer), dtype=torch.float32)
    eos = [tokenizer.convert_tokens_to_ids(t) for t in spec.generation_eos]
    model.generation_config = GenerationConfig(
        bos_token_id=model.config.bos_token_id,
        eos_token_id=eos if len(eos) > 1 else eos[0],
        pad_token_id=model.config.pad_token_id,
    )
    path = root / spec.name
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@torch.no_grad()
def encourage_stopping(
    model: torch.nn.Module, prompts: torch.Tensor, attention: torch.Tensor, new_tokens: int
) -> list[int]:
    """Make the end ids that are not the tokenizer's eos (or the only one) the greedy choice
    at some decoding steps, not none or all: random weights almost never end a turn.

    Their output rows are set along one random direction, scaled so the end id wins where a
    greedy continuation's hidden state projects most on it. Returns the ids changed.
    """
    ends = model.generation_config.eos_token_id
    ends = ends if isinstance(ends, list) else [ends]
    eos = getattr(model.config, "eos_token_id", None)
    changed = [e for e in ends if e != eos] or ends
    full = model.generate(
        input_ids=prompts, attention_mask=attention, max_new_tokens=new_tokens, do_sample=False
    )
    mask = torch.cat([attention, torch.ones_like(full[:, prompts.shape[1] :])], dim=1)
    out = model(input_ids=full, attention_mask=mask, output_hidden_states=True)
    start = prompts.shape[1] - 1  # the positions that chose each new token
    hidden = out.hidden_states[-1][:, start:-1].reshape(-1, model.config.hidden_size)
    direction = torch.randn(hidden.shape[1], generator=torch.Generator().manual_seed(0))
    projection = hidden @ direction.to(hidden.dtype)
    best = out.logits[:, start:-1].reshape(-1, out.logits.shape[-1]).max(-1).values
    ratio = (best / projection)[projection > 0]
    scale = _scale_in_a_gap(ratio.float())
    weight = model.get_output_embeddings().weight
    for end in changed:
        weight[end] = direction.to(weight.dtype) * scale
    return changed


def _scale_in_a_gap(ratio: torch.Tensor, low: float = 0.2, high: float = 0.6) -> torch.Tensor:
    """A scale between the `low` and `high` quantiles of `ratio`, in the middle of the widest
    gap between neighbouring ratios there.

    At a position whose ratio is close to the scale, the end id and the best token are nearly
    tied, and batched decoding (other padding, another cache) can break the tie the other way
    than `generate` does; a scale in the widest gap keeps every position clear of a tie.
    """
    ordered = ratio[ratio > 0].sort().values
    first, last = int(low * (len(ordered) - 1)), int(high * (len(ordered) - 1))
    window = ordered[first : last + 2]
    relative = (window[1:] - window[:-1]) / window[:-1]
    at = int(relative.argmax())
    return (window[at] * window[at + 1]).sqrt()
