"""jaxopt-lab run configs/bench/ot_scale.py

Sinkhorn on large point clouds without forming the cost matrix (experiments/bench_ot_scale.py): per-iteration
speed and cost at n = m = 2e4 vs ott-jax's online PointCloud(batch_size=...) (or its dense path, on the
largest size it fits), the envelope gradient's cost vs the forward solve (n = 2000), and n = m = 1e5 points
in 3-D to marginal error 1e-3: compiled at that size (XLA's buffers) and its time projected from the 2e4
per-iteration time by n^2 scaling (``large.solve=True`` runs the whole solve: hours on 2 cores), with the
peak RSS of a fresh process doing only that.
"""

import ml_collections

QUICK = {"large.n": 1000, "large.solve": True, "mid.n": 600, "mid.dense_n": 400, "mid.iterations": 10,
         "gradient.n": 400, "gradient.repeats": 2, "block_size": 128, "median_sample": 400}


def get_config() -> ml_collections.ConfigDict:
    cfg = ml_collections.ConfigDict()
    cfg.experiment = "bench_ot_scale"
    cfg.seed = 0
    cfg.block_size = 0                     # our solver's default block: about 2^19 cost entries
    cfg.epsilon_scale = 0.01
    cfg.median_sample = 1000
    cfg.large = ml_collections.ConfigDict()
    cfg.large.n = 100_000
    cfg.large.threshold = 1e-3
    cfg.large.max_iterations = 2000
    cfg.large.solve = False
    cfg.mid = ml_collections.ConfigDict()
    cfg.mid.n = 20_000
    cfg.mid.dense_n = 20_000
    cfg.mid.iterations = 10
    cfg.gradient = ml_collections.ConfigDict()
    cfg.gradient.n = 2000
    cfg.gradient.threshold = 1e-3
    cfg.gradient.repeats = 5                # median of 5 timed runs each (forward, gradient), compiled first
    return cfg
