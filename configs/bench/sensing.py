"""jaxopt-lab run configs/bench/sensing.py

Performance targets, measured side by side in one process: (1) 32 (seed, k, alpha) symmetric GD
trials as one vmapped lab.sweep vs a Python loop over the same jitted trial (target >= 10x); (2) one GD
step with the rank-one operator at n=2000, k=10 vs the dense Gaussian operator at the same m, with m small
enough for the dense [m, n, n] array to fit in memory (target >= 20x), plus the dense step extrapolated
(linearly in m) to the rank-one run's m=10000.
Every setting is the experiment's default (`jaxopt-lab show bench_sensing` lists them).
"""

import ml_collections

QUICK = {"sweep.seeds": 2, "sweep.num_steps": 20, "rank_one.n": 200, "rank_one.m": 1000,
         "rank_one.dense_m": 8, "repeats": 1}


def get_config() -> ml_collections.ConfigDict:
    cfg = ml_collections.ConfigDict()
    cfg.experiment = "bench_sensing"
    return cfg
