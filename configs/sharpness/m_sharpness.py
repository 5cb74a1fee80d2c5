"""jaxopt-lab run configs/sharpness/m_sharpness.py

m-sharpness: SAM with independent perturbations per micro-batch of m examples,
m in {64, 16, 4} (num_chunks 1, 4, 16 of a batch of 64), on digits with 20% label noise, vs SGD.
The SAM paper reports that smaller m generalizes better.
"""

import ml_collections

QUICK = {"epochs": 2, "eval_every": 1, "seeds": 2, "hidden": 16, "power_iterations": 3,
         "hessian_batch": 64, "only": ("sgd",)}


def get_config():
    # what differs from the experiment's defaults (the label-noise study, configs/sharpness/label_noise.py)
    c = ml_collections.ConfigDict({"experiment": "sharpness", "epochs": 40, "eval_every": 10})
    c.optimizers = ml_collections.ConfigDict({
        "sgd": {"name": "sgd", "learning_rate": 0.05},
        "sam_m64": {"name": "m_sam", "learning_rate": 0.05, "rho": 0.05, "num_chunks": 1},
        "sam_m16": {"name": "m_sam", "learning_rate": 0.05, "rho": 0.05, "num_chunks": 4},
        "sam_m4": {"name": "m_sam", "learning_rate": 0.05, "rho": 0.05, "num_chunks": 16},
    })
    return c
