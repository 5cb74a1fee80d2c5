"""jaxopt-lab reproduce scaledgd-conditioning

Iterations to a 1e-10 relative error vs the condition number kappa of M*: vanilla GD grows polynomially
in kappa, ScaledGD(lambda) / PrecGD only logarithmically. Float64.
"""

import ml_collections

from jaxopt_lab.lab import Claim

TITLE = ("The power of preconditioning in overparameterized low-rank matrix sensing "
         "(Xu, Shen, Ma, Tong, Chi; arXiv 2302.01186)")
DESCRIPTION = (
    "Symmetric dense Gaussian sensing of a rank-2 PSD M* (n=10, m=50nr=1000; rather than "
    "n=50, r=3, k=6, m=2000 -- smaller n for the 2-core budget, and m large enough for a small RIP "
    "constant, which the preconditioner divides by lambda) with geometric spectrum 1..1/kappa, kappa in "
    "{1, 10, 100, 1000}; width k=4 from X_0 = 1e-6 N(0,1)/sqrt(n); 2000 steps in float64 "
    "(jax.enable_x64 for this run), 2 seeds per point via lab.sweep. GD eta=0.1; ScaledGD(lambda) eta=0.3, "
    "lambda=0.1 sigma_r(M*); PrecGD eta=0.3, lambda_t=0.3 ||A(XX^T)-y|| (+ eps tr(X^T X)). Iterations "
    "are counted to the first error below 1e-10; a method that does not get there within 2000 steps at "
    "some kappa is censored there (its slope uses the reached points only). Step-size convention: our "
    "loss is 1/2 ||A(XX^T) - y||^2, the paper's 1/4 ||.||^2, so our eta is twice the paper's. "
    "Known gap (measured, not tuned away): fixed-lambda ScaledGD stalls above 1e-10 here. On an exactly "
    "isometric operator (A*A = I) the same solver and settings reach 1e-10 in 18-41 iterations at every "
    "kappa up to 1000 (tests/sensing/test_solvers.py), so the stall is the Gaussian operator's deviation "
    "from isometry: in the first phase its error delta ||M*|| (delta ~ 0.2 at m=1000, ~0.06 at m=50000) "
    "is amplified by 1/lambda = 10 kappa in the over-parameterized directions, which then decay only "
    "sublinearly, as lambda / (4 eta t) (measured 4.2e-5 sigma_r after 2000 steps at kappa=100 and 1000, "
    "the same at m=50000 and for alpha from 1e-6 to 1e-15). The paper's guarantee assumes a sample size "
    "growing with kappa (paper body); at kappa >= 100 that is out of reach here. PrecGD's "
    "lambda_t ~ ||A(XX^T) - y|| is large while the residual is, so it never amplifies that error.")

CLAIMS = [
    Claim("scaledgd_reaches_target_every_kappa",
          "ScaledGD(lambda) 'converges to the true low-rank matrix at a constant linear rate' "
          "[2302.01186 abstract]: 1e-10 reached at every kappa and seed",
          key="scaledgd_reached_fraction", op=">=", bound=1.0),
    Claim("scaledgd_log_kappa",
          "'after a small number of iterations that scales only logarithmically with respect to the "
          "condition number' [abstract]: its iterations vary by less than 3x across kappa (log(1000) "
          "~ 6.9; polynomial growth would give ~1000x; a kappa not reached counts as 2000)",
          key="scaledgd_iters_max_over_min", op="<", bound=3.0),
    Claim("gd_polynomial_kappa",
          "'vanilla GD which suffers from a polynomial dependency on the condition number' [abstract]: GD's "
          "iterations vs kappa have a log-log slope of at least 0.5, fitted over the kappas it reaches "
          "(it reaches fewer at larger kappa)",
          key="gd_iters_loglog_slope", op=">=", bound=0.5),
    Claim("gd_slower_at_large_kappa",
          "'vanilla GD ... polynomial dependency on the condition number' [abstract]: GD reaches 1e-10 "
          "within 2000 steps at fewer (kappa, seed) points than ScaledGD",
          key="gd_reached_fraction", op="<", bound="scaledgd_reached_fraction"),
    Claim("gd_slower_than_precgd_at_large_kappa",
          "'This significantly improves over the convergence rate of vanilla GD which suffers from a "
          "polynomial dependency on the condition number' [abstract], with PrecGD as the preconditioned "
          "method: GD reaches 1e-10 within 2000 steps at fewer (kappa, seed) points than PrecGD",
          key="gd_reached_fraction", op="<", bound="precgd_reached_fraction"),
    Claim("precgd_reaches_target_every_kappa",
          "PrecGD (adaptive lambda_t ~ sqrt(f)) shares the kappa-independent linear rate "
          "(Zhang, Fattahi, Zhang, NeurIPS 2021; paper body): 1e-10 reached at every kappa and seed",
          key="precgd_reached_fraction", op=">=", bound=1.0),
    Claim("precgd_log_kappa",
          "'a small number of iterations that scales only logarithmically with respect to the condition "
          "number' [2302.01186 abstract], for PrecGD: iterations vary by less than 3x over kappa (a kappa "
          "not reached counts as 2000)",
          key="precgd_iters_max_over_min", op="<", bound=3.0),
]

QUICK = {"problem.n": 8, "problem.m": 200, "num_steps": 300, "seeds": 1, "kappas": (1.0, 10.0),
         "log_points": 10, "m_sweep": (200, 800), "m_sweep_kappas": (10.0,)}


def get_config() -> ml_collections.ConfigDict:
    cfg = ml_collections.ConfigDict()
    cfg.experiment = "sensing_scaledgd"
    cfg.seed = 0
    cfg.seeds = 2
    cfg.num_steps = 2000
    cfg.x64 = True
    cfg.log_points = 60
    cfg.target = 1e-10
    cfg.problem = ml_collections.ConfigDict()
    cfg.problem.n = 10
    cfg.problem.rank = 2
    cfg.problem.m = 1000          # 50 n r: a small RIP constant (preconditioning amplifies its error)
    cfg.k = 4                     # 2r (over-parameterized)
    cfg.alpha = 1e-6              # the extra columns must stay far below sqrt(1e-10)
    cfg.kappas = (1.0, 10.0, 100.0, 1000.0)
    # Sensitivity of ScaledGD(lambda) to the measurement count (figure scaledgd_error_vs_m).
    cfg.m_sweep = (1000, 4000, 16000, 64000, 256000)
    cfg.m_sweep_kappas = (1.0, 10.0, 100.0)
    cfg.gd = ml_collections.ConfigDict()
    cfg.gd.step_size = 0.1
    cfg.scaled = ml_collections.ConfigDict()
    cfg.scaled.step_size = 0.3
    cfg.scaled.damping = 0.1      # lambda = 0.1 sigma_r(M*)
    cfg.precgd = ml_collections.ConfigDict()
    cfg.precgd.step_size = 0.3
    cfg.precgd.damping = 0.3      # lambda_t = 0.3 ||A(XX^T) - y||
    return cfg
