"""Built-in models: small Llama-style models with a character-level tokenizer, made locally.

`builtin:<name>` needs no network: the first use builds the model (random weights from a fixed
seed, so a name always means the same weights) and its tokenizer, saves both with
`save_pretrained` under `$GRO_CACHE_DIR/models/<name>`, and every later use reads that directory
back like any other local model.

The tokenizer maps each character to one token. Its vocabulary is `<pad>` `<bos>` `<eos>` `<unk>`
(ids 0–3), then tab, newline and printable ASCII (chr 32–126), so any ASCII text encodes without
`<unk>`. Encoding with `add_special_tokens=True` (the default) puts `<bos>` first; no `<eos>` is
added. The chat template also starts with `<bos>` and ends every message with `<eos>`, so text
rendered by `apply_chat_template(..., tokenize=False)` is encoded with `add_special_tokens=False`,
the same convention as Hugging Face's Llama 3 tokenizers.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, pre_tokenizers, processors
from tokenizers.models import WordLevel
from transformers import AutoModelForCausalLM, LlamaConfig, PreTrainedTokenizerFast

BUILTIN_PREFIX = "builtin:"

# Bump when the tokenizer or the way models are built changes, so stale caches are rebuilt.
_FORMAT_VERSION = 1
_MARKER = "gro_builtin.json"

SPECIAL_TOKENS = ("<pad>", "<bos>", "<eos>", "<unk>")
CHARACTERS = ("\t", "\n", *(chr(code) for code in range(32, 127)))

# Role markers, then the content, then <eos>; the assistant's turn is left open for generation.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "<|{{ message['role'] }}|>\n{{ message['content'] }}{{ eos_token }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


@dataclass(frozen=True)
class BuiltinSpec:
    """The shape of one built-in Llama-style model (tied input and output embeddings)."""

    hidden_size: int
    """Width of the residual stream."""
    num_layers: int
    """Number of transformer blocks."""
    num_heads: int
    """Attention heads (as many key/value heads: no grouped-query attention)."""
    intermediate_size: int
    """Width of the SwiGLU feed-forward layer."""
    max_position_embeddings: int = 1024
    """Longest sequence the model is meant for (RoPE, so nothing is learned per position)."""
    seed: int = 0
    """Seed of the random initialisation: same name, bit-identical weights."""


BUILTIN_MODELS: dict[str, BuiltinSpec] = {
    # 439,552 parameters: fast enough for unit tests and quick CPU experiments.
    "tiny-llama": BuiltinSpec(hidden_size=128, num_layers=2, num_heads=4, intermediate_size=384),
    # 25,750,528 parameters: learns small synthetic tasks on a CPU or a small GPU.
    "small-llama": BuiltinSpec(hidden_size=512, num_layers=8, num_heads=8, intermediate_size=1408),
}


def default_cache_dir() -> Path:
    """gro's cache root: `$GRO_CACHE_DIR`, else `~/.cache/gro`."""
    return Path(os.environ.get("GRO_CACHE_DIR") or Path.home() / ".cache" / "gro")


def build_char_tokenizer(model_max_length: int = 1024) -> PreTrainedTokenizerFast:
    """A character-level tokenizer over tab, newline and printable ASCII (see module docstring)."""
    vocab = {token: i for i, token in enumerate((*SPECIAL_TOKENS, *CHARACTERS))}
    backend = Tokenizer(WordLevel(vocab=vocab, unk_token="<unk>"))
    # An empty pattern matches between every pair of characters: one pre-token per character.
    backend.pre_tokenizer = pre_tokenizers.Split(pattern="", behavior="isolated")
    bos_id = vocab["<bos>"]
    backend.post_processor = processors.TemplateProcessing(
        single="<bos> $A", pair="<bos> $A $B", special_tokens=[("<bos>", bos_id)]
    )
    # Fuse joins tokens with nothing between them (the default would insert spaces).
    backend.decoder = decoders.Fuse()
    backend.add_special_tokens(list(SPECIAL_TOKENS))
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token="<pad>",
        bos_token="<bos>",
        eos_token="<eos>",
        unk_token="<unk>",
        padding_side="right",
        model_max_length=model_max_length,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def _llama_config(spec: BuiltinSpec, tokenizer: PreTrainedTokenizerFast) -> LlamaConfig:
    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=spec.hidden_size,
        num_hidden_layers=spec.num_layers,
        num_attention_heads=spec.num_heads,
        num_key_value_heads=spec.num_heads,
        intermediate_size=spec.intermediate_size,
        max_position_embeddings=spec.max_position_embeddings,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )


def _marker(name: str, spec: BuiltinSpec) -> dict[str, object]:
    """What a finished cache directory records about how it was built."""
    return {"name": name, "format": _FORMAT_VERSION, "spec": dataclasses.asdict(spec)}


def _write_builtin(name: str, spec: BuiltinSpec, out_dir: Path) -> None:
    """Build model and tokenizer and `save_pretrained` them into `out_dir`."""
    tokenizer = build_char_tokenizer(spec.max_position_embeddings)
    config = _llama_config(spec, tokenizer)
    # A private RNG stream: the weights depend only on the seed, and callers' RNG is untouched.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(spec.seed)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    # Written last: a directory with the marker is complete.
    (out_dir / _MARKER).write_text(json.dumps(_marker(name, spec), indent=2) + "\n")


def _is_current(target: Path, name: str, spec: BuiltinSpec) -> bool:
    """Whether `target` holds a finished build of this name by this version of the builder."""
    try:
        return json.loads((target / _MARKER).read_text()) == _marker(name, spec)
    except (OSError, ValueError):
        return False


def _unique_sibling(target: Path, kind: str) -> Path:
    """A hidden, unused path next to `target`, on the same file system so renames are atomic."""
    return target.with_name(f".{target.name}.{kind}-{uuid.uuid4().hex}")


def _share_like_dir(directory: Path) -> None:
    """Give the files in `directory` its read permissions (safetensors writes 0600 files)."""
    readable = directory.stat().st_mode & 0o444
    for path in directory.iterdir():
        path.chmod(path.stat().st_mode | readable)


def _build(name: str, spec: BuiltinSpec, target: Path) -> None:
    """Build into a temporary sibling of `target`, then rename it into place atomically."""
    target.parent.mkdir(parents=True, exist_ok=True)
    # A unique name rather than tempfile.mkdtemp, whose 0700 mode would survive the rename and
    # lock other users out of a shared GRO_CACHE_DIR; mkdir honours the umask.
    tmp = _unique_sibling(target, "tmp")
    tmp.mkdir()
    try:
        _write_builtin(name, spec, tmp)
        _share_like_dir(tmp)
        if target.exists() and not _is_current(target, name, spec):
            # Built by an older gro (or not by gro at all): move it aside so the rename can land.
            stale = _unique_sibling(target, "stale")
            os.rename(target, stale)
            shutil.rmtree(stale, ignore_errors=True)
        try:
            os.rename(tmp, target)
        except OSError:
            # Another process renamed its build in first; theirs is as good as ours.
            if not _is_current(target, name, spec):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def resolve_model(name_or_path: str | os.PathLike[str], cache_dir: str | Path | None = None) -> str:
    """Turn `builtin:<name>` into its local directory (built on first use); return others unchanged.

    `cache_dir` is gro's cache root (default `default_cache_dir()`); builtins live in
    `<cache_dir>/models/<name>`. Raises ValueError for an unknown builtin name.
    """
    name_or_path = os.fspath(name_or_path)
    if not name_or_path.startswith(BUILTIN_PREFIX):
        return name_or_path
    name = name_or_path.removeprefix(BUILTIN_PREFIX)
    if name not in BUILTIN_MODELS:
        known = ", ".join(BUILTIN_PREFIX + known for known in BUILTIN_MODELS)
        raise ValueError(f"unknown builtin model {name_or_path!r}; known: {known}")
    spec = BUILTIN_MODELS[name]
    target = Path(cache_dir or default_cache_dir()).expanduser() / "models" / name
    if not _is_current(target, name, spec):
        _build(name, spec, target)
    return str(target)
