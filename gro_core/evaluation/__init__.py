"""Evaluation: how well a policy does on held-out prompts, and the runs and jobs that ask.

    metrics.py  pure metrics of counts and token ids: pass@k, distinct-n, pairwise similarity
    policy.py   evaluate_policy(model, ...): the eval/* metrics of a model in memory (the
                trainers' periodic evaluation of online methods calls it too)
    targets.py  what a target names (a model, a checkpoint, a run directory) and its weights
    runs.py     evaluate_run(target): a training spec's held-out data, for `gro eval`
    spec.py     EvaluationSpec: one evaluation job, validated without torch
    job.py      run_evaluation(spec, out_dir): an EvaluationSpec evaluated, its outputs written
    frontier.py reward at matched KL: runs' (eval/kl_ref, eval/reward) curves read at common KL
                values, paired against a baseline (torch-free, for the API and bench/)

Import from the modules themselves: this file imports nothing, so the trainers can use
`policy` without loading what evaluates runs (which reads the trainers' checkpoints).
"""
