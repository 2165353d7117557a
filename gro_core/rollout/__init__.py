"""Rollouts: decoding G completions per prompt, and the engines that do it.

    sampling.py       RolloutSettings, Rollouts, sample(): gro's own batched KV-cache loop (hf)
    static_decode.py  the same loop over a static cache, for Llama-architecture models
    backends.py       rollout_backend(spec, device): the `rollout.backend` a job names (hf, vllm)
    vllm_engine.py    VLLMRollout: an in-process vLLM engine synced with the training weights

Import from the modules themselves (`from gro_core.rollout.sampling import sample`): this file
imports nothing, so loading one engine never loads the others.
"""
