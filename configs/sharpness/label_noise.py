"""jaxopt-lab run configs/sharpness/label_noise.py

SGD and the SAM family (sam, asam, gsam, gam, fisher_sam) on digits with 20% symmetric label noise:
test accuracy and the top Hessian eigenvalue over training, 4 seeds each.
"""

import ml_collections

QUICK = {"epochs": 2, "eval_every": 1, "seeds": 2, "hidden": 16, "power_iterations": 3,
         "hessian_batch": 64, "only": ("sgd",)}  # the SAM path runs in sam_label_noise --quick


def get_config():
    c = ml_collections.ConfigDict()
    c.experiment = "sharpness"
    c.seed = 0
    c.data_seed = 0            # the digits split and which labels are flipped
    c.label_noise = 0.2
    c.model = "mlp"            # "mlp" (64-h-h-10) or "cnn"
    c.hidden = 128
    c.normalize = False        # LayerNorm after each hidden layer (gives SAM-ON something to perturb)
    c.epochs = 60
    c.batch_size = 64
    c.seeds = 4
    c.eval_every = 5           # epochs between evaluations (test accuracy, lambda_max)
    c.hessian_batch = 512      # fixed training examples for lambda_max
    c.power_iterations = 20
    c.reference = "sgd"
    c.only = ()                # if non-empty: run only these labels (and the reference)
    c.optimizers = ml_collections.ConfigDict({
        "sgd": {"name": "sgd", "learning_rate": 0.05},
        "sam": {"name": "sam", "learning_rate": 0.05, "rho": 0.05},
        "asam": {"name": "asam", "learning_rate": 0.05, "rho": 0.5},
        "gsam": {"name": "gsam", "learning_rate": 0.05, "rho": 0.05, "alpha": 0.1},
        "gam": {"name": "gam", "learning_rate": 0.05},
        "fisher_sam": {"name": "fisher_sam", "learning_rate": 0.05, "rho": 0.05},
    })
    return c
