"""jaxopt-lab run configs/bench/sensing.py

Performance targets, measured side by side in one process: (1) 32 (seed, k, alpha) symmetric GD
trials as one vmapped lab.sweep vs a Python loop over the same jitted trial (target >= 10x); (2) one GD
step with the rank-one operator at n=2000, k=10 vs the dense Gaussian operator at the same m, with m small
enough for the dense [m, n, n] array to fit in memory (target >= 20x), plus the dense step extrapolated
(linearly in m) to the rank-one run's m=10000.
"""

import ml_collections

QUICK = {"sweep.seeds": 2, "sweep.num_steps": 20, "rank_one.n": 200, "rank_one.m": 1000,
         "rank_one.dense_m": 8, "repeats": 1}


def get_config() -> ml_collections.ConfigDict:
    cfg = ml_collections.ConfigDict()
    cfg.experiment = "bench_sensing"
    cfg.seed = 0
    cfg.repeats = 5
    cfg.sweep = ml_collections.ConfigDict()
    cfg.sweep.n = 8
    cfg.sweep.rank = 2
    cfg.sweep.m = 120
    cfg.sweep.num_steps = 300
    cfg.sweep.seeds = 4
    cfg.sweep.ks = (2, 4)
    cfg.sweep.alphas = (0.01, 0.03, 0.1, 0.3)   # 4 seeds x 2 widths x 4 scales = 32 trials
    cfg.rank_one = ml_collections.ConfigDict()
    cfg.rank_one.n = 2000
    cfg.rank_one.k = 10
    cfg.rank_one.m = 10000
    cfg.rank_one.dense_m = 16                    # 16 x 2000 x 2000 float32 = 256 MB
    return cfg
