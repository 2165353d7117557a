"""The data bench/offline.py's two trainers read: pairs, their tokens, the model's name."""

from __future__ import annotations

import json
from pathlib import Path

PAIRS, MAX_LENGTH, SEED = 512, 128, 0
TASK = "arithmetic-preference"


def model_id(model: str) -> str:
    """A builtin's name as gro loads it, or a local model directory as given."""
    return model if Path(model).is_dir() else f"builtin:{model}"


def write_pairs(path: Path, completion_chars: int = 0) -> None:
    """The pairs; with `completion_chars`, both completions of a pair get the same filler
    words appended until they are at least that long (longer completions, same preference)."""
    from gro_core.tasks import generate

    rows = generate(TASK, PAIRS, seed=SEED)
    filler = " and so the answer stands as written"
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            pair = {k: row[k] for k in ("prompt", "chosen", "rejected")}
            for key in ("chosen", "rejected"):
                while len(pair[key]) < completion_chars:
                    pair[key] += filler
            f.write(json.dumps(pair) + "\n")


def read_pairs(path: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def encoded_pairs(model: str, data: Path) -> list[tuple[tuple[int, ...], ...]]:
    """(prompt, chosen, rejected) token ids of every pair, as gro encodes them."""
    from gro_core.data.encode import encode_records
    from gro_core.models import load_tokenizer

    examples = encode_records(
        load_tokenizer(model_id(model)), "preference", read_pairs(data), MAX_LENGTH
    )
    pairs = (e.sequences for e in examples)
    return [(c.prompt_ids, c.completion_ids, r.completion_ids) for c, r in pairs]


def pair_tokens(pairs: list[tuple[tuple[int, ...], ...]]) -> int:
    """Real tokens of one pass: prompt + chosen and prompt + rejected of every pair."""
    return sum(2 * len(p) + len(c) + len(r) for p, c, r in pairs)
