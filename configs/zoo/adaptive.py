"""jaxopt-lab run configs/zoo/adaptive.py

The adaptive family (jaxopt_lab.optim.adaptive) (AdamP, SGDP, Grams, MARS, FAdam, diffGrad, Lion-kappa, SANIA,
Gravity, XGrad) next to Adam, AdamW, Lion and SGD on the zoo's three tasks: learning-rate robustness
curves (1e-4 to 1, two points per decade) and the best-result table over 2 seeds (see configs/zoo/all_optimizers.py for every optimizer).
"""

import ml_collections


# QUICK compiles one (task, optimizer) sweep only: each compile costs seconds on a 2-core CPU
QUICK = {"optimizers": ("lion_kappa",), "tasks": ("digits",), "seeds": 1, "lr.num": 2, "lr.min": 1e-3,
         "lr.max": 1e-2, "digits.steps": 3, "digits.hidden": 8}


def get_config():
    c = ml_collections.ConfigDict({"experiment": "optimizer_zoo"})
    c.optimizers = ("sgd", "adam", "adamw", "lion", "adamp", "sgdp", "grams", "mars", "fadam",
                    "diffgrad", "lion_kappa", "sania", "gravity", "xgrad")
    c.lr = ml_collections.ConfigDict({"min": 1e-4, "max": 1.0, "num": 9})  # two points per decade
    return c
