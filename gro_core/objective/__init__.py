"""The GRO objective: ∇J = E_i[ w(d_i) · f(A_i) · ∇ log π(y_i | x_i) ].

    components.py   the registry of named parts and what each needs (no torch)
    config.py       GROConfig: one choice per part, checked when built (no torch)
    presets.py      each published method as a choice of parts (no torch)
    advantages.py   A: how much better a completion did than a baseline
    transforms.py   f: a monotone transform of A
    anchors.py      x and the anchors: d = x − sg(anchor)
    weights.py      w(d, sign A)
    aggregations.py Agg: what the loss is a mean over
    batch.py, groups.py  the detached view of a batch those parts read
    loss.py         gro_loss: the one surrogate whose gradient is the objective's

This package's __init__ imports nothing, so the torch-free modules stay torch-free.
"""
