"""jaxopt-lab run configs/bench/ot_scale.py

Sinkhorn on large point clouds without forming the cost matrix (experiments/bench_ot_scale.py): n = m = 1e5
points in 3-D to marginal error 1e-3 (time, peak RSS), per-iteration speed and cost at n = m = 2e4 vs
ott-jax's online PointCloud(batch_size=...) (or its dense path), and the envelope gradient's cost vs the
forward solve. Full size needs the machine alone (minutes, ~1-2 GiB).
"""

import ml_collections

QUICK = {"large.n": 1000, "mid.n": 600, "mid.dense_n": 400, "mid.iterations": 10, "block_size": 128,
         "median_sample": 400}


def get_config() -> ml_collections.ConfigDict:
    cfg = ml_collections.ConfigDict()
    cfg.experiment = "bench_ot_scale"
    cfg.seed = 0
    cfg.block_size = 1024
    cfg.epsilon_scale = 0.01
    cfg.median_sample = 1000
    cfg.large = ml_collections.ConfigDict()
    cfg.large.n = 100_000
    cfg.large.threshold = 1e-3
    cfg.large.max_iterations = 2000
    cfg.mid = ml_collections.ConfigDict()
    cfg.mid.n = 20_000
    cfg.mid.dense_n = 8000
    cfg.mid.iterations = 50
    cfg.mid.threshold = 1e-3
    return cfg
