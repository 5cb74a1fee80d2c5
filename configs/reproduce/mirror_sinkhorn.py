"""jaxopt-lab reproduce mirror-sinkhorn

Mirror Sinkhorn minimises linear and general convex objectives on the transport polytope, also with a
noisy online cost: gaps to POT's exact solutions vs the number of iterations T.
"""

import ml_collections

from jaxopt_lab.lab import Claim

TITLE = ("Mirror Sinkhorn: Fast Online Optimization on Transport Polytopes (Ballu, Berthet; ICML 2023, "
         "arXiv 2211.10420)")
DESCRIPTION = (
    "Two random empirical measures in R^2 (n=50, squared-Euclidean cost, float64: enabled "
    "for this run so that gaps to the exact LP are not float32 rounding). Mirror Sinkhorn with the "
    "step eta_t = sqrt(delta/t)/B, gamma_1 = a b^T, alternating row/column normalisation, Cesaro average, "
    "T in {100, ..., 30000}. (a) exact cost C: |<C, avg> - OT(C)| with OT(C) from POT emd2; (a') online "
    "noisy costs C_t = C + median(C) N(0, 1) (fresh noise each step); (b) f(P) = <C, P> + (tau/2)||P||^2, "
    "tau = 1, against POT's smooth_ot_dual(reg_type='l2') plan P*: the l1 plan distance and (b') the "
    "objective gap |f(avg) - f(P*)|; (c) marginal violation of the average. Slopes are least-squares fits "
    "of log error vs log T. Our reading of the rate: with eta_t ~ 1/sqrt(t) this is mirror descent's "
    "O~(1/sqrt(T)) (slope -1/2 up to log factors); the checks allow slope <= -0.4. "
    "Root cause of the failing plan-distance claim (b) (full size, 2026-12-02: 4 of 5 claims pass, (b) "
    "slope -0.17, 437 s wall on 2 shared cores): the paper's guarantee for a convex objective bounds the "
    "objective gap, not the distance to the minimiser; on the same runs the objective gap (b') decays at "
    "the rate (slope -0.63, 0.97 at T = 100 -> 0.026 at T = 30000, figure mirror_rates.png). The "
    "distance follows from the gap only through strong convexity, ||P - P*||_2^2 <= (2/tau)(f(P) - f(P*)) "
    "for feasible P, i.e. at best T^(-1/4), and that bound is vacuous until the gap falls below "
    "tau ||P - P*||_2^2 / 2 (about 1.4e-3 here, at the measured gap slope near T ~ 3e6). With tau = 1 and "
    "costs of order median(C) = 4.2 while plan entries are ~1/n^2, the quadratic term is small (at most "
    "1/(2n) = 0.01 against OT(C) = 2.44): P* is almost the sparse LP vertex (2.3 nonzeros per row), while "
    "the Mirror Sinkhorn average is "
    "a blur of entropic-like plans at an effective temperature 1/sum_t eta_t ~ B/(2 sqrt(delta T)) "
    "(~0.05 at T = 30000 with B = max C = 50), so the l1 distance is still 0.6 of a maximum 2 at "
    "T = 30000. Figure mirror_distance_vs_tau.png sweeps tau: the fitted distance slope over "
    "T = 100..10000 is -0.15 at tau = 1, -0.39 at tau = 100, -0.57 at tau = 1000 and -0.64 at tau = 1e4 "
    "(P* with 7.5, 19.5, 44.6 nonzeros per row) -- the distance reaches the rate once the quadratic "
    "term makes P* an interior, strongly convex minimiser. The claim is kept as first stated (tau = 1 "
    "is our choice, the paper gives no tau) and fails for this reason.")

_ABSTRACT = ("'a single-loop optimization algorithm for minimizing general convex objectives on these domains, "
             "utilizing the principles of Sinkhorn matrix scaling and mirror descent. The proposed algorithm "
             "is robust to noise, and can be used in an online setting.' [2211.10420 abstract]")

CLAIMS = [
    Claim("converges_to_exact_ot", _ABSTRACT + " -- (a): the cost gap of the average decays at the "
          "O~(T^-1/2) rate (fitted slope <= -0.4)", key="mirror/gap_slope", op="<=", bound=-0.4),
    Claim("robust_to_noise_online", _ABSTRACT + " -- (a'): with a fresh noisy cost every step the gap to the "
          "true OT cost still decays at that rate (fitted slope <= -0.4)",
          key="mirror/noisy_gap_slope", op="<=", bound=-0.4),
    Claim("general_convex_objective", _ABSTRACT + " -- (b): for <C,P> + (1/2)||P||^2 the average approaches "
          "POT's l2-smoothed OT plan (l1 distance fitted slope <= -0.4)",
          key="mirror/l2_distance_slope", op="<=", bound=-0.4),
    Claim("general_convex_objective_gap", _ABSTRACT + " -- (b'): for <C,P> + (1/2)||P||^2 the objective gap "
          "|f(avg) - f(P*)| to POT's l2-smoothed OT optimum decays at the O~(T^-1/2) rate the paper's "
          "convex-objective guarantee is about (fitted slope <= -0.4)",
          key="mirror/l2_gap_slope", op="<=", bound=-0.4),
    Claim("marginals_converge", "Ballu & Berthet, arXiv:2211.10420: the marginal violation of the average decays at the "
          "O~(T^-1/2) rate (fitted slope <= -0.4)", key="mirror/marginal_slope", op="<=", bound=-0.4),
]

QUICK = {"mirror.n": 12, "mirror.iterations": (50, 200), "mirror.sweep_iterations": (50, 200),
         "mirror.tau_sweep": (1.0, 1000.0)}


def get_config() -> ml_collections.ConfigDict:
    # The OT race config (configs/ot/race.py) with this reproduction's changes.
    from jaxopt_lab.lab.config import load_config
    from jaxopt_lab.lab.project import project_root

    cfg = load_config(project_root() / "configs" / "ot" / "race.py")
    cfg.study = "mirror"
    cfg.problems = ("cloud",)
    cfg.solvers = ("sinkhorn",)
    cfg.n = 50
    cfg.grid_size = 8
    cfg.target_error = 1e-6
    cfg.float64 = True
    cfg.repeats = 1
    cfg.sinkhorn.max_iterations = 1000
    cfg.sns.max_iterations = 100
    cfg.mirror.iterations = (100, 300, 1000, 3000, 10000, 30000)
    return cfg
