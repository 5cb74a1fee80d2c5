"""jaxopt-lab run configs/ot/race.py

Sinkhorn (kernel scaling with log absorption, and pure log domain), ott-jax's Sinkhorn and
Sinkhorn-Newton-Sparse race to a marginal error of 1e-5 (float32) on point clouds (n=500) and W1/W2
between grid densities (24^2 = 576 points), at epsilon = 0.01 x median cost: error vs iteration and vs
wall time (Sinkhorn-Newton-Sparse, arXiv:2401.12253).
"""

import ml_collections

QUICK = {"n": 40, "repeats": 1, "sinkhorn.max_iterations": 2000, "sns.max_iterations": 20,
         "problems": ("cloud",), "solvers": ("sinkhorn", "sns")}


def get_config() -> ml_collections.ConfigDict:
    cfg = ml_collections.ConfigDict()
    cfg.experiment = "ot_race"
    cfg.seed = 0
    cfg.study = "race"
    cfg.problems = ("cloud", "grid_w1", "grid_w2")
    cfg.solvers = ("sinkhorn", "sinkhorn_lse", "ott", "sns")
    cfg.n = 500
    cfg.grid_size = 24
    cfg.epsilon_scale = 0.01
    cfg.random_assignment_eta = 1200.0  # random_assignment: epsilon = 1/eta, the SNS paper's eta
    cfg.epsilon_sweep = ()              # epsilon scales of an optional Sinkhorn/SNS iteration-ratio sweep
    cfg.target_error = 1e-5
    cfg.float64 = False
    cfg.repeats = 3
    cfg.sinkhorn = ml_collections.ConfigDict()
    cfg.sinkhorn.max_iterations = 20000
    cfg.sns = ml_collections.ConfigDict()
    cfg.sns.warmup_iterations = 20
    cfg.sns.max_iterations = 300
    cfg.sns.kept_per_row = 0.2
    cfg.sns.cg_max_iterations = 50
    cfg.mirror = ml_collections.ConfigDict()
    cfg.mirror.n = 50
    cfg.mirror.noise = 1.0
    cfg.mirror.tau = 1.0
    cfg.mirror.iterations = (100, 300, 1000, 3000, 10000)
    cfg.mirror.sweep_iterations = (100, 1000, 10000)   # T for the plan-distance-vs-tau sweep
    cfg.mirror.tau_sweep = (1.0, 100.0, 1000.0, 10000.0)
    return cfg
