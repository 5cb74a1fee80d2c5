"""jaxopt-lab run configs/bench/sweep_speedup.py

16 seeds of the quickstart model trained via one vmapped ``lab.sweep`` vs 16 sequential runs of the same
pure function, in one process. Target: the sweep at least 6x faster on 2 CPU cores.
"""

import ml_collections

QUICK = {"train.steps": 20, "bench.seeds": 2, "bench.repeats": 1}


def get_config() -> ml_collections.ConfigDict:
    from jaxopt_lab.lab.config import load_config_module
    from jaxopt_lab.lab.project import project_root

    cfg = load_config_module(project_root() / "configs" / "quickstart.py").get_config()
    cfg.experiment = "bench_sweep_speedup"
    cfg.train.steps = 500
    cfg.train.checkpoint_every = 0
    cfg.bench = ml_collections.ConfigDict()
    cfg.bench.seeds = 16
    cfg.bench.repeats = 3
    return cfg
