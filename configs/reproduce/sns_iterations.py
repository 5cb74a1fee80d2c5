"""jaxopt-lab reproduce sns-iterations

Sinkhorn-Newton-Sparse vs Sinkhorn: iterations to a marginal error of 1e-8 on point clouds and W1/W2
between grid densities, at small epsilon (float64).
"""

import ml_collections

from jaxopt_lab.lab import Claim

TITLE = ("Accelerating Sinkhorn Algorithm with Sparse Newton Iterations (Tang et al., ICLR 2024, "
         "arXiv 2401.12253)")
DESCRIPTION = (
    "Problems: two random empirical measures in R^2 (n=500, squared-Euclidean cost) and "
    "bump-mixture densities on a 20x20 grid (n=400) with W1 cost ||x-y|| and W2 cost ||x-y||^2; "
    "epsilon = 1e-3 x median cost (the smallest epsilon of our Sinkhorn sweep). 64-bit floats are "
    "enabled for this run (a marginal error of 1e-8 is below float32 resolution). Sinkhorn: ours "
    "(stabilised kernel scaling; ott-jax's Sinkhorn is run too, for reference); SNS: 20 Sinkhorn warm-up "
    "steps (the paper's N1=20), then Newton steps with the Hessian sparsified to the 20% largest "
    "entries of each row (the paper suggests 2%, which we measured to converge only linearly at these "
    "epsilons), at most 50 CG iterations per step (tolerance 1e-10), Armijo backtracking. One warm-up "
    "step and one Newton step each count as one iteration; CG iterations are reported separately. The "
    "paper's MNIST L1/L2 experiments are replaced by the synthetic grid densities (no download). "
    "Root cause of the failing 'orders of magnitude' claim (full size 2026-12-02, 2 of 3 claims pass, "
    "908 s wall on 2 shared cores): Sinkhorn / SNS iterations 21632 / 223 = 97x on the cloud, 9481 / 235 = "
    "40x on W1, 2236 / 263 = 8.5x on W2. Where our run differs from the paper (Section 6, Table 1): "
    "(1) problems: its random assignment problem (n=500, C_ij ~ U[0,1]) and W1/W2 between two MNIST "
    "images vs our cloud and 20x20 grids; (2) epsilon: its eta = 1/epsilon = 1200 on unnormalised costs, "
    "ours 1e-3 x median cost; (3) warm-up: it uses N1 = 20, but N1 = 700 for MNIST L1, ours 20 everywhere; "
    "(4) sparsity: it keeps a fraction lambda = 2/n of the Hessian (15/n for L1), ours the 20% largest "
    "entries per row; (5) stopping: machine accuracy vs our l1 marginal error 1e-8. Iterations are "
    "counted alike (a Sinkhorn row+column sweep or a Newton step = 1; CG apart). Why W2 falls short: on "
    "smooth grid densities Sinkhorn itself needs only 2236 sweeps at this epsilon, so 100x needs SNS to "
    "finish within 22 iterations, i.e. at most 2 Newton steps after the 20 warm-up steps (the ratio is at "
    "most sinkhorn_iterations / (N1 + 1)); instead the Newton stage starts far from its quadratic region "
    "and spends most of its 243 steps damped (10 full steps; the marginal error rises to ~37 before the "
    "superlinear tail, figure error_vs_iteration_grid_w2.png). A longer warm-up shortens the Newton stage "
    "but not the total (checked on this W2 problem: N1 = 100 / 300 / 700 give 152 / 54 / 17 Newton steps, "
    "252 / 354 / 717 iterations in all, ratio <= 8.9). Nor does the ratio reach 100x at other epsilons: "
    "iteration_ratio_vs_epsilon.png (epsilon = 1e-2 / 3e-3 / 1e-3 x median: W2 12x / 20x / 8.5x, W1 18x / "
    "36x / 40x, cloud 26x / 74x / 97x); at 3e-4 and 1e-4 x median our SNS with N1 = 20 did not converge in "
    "500 Newton steps on W2 (the line search fails and the steps fall back to Sinkhorn sweeps). The "
    "paper's own discretized-density results are below 100x too: its Table 1 (figures as transcribed by a "
    "third-party summary; we could not open the table itself) gives 53 vs 2,041 iterations on MNIST L2 "
    "(38x) and 777 vs 5,748 on MNIST L1 (7.4x); its orders of magnitude are on the random assignment "
    "problem (29 vs 56,199). In that setting (this experiment's problem 'random_assignment', n = 500, "
    "eta = 1200, target 1e-8) our SNS needed 27 / 50 / 38 iterations on three instances (20 warm-up + "
    "7 / 30 / 18 Newton) against 3,478 / 18,510 / 14,380 Sinkhorn sweeps (129x / 370x / 378x), in line "
    "with the paper; a fourth instance needed 353,750 Sinkhorn sweeps and SNS did not converge in 500 "
    "Newton steps, so the problem's counts are strongly instance-dependent and too slow for this "
    "reproduction's time budget. The claim is kept as first stated and fails: on W1/W2 grid densities at "
    "these epsilons SNS saves one to two orders of magnitude less than the 100x reading, as do the paper's "
    "own MNIST numbers.")

_QUOTE = ("'In terms of total iteration count ... SNS ... converges orders of magnitude faster across a wide "
          "range of practical cases, including optimal transportation between empirical distributions and "
          "calculating the Wasserstein W_1, W_2 distance of discretized densities' [2401.12253 abstract]")

CLAIMS = [
    Claim("orders_of_magnitude_fewer_iterations",
          _QUOTE + ": read as at least 100x (two orders of magnitude) fewer total iterations than Sinkhorn "
          "to reach marginal error 1e-8, on every problem type (minimum ratio over the three)",
          key="min_iteration_ratio", op=">=", bound=100.0),
    Claim("same_optimum",
          "SNS solves the same entropic OT problem ('a second stage featuring a Newton-type subroutine' "
          "[abstract]): its regularized cost equals Sinkhorn's to 1e-6 relative on every problem",
          key="max_reg_cost_rel_diff", op="<", bound=1e-6),
    Claim("both_reach_target",
          "both solvers reach the marginal error 1e-8 on every problem (else the iteration counts are "
          "lower bounds)",
          key="all_converged", op=">=", bound=1.0),
]

QUICK = {"n": 60, "grid_size": 7, "repeats": 1, "sinkhorn.max_iterations": 5000, "sns.max_iterations": 30,
         "epsilon_scale": 0.02, "problems": ("cloud",), "solvers": ("sinkhorn", "sns"),
         "epsilon_sweep": (0.05,)}


def get_config() -> ml_collections.ConfigDict:
    # The OT race config (configs/ot/race.py) with this reproduction's changes.
    from jaxopt_lab.lab.config import load_config
    from jaxopt_lab.lab.project import project_root

    cfg = load_config(project_root() / "configs" / "ot" / "race.py")
    cfg.solvers = ("sinkhorn", "ott", "sns")
    cfg.grid_size = 20
    cfg.epsilon_scale = 1e-3
    cfg.target_error = 1e-8
    cfg.float64 = True           # a marginal error of 1e-8 is below float32's resolution
    cfg.repeats = 1
    cfg.sinkhorn.max_iterations = 100000
    cfg.sns.max_iterations = 500
    cfg.mirror.iterations = (100,)
    cfg.epsilon_sweep = (1e-2, 3e-3, 1e-3)   # iteration ratio vs epsilon (figure iteration_ratio_vs_epsilon.png)
    return cfg
