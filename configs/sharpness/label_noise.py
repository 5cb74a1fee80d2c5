"""jaxopt-lab run configs/sharpness/label_noise.py

SGD and the SAM family (sam, asam, gsam, gam, fisher_sam) on digits with 20% symmetric label noise:
test accuracy and the top Hessian eigenvalue over training, 4 seeds each.
"""

import ml_collections

QUICK = {"epochs": 2, "eval_every": 1, "seeds": 2, "hidden": 16, "power_iterations": 3,
         "hessian_batch": 64, "only": ("sgd",)}  # the SAM path runs in sam_label_noise --quick


def get_config():
    # every value is the experiment's default (`jaxopt-lab show sharpness` lists them)
    return ml_collections.ConfigDict({"experiment": "sharpness"})
