"""gro against TRL 1.16 as the vocabulary grows: a Qwen2-architecture model at 32k and 152k.

The model is built locally (random weights, seed 0): Qwen2 config, hidden 64, 2 layers, 4
heads (2 key/value heads), tied embeddings, vocabulary 32,000 or 151,936, a byte-level BPE
tokenizer trained with `tokenizers` on this repo's docs, ChatML specials. Chat prompts. With
random weights rollouts rarely end early, so completions run to the length asked: the
decoding loop's cost is all there.

- DPO: 64 preference pairs, batch 8 pairs, beta 0.1, `max_length` 256, AdamW lr 1e-5.
- GRPO: 8 prompts x G=8 completions, at most 32 (and, `--long`, 128) new tokens, temperature 1,
  k3 KL to the reference with coefficient 0.04, loss_type "grpo", a length reward.

TRL keeps its defaults otherwise (gradient checkpointing on for GRPO, as it ships). Every run
is a fresh worker process: its peak RSS is the process's own (ru_maxrss), and steps/s is over
the step loop after the first step (the first pays one-off costs on both sides). gro and TRL
alternate within one invocation, so only same-run ratios count.

    python bench/vocab.py [--rounds 1] [--steps 4] [--vocabs 32000,151936] [--methods dpo,grpo]
                          [--long] [--long-vocab V] [--model-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _common as common

ROOT = Path(__file__).resolve().parents[1]
HIDDEN, LAYERS = 64, 2
PROMPTS, G, PAIRS, DPO_BATCH = 8, 8, 64, 8
KL_COEF, BETA, LR = 0.04, 0.1, 1e-5
TARGET_CHARS = 40
CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
QUESTIONS = [f"Question {i}: what is {i} plus {i * 3}? Explain briefly." for i in range(PAIRS)]


def build_model(vocab: int, out: Path) -> Path:
    """The Qwen2-architecture model at `vocab`, saved with its tokenizer under `out`."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast, Qwen2Config

    raw = Tokenizer(models.BPE())
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    trainer = trainers.BpeTrainer(
        vocab_size=2000,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    raw.train_from_iterator([p.read_text() for p in sorted((ROOT / "docs").glob("*.md"))], trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=raw, eos_token="<|im_end|>", pad_token="<|endoftext|>"
    )
    tokenizer.chat_template = CHATML
    config = Qwen2Config(
        vocab_size=vocab,
        hidden_size=HIDDEN,
        intermediate_size=2 * HIDDEN,
        num_hidden_layers=LAYERS,
        num_attention_heads=4,
        num_key_value_heads=2,
        tie_word_embeddings=True,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
    )
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.generation_config.eos_token_id = [tokenizer.eos_token_id, tokenizer.pad_token_id]
    path = out / f"qwen2-{vocab}"
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def write_data(out: Path) -> dict[str, Path]:
    """Chat prompts for GRPO and chat preference pairs for DPO, one JSON row a line."""
    prompts, pairs = out / "prompts.jsonl", out / "pairs.jsonl"
    user = [[{"role": "user", "content": q}] for q in QUESTIONS]
    prompts.write_text("".join(json.dumps({"prompt": u}) + "\n" for u in user[: PROMPTS * 4]))
    rows = []
    for i, u in enumerate(user):
        good = [{"role": "assistant", "content": f"It is {i + i * 3}, since {i} + {i * 3}."}]
        bad = [{"role": "assistant", "content": "I do not know."}]
        rows.append({"prompt": u, "chosen": good, "rejected": bad})
    pairs.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return {"prompts": prompts, "pairs": pairs}


def length_reward(texts: list[str]) -> list[float]:
    """gro's length_penalty reward, computed the same way for TRL."""
    return [-abs(len(t) - TARGET_CHARS) / TARGET_CHARS for t in texts]


# --- gro ------------------------------------------------------------------------------------


def gro_spec(method: str, model: Path, data: dict[str, Path], steps: int, new: int) -> dict:
    common_train = {"steps": steps, "lr": LR, "warmup_steps": 0, "max_grad_norm": 1.0}
    spec: dict[str, Any] = {
        "model": str(model),
        "method": method,
        "eval": {"every": 0, "num_prompts": 1},
        "checkpoint": {"every": 0, "keep": 1},
        "model_options": {"dtype": "float32"},
    }
    if method == "dpo":
        spec["method_args"] = {"beta": BETA}
        spec["data"] = {"train": str(data["pairs"])}
        spec["train"] = {**common_train, "batch_size": DPO_BATCH, "max_length": 256}
    else:
        spec["method_args"] = {"kl_coef": KL_COEF}
        spec["data"] = {"train": str(data["prompts"])}
        spec["rewards"] = [{"type": "length_penalty", "target_chars": TARGET_CHARS}]
        spec["rollout"] = {"num_generations": G, "max_new_tokens": new, "temperature": 1.0}
        spec["train"] = {**common_train, "batch_size": PROMPTS}
    return spec


def gro_worker(method: str, model: Path, data: dict[str, Path], steps: int, new: int) -> dict:
    from gro_core.spec import load_spec
    from gro_core.trainers import Callback, run

    class Clock(Callback):
        def __init__(self) -> None:
            self.ends: list[float] = []

        def on_step_end(self, step: int, total: int, metrics: dict[str, float]) -> None:
            self.ends.append(time.perf_counter())

    clock = Clock()
    with tempfile.TemporaryDirectory() as out:
        run(load_spec(gro_spec(method, model, data, steps, new)), Path(out), [clock])
    return {"ends": clock.ends}


# --- TRL ------------------------------------------------------------------------------------


def _trl_args() -> dict[str, Any]:
    """TrainingArguments both TRL runs share (the rest are TRL's defaults)."""
    return {
        "learning_rate": LR,
        "warmup_steps": 0,
        "weight_decay": 0.0,
        "max_grad_norm": 1.0,
        "use_cpu": True,
        "save_strategy": "no",
        "eval_strategy": "no",
        "report_to": "none",
        "disable_tqdm": True,
        "dataloader_num_workers": 0,
        "seed": 0,
    }


def _trl_trainer(method: str, model: Path, rows: list[dict], out: str, steps: int, new: int):
    import datasets
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    datasets.disable_progress_bars()
    policy = AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32)
    parts = {
        "model": policy,
        "train_dataset": datasets.Dataset.from_list(rows),
        "processing_class": AutoTokenizer.from_pretrained(model),
    }
    shared = {"output_dir": out, "max_steps": steps, **_trl_args()}
    if method == "dpo":
        from trl import DPOConfig, DPOTrainer

        config = DPOConfig(
            per_device_train_batch_size=DPO_BATCH, beta=BETA, max_length=256, **shared
        )
        return DPOTrainer(args=config, **parts)
    from trl import GRPOConfig, GRPOTrainer

    def reward(completions: list[Any], **_: Any) -> list[float]:
        texts = [c[-1]["content"] if isinstance(c, list) else c for c in completions]
        return length_reward(texts)

    config = GRPOConfig(
        per_device_train_batch_size=PROMPTS * G,
        num_generations=G,
        max_completion_length=new,
        temperature=1.0,
        beta=KL_COEF,
        loss_type="grpo",
        **shared,
    )
    return GRPOTrainer(reward_funcs=reward, args=config, **parts)


def trl_worker(method: str, model: Path, data: dict[str, Path], steps: int, new: int) -> dict:
    from transformers import TrainerCallback

    class Clock(TrainerCallback):
        def __init__(self) -> None:
            self.ends: list[float] = []

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.ends.append(time.perf_counter())

    clock = Clock()
    rows = [json.loads(x) for x in data["pairs" if method == "dpo" else "prompts"].open()]
    with tempfile.TemporaryDirectory() as out:
        trainer = _trl_trainer(method, model, rows, out, steps, new)
        trainer.add_callback(clock)
        trainer.train()
    return {"ends": clock.ends}


# --- the parent -----------------------------------------------------------------------------


def worker_main(args: argparse.Namespace) -> None:
    data = {"prompts": Path(args.prompts), "pairs": Path(args.pairs)}
    work = gro_worker if args.worker == "gro" else trl_worker
    result = work(args.method, Path(args.model), data, args.steps, args.new_tokens)
    ends = result["ends"]
    result["steps_per_s"] = (len(ends) - 1) / (ends[-1] - ends[0]) if len(ends) > 1 else 0.0
    result["peak_rss_mb"] = common.peak_rss_mb()
    common.emit_result(result)


def one_run(args: argparse.Namespace, who: str, method: str, model: Path, data: dict, new: int):
    argv = [__file__, "--worker", who, "--method", method, "--model", str(model)]
    argv += ["--prompts", str(data["prompts"]), "--pairs", str(data["pairs"])]
    argv += ["--steps", str(args.steps), "--new-tokens", str(new)]
    return common.run_quietly(argv, wait=args.wait, max_others=args.max_others, retries=0)


def parent_main(args: argparse.Namespace) -> None:
    methods = [m for m in args.methods.split(",") if m]
    cases = [(v, m, 32) for v in map(int, args.vocabs.split(",")) for m in methods]
    if args.long:
        cases.append((args.long_vocab or max(map(int, args.vocabs.split(","))), "grpo", 128))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.model_dir or tmp)
        data = write_data(Path(tmp))
        models = {v: build_model(v, root) for v in {c[0] for c in cases}}
        for vocab, method, new in cases:
            got: dict[str, list[dict]] = {"gro": [], "trl": []}
            for _ in range(args.rounds):
                for who in ("gro", "trl"):
                    got[who].append(one_run(args, who, method, models[vocab], data, new))
                    print(
                        f"{who} {method} V={vocab} new={new}: {got[who][-1]['steps_per_s']:.3f}"
                        f" steps/s, {got[who][-1]['peak_rss_mb']:.0f} MB",
                        file=sys.stderr,
                    )
            rows.append(summary(vocab, method, new, got))
    header = ["vocab", "method", "new tokens", "gro steps/s", "TRL steps/s", "speed x"]
    header += ["gro peak MB", "TRL peak MB", "RSS ratio"]
    print(common.markdown_table(header, rows))


def summary(vocab: int, method: str, new: int, got: dict[str, list[dict]]) -> list[str]:
    speed = {w: common.median([r["steps_per_s"] for r in got[w]]) for w in got}
    rss = {w: common.median([r["peak_rss_mb"] for r in got[w]]) for w in got}
    return [
        f"{vocab:,}",
        method,
        str(new),
        f"{speed['gro']:.3f}",
        f"{speed['trl']:.3f}",
        f"{speed['gro'] / speed['trl']:.2f}",
        f"{rss['gro']:.0f}",
        f"{rss['trl']:.0f}",
        f"{rss['gro'] / rss['trl']:.2f}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1, help="gro+TRL pairs per case")
    parser.add_argument("--steps", type=int, default=4, help="steps per run")
    parser.add_argument("--vocabs", default="32000,151936")
    parser.add_argument("--methods", default="dpo,grpo", help="at 32 new tokens ('' for none)")
    parser.add_argument("--long", action="store_true", help="also GRPO at 128 new tokens")
    parser.add_argument("--long-vocab", type=int, default=0, help="its vocab (largest)")
    parser.add_argument("--model-dir", help="keep the built models here (default: a temp dir)")
    parser.add_argument("--wait", type=float, default=60, help="max s to wait for quiet")
    parser.add_argument("--max-others", type=float, default=1.0, help="CPU share voiding a run")
    parser.add_argument("--worker", choices=("gro", "trl"), help=argparse.SUPPRESS)
    for name in ("method", "model", "prompts", "pairs"):
        parser.add_argument(f"--{name}", help=argparse.SUPPRESS)
    parser.add_argument("--new-tokens", type=int, default=32, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker_main(args)
    else:
        parent_main(args)


if __name__ == "__main__":
    main()
