"""jaxopt-lab run configs/zoo/all_optimizers.py

Every registered optimizer (``jaxopt-lab list``) on the digits MLP, the small byte-level LM and the
10-d Rosenbrock valley, each with a learning-rate sweep from 1e-5 to 1 (two points per decade) over 2
seeds, each (task, optimizer) one vmapped ``lab.sweep``: robustness figures (final score vs learning
rate) and a table of the best learning rate with the score's mean and std over seeds (table.md).
"""

import ml_collections

# QUICK compiles one (task, optimizer) sweep only: each compile costs seconds on a 2-core CPU
QUICK = {"optimizers": ("sania",), "tasks": ("rosenbrock",), "seeds": 1, "lr.num": 2, "lr.min": 1e-3,
         "lr.max": 1e-2, "rosenbrock.steps": 3}


def get_config():
    # every value is the experiment's default (`jaxopt-lab show optimizer_zoo` lists them)
    return ml_collections.ConfigDict({"experiment": "optimizer_zoo"})
