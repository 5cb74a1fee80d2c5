"""jaxopt-lab run configs/ot_clustering/p2ot_digits.py

P2OT vs SeLa vs UOT self-labelling on long-tailed digits features (imbalance 0.1; class 9 keeps ~14 of
~135 train images), the fixed-feature stand-in for the paper's image data sets. Every other setting is the
experiment's default (`jaxopt-lab show p2ot`).
"""

import ml_collections

QUICK = {"train.epochs": 4, "train.steps_per_epoch": 2, "n_seeds": 1, "compare_uot": False, "data.dim": 8}


def get_config():
    c = ml_collections.ConfigDict()
    c.experiment = "p2ot"
    c.n_seeds = 3
    c.data = ml_collections.ConfigDict(dict(source="digits", imbalance_ratio=0.1))
    return c
