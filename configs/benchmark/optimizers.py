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
    c = ml_collections.ConfigDict()
    c.experiment = "optimizer_benchmark"
    c.seed = 0
    # one or two per family: optax's classics, the adaptive family, sharpness-aware (two gradients),
    # low-rank, curvature (Sophia: a Hessian estimate from grad_fn), learning-rate-free
    c.optimizers = ("sgd", "sgd_nesterov", "adam", "adamw", "lion", "muon", "schedule_free_adamw",
                    "adopt", "mars", "sam", "galore", "sophia", "prodigy")
    c.exclude = ()
    c.workloads = ("digits_mlp", "digits_cnn", "llama")
    c.reference = "adam"           # sets each target whose value here is 0
    c.target_fraction = 0.75       # ... at this fraction of the budget
    c.tau_max = 4.0                # AlgoPerf's upper limit of the profile integral
    c.rank_by = "time"             # "time" (AlgoPerf) or "steps"
    c.seeds = 3
    c.lr = ml_collections.ConfigDict({"min": 1e-4, "max": 1.0, "num": 6})
    c.digits_mlp = ml_collections.ConfigDict({"hidden": (64,), "batch_size": 64, "steps": 400,
                                              "eval_every": 20, "target": 0.0})
    c.digits_cnn = ml_collections.ConfigDict({"channels": (8, 16), "batch_size": 64, "steps": 300,
                                              "eval_every": 20, "target": 0.0})
    c.llama = ml_collections.ConfigDict({"dim": 32, "n_layers": 1, "n_heads": 2, "seq_len": 32,
                                         "batch_size": 8, "corpus_bytes": 300_000, "steps": 300,
                                         "eval_every": 20, "target": 0.0})
    return c
