"""jaxopt-lab run configs/benchmark/optimizers.py

The optimizer benchmark (AlgoPerf-style: "Benchmarking Neural Network Training Algorithms",
arXiv:2306.07179): a chosen list of registry optimizers, one or two per family, on three workloads
(digits MLP, digits CNN, a small LLaMA-style byte LM), each tuned over the same 6 log-spaced learning
rates from 1e-4 to 1 x 3 seeds as one sweep per (workload, optimizer). Targets: what Adam's best
learning rate reaches (median over seeds) at 75% of each budget. Ranked by the area under the
time-to-target performance profile up to tau = 4. Measured on 2 CPU cores shared with other jobs (load
about 20), one (workload, optimizer) sweep takes about 40 s (MLP), 80 s (LLaMA) and 230 s (CNN: vmapped
convolutions are slow on CPU), about 75 minutes in all; the whole registry: ``--set 'optimizers=()'``
(hours). See docs/benchmark.md.
"""

import ml_collections

# QUICK: two optimizers, one small workload, tiny budgets: the whole pipeline (targets from the reference,
# sweeps, profiles, table) in a few seconds of compilation
QUICK = {"optimizers": ("adam", "sgd"), "workloads": ("digits_mlp",), "seeds": 3, "lr.num": 2, "lr.min": 1e-2,
         "lr.max": 1e-1, "digits_mlp.hidden": (16,), "digits_mlp.steps": 20, "digits_mlp.eval_every": 5}


def get_config():
    # every value is the experiment's default (`jaxopt-lab show optimizer_benchmark` lists them)
    return ml_collections.ConfigDict({"experiment": "optimizer_benchmark"})
