"""jaxopt-lab run configs/sharpness/sam_on.py

SAM-ON: perturb only the LayerNorm affine parameters, vs SAM on all parameters and
SGD, on a LayerNorm MLP trained on digits with 20% label noise. SAM-ON's radius is larger (the
reference uses rho = 10 with ASAM; here plain SAM-ON with rho = 0.5).
"""

import ml_collections

QUICK = {"epochs": 2, "eval_every": 1, "seeds": 2, "hidden": 16, "power_iterations": 3,
         "hessian_batch": 64, "only": ("sam_on",)}


def get_config():
    # what differs from the experiment's defaults (the label-noise study, configs/sharpness/label_noise.py)
    c = ml_collections.ConfigDict({"experiment": "sharpness", "epochs": 40, "eval_every": 10})
    c.normalize = True         # LayerNorm after each hidden layer: SAM-ON's parameters
    c.optimizers = ml_collections.ConfigDict({
        "sgd": {"name": "sgd", "learning_rate": 0.05},
        "sam": {"name": "sam", "learning_rate": 0.05, "rho": 0.05},
        "sam_on": {"name": "sam_on", "learning_rate": 0.05, "rho": 0.5},
    })
    return c
