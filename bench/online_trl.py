"""TRL's side of bench/online.py: GRPOTrainer on the same warm-up, prompts and reward."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import _common as common
import torch
from online_setup import (
    EPSILON,
    KL_COEF,
    MAX_NEW_TOKENS,
    PROMPTS,
    SEED,
    TEMPERATURE,
    G,
    Result,
    Timer,
    held_out_reward,
    scorer,
    setting,
)


def trl_config(model: str, out: Path, gradient_checkpointing: bool) -> Any:
    from trl import GRPOConfig

    s = setting(model)
    return GRPOConfig(
        output_dir=str(out),
        per_device_train_batch_size=PROMPTS * G,  # completions per step
        num_generations=G,
        max_completion_length=MAX_NEW_TOKENS,
        temperature=TEMPERATURE,
        top_p=1.0,
        top_k=0,
        beta=KL_COEF,  # TRL's default is 0 (no reference); gro's grpo preset uses 0.04
        epsilon=EPSILON,
        loss_type="grpo",  # the DeepSeekMath aggregation gro's grpo preset reproduces
        scale_rewards="group",
        num_iterations=1,
        max_steps=s.steps,
        learning_rate=s.lr,
        lr_scheduler_type="cosine",
        warmup_steps=s.warmup_steps,
        weight_decay=0.0,
        max_grad_norm=1.0,
        use_cpu=True,
        bf16=False,
        fp16=False,
        gradient_checkpointing=gradient_checkpointing,  # TRL's default: True
        save_strategy="no",
        eval_strategy="no",
        report_to="none",
        logging_steps=1,  # the per-step reward curve
        disable_tqdm=True,
        dataloader_num_workers=0,
        seed=SEED,
    )


def trl_worker(
    model: str, checkpoint: Path, prompts: Path, out: Path, gradient_checkpointing: bool
) -> Result:
    import datasets
    from transformers import AutoModelForCausalLM, TrainerCallback
    from trl import GRPOTrainer

    from gro_core.models import load_tokenizer

    datasets.disable_progress_bars()
    score = scorer()

    def exact_match(completions: list[str], answer: list[str], **_: Any) -> list[float]:
        return score(completions, [{"answer": a} for a in answer]).total

    class Clock(TrainerCallback):
        def __init__(self) -> None:
            self.rewards: list[float] = []

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.started = time.perf_counter()

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.ended = time.perf_counter()

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **_: Any) -> None:
            if logs and "reward" in logs:
                self.rewards.append(logs["reward"])

    base_rss, start = common.rss_mb(), time.perf_counter()
    rows = [json.loads(line) for line in prompts.read_text(encoding="utf-8").splitlines()]
    clock, timer = Clock(), Timer()
    trainer = GRPOTrainer(
        model=AutoModelForCausalLM.from_pretrained(checkpoint, dtype=torch.float32),
        reward_funcs=exact_match,
        args=trl_config(model, out, gradient_checkpointing),
        train_dataset=datasets.Dataset.from_list(rows),
        processing_class=load_tokenizer(checkpoint),
        callbacks=[clock],
    )
    generate = trainer._generate_single_turn

    def counted_generate(prompt_ids: list[list[int]], *args: Any, **kwargs: Any) -> Any:
        completion_ids, logprobs = generate(prompt_ids, *args, **kwargs)
        timer.count(prompt_ids, completion_ids)
        return completion_ids, logprobs

    trainer._generate_single_turn = timer.wrap("generate", counted_generate)
    batch = trainer._generate_and_score_completions
    trainer._generate_and_score_completions = timer.wrap("batch", batch)
    trainer.train()
    return {
        "steps": trainer.state.global_step,
        "loop_s": clock.ended - clock.started,
        "setup_s": clock.started - start,
        "base_rss_mb": base_rss,
        "rewards": clock.rewards,
        "timer": vars(timer),
        "held_out": held_out_reward(trainer.model.eval(), trainer.processing_class),
    }
