"""jaxopt-lab reproduce quickstart-sweep

Adam vs SGD on the quickstart digits MLP over 8 seeds, each optimizer one vmapped ``lab.sweep``.
"""

import ml_collections

from jaxopt_lab.lab import Claim

TITLE = "Quickstart sweep: Adam vs SGD on digits over 8 seeds"
DESCRIPTION = ("The quickstart MLP (64-64) on scikit-learn's digits, 1000 steps of batch 128, Adam "
               "(lr 1e-3) vs SGD (lr 0.1), 8 seeds each run as one vmapped lab.sweep call.")
CLAIMS = [
    Claim("adam_accuracy", "Adam's mean final test accuracy on digits is above 0.9",
          key="adam_test_accuracy_mean", op=">", bound=0.9),
]
QUICK = {"train.steps": 100, "compare.seeds": 2}


def get_config() -> ml_collections.ConfigDict:
    from jaxopt_lab.lab.config import load_config
    from jaxopt_lab.lab.project import project_root

    cfg = load_config(project_root() / "configs" / "quickstart.py")
    cfg.experiment = "compare_optimizers"
    cfg.train.checkpoint_every = 0
    cfg.compare = ml_collections.ConfigDict()
    cfg.compare.names = ("adam", "sgd")
    cfg.compare.learning_rates = (1e-3, 0.1)
    cfg.compare.seeds = 8
    return cfg
