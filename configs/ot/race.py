"""jaxopt-lab run configs/ot/race.py

Sinkhorn (kernel scaling with log absorption, and pure log domain), ott-jax's Sinkhorn and
Sinkhorn-Newton-Sparse race to a marginal error of 1e-5 (float32) on point clouds (n=500) and W1/W2
between grid densities (24^2 = 576 points), at epsilon = 0.01 x median cost: error vs iteration and vs
wall time (Sinkhorn-Newton-Sparse, arXiv:2401.12253).
"""

import ml_collections

QUICK = {"n": 40, "repeats": 1, "sinkhorn.max_iterations": 2000, "sns.max_iterations": 20,
         "problems": ("cloud",), "solvers": ("sinkhorn", "sns")}


def get_config() -> ml_collections.ConfigDict:
    # The race is ot_race's default configuration (`jaxopt-lab show configs/ot/race.py` lists it).
    cfg = ml_collections.ConfigDict()
    cfg.experiment = "ot_race"
    return cfg
