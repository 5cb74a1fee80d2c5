"""jaxopt-lab run configs/bench/lowrank.py

Optimizer-state bytes and step time of the low-rank / memory-efficient optimizers on 4 dense
1024 x 1024 layers (batch 256) at rank 256 = d/4, against optax.adam and optax.contrib.galore at the
same rank (update_proj_gap 200, refresh cost amortized), plus full vs randomized SVD refresh of one
1024 x 1024 gradient at rank 64 (the performance targets).
"""

import ml_collections

QUICK = {"layers": 2, "width": 32, "batch_size": 8, "rank": 8, "repeats": 1, "svd_size": 32,
         "svd_rank": 4, "llama60m_rank": 0, "timed": ("galore",)}


def get_config():
    # The run is bench_lowrank's defaults (`jaxopt-lab show configs/bench/lowrank.py` lists each value with its help).
    c = ml_collections.ConfigDict()
    c.experiment = "bench_lowrank"
    return c
