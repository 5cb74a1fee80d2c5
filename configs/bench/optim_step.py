"""jaxopt-lab run configs/bench/optim_step.py

One jitted training step of each optimizer on the digits MLP (64-256-256-10, batch 128): per-step
time, ratio to SGD, and for SAM the ratios to its base optimizer and to optax.contrib.sam
(targets: <= 2.1x base, <= 1.05x optax.contrib.sam). Reuse it for other models/lists by
overriding ``model`` and ``optimizers`` (e.g. configs/bench/optim_step_lm.py).
"""

import ml_collections

QUICK = {"repeats": 3, "steps_per_call": 2, "mlp_hidden": 32, "batch_size": 32, "only": ("sam",)}


def get_config():
    # The run is bench_optim_step's defaults (`jaxopt-lab show configs/bench/optim_step.py` lists each value with its help).
    c = ml_collections.ConfigDict()
    c.experiment = "bench_optim_step"
    return c
