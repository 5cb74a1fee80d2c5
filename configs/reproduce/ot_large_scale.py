"""jaxopt-lab reproduce ot-large-scale

Sinkhorn divergence between two 1e5-point samples of known Gaussians in 3-D approaches the closed-form
W2^2 as epsilon shrinks, down to the sampling error (experiments/ot_large_scale.py; online Sinkhorn, the
cost matrix is never formed).
"""

import ml_collections

from jaxopt_lab.lab import Claim

TITLE = ("Interpolating between Optimal Transport and MMD using Sinkhorn Divergences (Feydy et al., "
         "AISTATS 2019, arXiv 1810.08278), at scale")
DESCRIPTION = (
    "x ~ N(m1, S1), y ~ N(m2, S2) in R^3, n points each with uniform weights, squared-Euclidean cost. For "
    "each epsilon the debiased Sinkhorn divergence S_eps = OT_eps(x, y) - (OT_eps(x, x) + OT_eps(y, y))/2 is "
    "solved by our online Sinkhorn (row blocks, no cost matrix) and compared with the closed-form W2^2 "
    "between the Gaussians. The sampling error at each epsilon is S_eps between two independent samples "
    "of the same Gaussian (its own line in the figure). Size: n = 1e5 is out of reach on 2 CPU cores (each "
    "iteration evaluates 2.2e10 kernel entries, ~28 CPU-s at the 0.8e9 entries per CPU-second measured at "
    "n = 1e5 (docs/ot.md), and the smallest epsilon takes hundreds of iterations per solve, 24 solves); "
    "measured at n = 3000 (--set n=3000: 33 CPU-s, 55 with the former 1024-row blocks): 3/3 PASS, errors "
    "0.039, 0.0038, 0.0075, 0.018 against "
    "sampling levels 0.0053, 0.011, 0.018, 0.027 for epsilon = 1, 0.3, 0.1, 0.03 (error_vs_epsilon.png). "
    "At the --quick size (n = 1000) the first claim fails: the cross term's sampling bias is ~3x the "
    "same-distribution divergence at every epsilon (errors 0.053, 0.10, 0.12 vs 0.018, 0.032, 0.049), so the "
    "error grows as epsilon shrinks; the same-distribution line understates the sampling error at that n.")

CLAIMS = [
    Claim("error_decreases_to_sampling_level",
          "'S_eps ... interpolates between OT (eps -> 0) and MMD' [1810.08278 abstract]: read as |S_eps - W2^2| "
          "decreasing at every step to a smaller epsilon, unless it is already within 2x the sampling error",
          key="decreasing_until_sampling_fraction", op=">=", bound=1.0),
    Claim("reaches_sampling_error",
          "at the smallest epsilon the error is within 3x the sampling error of n samples",
          key="smallest_eps_error_over_sampling", op="<=", bound=3.0),
    Claim("all_converged", "every Sinkhorn solve reached its marginal-error threshold",
          key="all_converged", op=">=", bound=1.0),
]

QUICK = {"n": 1000, "epsilons": (1.0, 0.3, 0.1), "max_iterations": 2000, "block_size": 256}


def get_config() -> ml_collections.ConfigDict:
    cfg = ml_collections.ConfigDict()
    cfg.experiment = "ot_large_scale"
    cfg.seed = 0
    cfg.n = 100_000
    cfg.epsilons = (1.0, 0.3, 0.1, 0.03)
    cfg.threshold = 1e-3
    cfg.max_iterations = 3000
    cfg.block_size = 0                      # the solver's default: about 2^19 cost entries per block
    cfg.spread = 1.0
    return cfg
