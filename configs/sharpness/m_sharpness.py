"""jaxopt-lab run configs/sharpness/m_sharpness.py

m-sharpness: SAM with independent perturbations per micro-batch of m examples,
m in {64, 16, 4} (num_chunks 1, 4, 16 of a batch of 64), on digits with 20% label noise, vs SGD.
The SAM paper reports that smaller m generalizes better.
"""

import ml_collections

QUICK = {"epochs": 2, "eval_every": 1, "seeds": 2, "hidden": 16, "power_iterations": 3,
         "hessian_batch": 64, "only": ("sgd",)}


def get_config():
    # The label-noise study's config (configs/sharpness/label_noise.py) with this study's changes.
    from jaxopt_lab.lab.config import load_config_module
    from jaxopt_lab.lab.project import project_root

    c = load_config_module(project_root() / "configs" / "sharpness" / "label_noise.py").get_config()
    c.epochs = 40
    c.eval_every = 10
    c.optimizers = ml_collections.ConfigDict({
        "sgd": {"name": "sgd", "learning_rate": 0.05},
        "sam_m64": {"name": "m_sam", "learning_rate": 0.05, "rho": 0.05, "num_chunks": 1},
        "sam_m16": {"name": "m_sam", "learning_rate": 0.05, "rho": 0.05, "num_chunks": 4},
        "sam_m4": {"name": "m_sam", "learning_rate": 0.05, "rho": 0.05, "num_chunks": 16},
    })
    return c
