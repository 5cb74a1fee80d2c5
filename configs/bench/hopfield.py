"""jaxopt-lab run configs/bench/hopfield.py

Batched Hopfield retrieval (B = 1024 queries, N = 2048 patterns, d = 64): one update step vs a bare
softmax(beta Q X^T) X (target: >= 0.5x its throughput), and iterating to tolerance vs steps x one step
(target: <= 1), compile and run times apart, in one process.
Every setting is the experiment's default (`jaxopt-lab show bench_hopfield` lists them).
"""

import ml_collections

QUICK = {"num_queries": 64, "num_patterns": 128, "dim": 16, "repeats": 2, "max_iterations": 10}


def get_config() -> ml_collections.ConfigDict:
    cfg = ml_collections.ConfigDict()
    cfg.experiment = "bench_hopfield"
    return cfg
