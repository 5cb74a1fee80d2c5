"""jaxopt-lab run configs/bench/sweep_speedup.py

16 seeds of the quickstart model trained via one vmapped ``lab.sweep`` vs 16 sequential runs of the same
pure function, in one process. Target: the sweep at least 6x faster on 2 CPU cores.
Every setting is the experiment's default (`jaxopt-lab show bench_sweep_speedup` lists them).
"""

import ml_collections

QUICK = {"train.steps": 20, "bench.seeds": 2, "bench.repeats": 1}


def get_config() -> ml_collections.ConfigDict:
    cfg = ml_collections.ConfigDict()
    cfg.experiment = "bench_sweep_speedup"
    return cfg
