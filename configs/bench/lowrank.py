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
    c = ml_collections.ConfigDict()
    c.experiment = "bench_lowrank"
    c.seed = 0
    c.layers = 4
    c.width = 1024
    c.batch_size = 256
    c.rank = 256                  # d / 4, filled into every entry that takes a rank
    c.update_proj_gap = 200
    c.llama60m_rank = 128         # state ratios on LLaMA-60M shapes too (0: skip)
    c.timing = True
    c.timed = ()                  # if non-empty: time only these labels (and the reference)
    c.repeats = 7
    c.timed_steps = 10            # consecutive plain steps per round (state threaded, as in a run)
    c.blas_threads = 1            # OpenBLAS threads for the timed steps' SVDs (0: the default)
    c.svd_size = 1024
    c.svd_rank = 64
    c.reference = "adam"
    c.optimizers = ml_collections.ConfigDict({
        "adam": {"name": "adam", "learning_rate": 1e-3},
        "optax_galore": {"name": "optax_galore", "learning_rate": 1e-3},
        "galore": {"name": "galore", "learning_rate": 1e-3},
        "galore_rsvd": {"name": "galore", "learning_rate": 1e-3, "projector": "randomized_svd"},
        "galore_optax_side": {"name": "galore", "learning_rate": 1e-3, "side": "memory_min"},
        "fira": {"name": "fira", "learning_rate": 1e-3},
        "dct_galore": {"name": "dct_galore", "learning_rate": 1e-3},
        "q_galore": {"name": "q_galore", "learning_rate": 1e-3},
        "adam_8bit": {"name": "adam_8bit", "learning_rate": 1e-3},
        "smmf": {"name": "smmf", "learning_rate": 1e-3},
        "subset_norm": {"name": "subset_norm", "learning_rate": 1e-3},
    })
    return c
