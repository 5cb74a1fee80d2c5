"""jaxopt-lab reproduce lion-kappa-box

Lion with decoupled weight decay lambda ends inside the box ||x||_inf <= 1/lambda and solves the
box-constrained least-squares problem (compared with projected gradient descent), lambda in {0.5, 1, 2}.
"""

import ml_collections

from jaxopt_lab.lab import Claim

TITLE = "Lion-kappa: weight decay lambda = the box constraint ||x||_inf <= 1/lambda"
DESCRIPTION = (
    "'Lion Secretly Solves Constrained Optimization: As Lyapunov Predicts' (arXiv:2310.05898), Lion from "
    "'Symbolic Discovery of Optimization Algorithms' (arXiv:2302.06675). Problem: "
    "f(x) = ||Ax - b||^2/2, d = 50, A 100 x 50 Gaussian, b = A x_true with x_true ~ N(0, 3^2), so the "
    "unconstrained optimum lies outside every box; full-batch Lion (jaxopt_lab lion_kappa, kappa = l1, "
    "b1 = 0.9, b2 = 0.99) started at the unconstrained optimum with a cosine-decaying step 1e-2 -> 1e-6 "
    "over 40,000 steps; the box solution by projected gradient descent (step 1/L) to a gradient-mapping "
    "norm below 1e-12. float64 (jax_enable_x64 inside the experiment). Tolerances are fixed a priori: "
    "the box test allows float64 rounding (1e-9); 'solves' is read as 1e-3 relative distance to the "
    "box solution and 1e-6 relative objective gap (Lion with step eta oscillates at amplitude ~eta, "
    "known pitfall, and the final step is 1e-6).")
QUOTE = ("Lion minimizes 'a general loss function f(x) while enforcing a bound constraint |x|_infty leq "
         "1/lambda' (lambda is the decoupled weight decay) [abstract, arXiv:2310.05898]")
CLAIMS = [
    Claim("problem_is_constrained", "precondition: the unconstrained optimum violates every box "
          "(otherwise the claim is vacuous)", key="min_unconstrained_linf_times_lambda", op=">",
          bound=1.0),
    Claim("ends_inside_box", QUOTE + ": lambda * ||x_T||_inf <= 1 for every lambda",
          key="max_final_linf_times_lambda", op="<=", bound=1.0 + 1e-9),
    Claim("solves_box_problem", QUOTE + ": ||x_T - x_box|| / ||x_box|| (x_box from projected GD)",
          key="max_rel_dist_to_box_solution", op="<", bound=1e-3),
    Claim("box_optimal_value", QUOTE + ": (f(x_T) - f(x_box)) / f(x_box)",
          key="max_rel_objective_gap", op="<", bound=1e-6),
    Claim("reference_converged", "projected GD reached its tolerance for every lambda (the reference "
          "is trustworthy)", key="all_pgd_converged", op=">=", bound=1.0),
]
QUICK = {"steps": 2000, "trace_points": 10, "dim": 10, "n_rows": 20, "pgd.max_iterations": 20000,
         "lion.learning_rate": 6e-2, "lion.final_learning_rate": 1e-5}


def get_config():
    c = ml_collections.ConfigDict()
    c.experiment = "lion_box"
    c.seed = 0
    c.dim = 50
    c.n_rows = 100
    c.lambdas = (0.5, 1.0, 2.0)
    c.target_scale = 3.0       # x_true ~ N(0, target_scale^2): optimum far outside the boxes
    c.steps = 40_000
    c.trace_points = 80
    c.lion = ml_collections.ConfigDict({"learning_rate": 1e-2, "final_learning_rate": 1e-6,
                                        "b1": 0.9, "b2": 0.99})
    c.pgd = ml_collections.ConfigDict({"max_iterations": 200_000, "threshold": 1e-12})
    return c
