"""jaxopt-lab run configs/bench/optim_step.py

One jitted training step of each optimizer on the digits MLP (64-256-256-10, batch 128): per-step
time, ratio to SGD, and for SAM the ratios to its base optimizer and to optax.contrib.sam
(targets: <= 2.1x base, <= 1.05x optax.contrib.sam). Reuse it for other models/lists by
overriding ``model`` and ``optimizers`` (e.g. configs/bench/optim_step_lm.py).
"""

import ml_collections

QUICK = {"repeats": 3, "steps_per_call": 2, "mlp_hidden": 32, "batch_size": 32, "only": ("sam",)}


def get_config():
    c = ml_collections.ConfigDict()
    c.experiment = "bench_optim_step"
    c.seed = 0
    c.model = "mlp"            # "mlp": digits MLP; "lm": models.Llama(LlamaConfig.<lm_preset>)
    c.mlp_hidden = 256         # width of the MLP's two hidden layers
    c.lm_preset = "tiny"       # LlamaConfig preset for model="lm"
    c.seq_len = 64             # tokens per sequence for model="lm"
    c.batch_size = 128
    c.steps_per_call = 20      # training steps per timed call (one lax.scan)
    c.repeats = 20             # timed calls; the median is reported
    c.reference = "sgd"        # label the ratio_to_reference columns divide by
    c.only = ()                # if non-empty: time only these labels (and the reference)
    # label -> {name: registry name, **keyword arguments of optim.get}
    c.optimizers = ml_collections.ConfigDict({
        "sgd": {"name": "sgd", "learning_rate": 0.1},
        "adam": {"name": "adam", "learning_rate": 1e-3},
        "sam": {"name": "sam", "learning_rate": 0.1, "rho": 0.05},
        "sam_adam": {"name": "sam", "learning_rate": 1e-3, "rho": 0.05, "base": "adam"},
        "gsam": {"name": "gsam", "learning_rate": 0.1},
        "gam": {"name": "gam", "learning_rate": 0.1},
    })
    return c
