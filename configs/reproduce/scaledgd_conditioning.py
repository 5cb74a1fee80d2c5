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
    "Root cause of the ScaledGD(lambda) FAILs (measured, not tuned away): the measurement count, not the "
    "solver. (1) On an exactly isometric operator (A*A = I) the same solver and settings reach 1e-10 within "
    "60 iterations at kappa=1 and kappa=1000 alike (tests/sensing/test_solvers.py). (2) Figure "
    "scaledgd_error_vs_m.png sweeps m at fixed n=10, r=2, k=4, alpha=1e-6, 2000 steps, 2 seeds, and "
    "plots the final error, the largest over-parameterized eigenvalue sigma_3(X_t X_t^T)/||M*||_F over "
    "the run, and kappa*delta with delta = ||A*A(M*) - M*||_op/||M*||_op (delta falls as 1/sqrt(m): "
    "kappa*delta at kappa=10 is 1.18, 0.64, 0.29, 0.16, 0.081 at m = 1000, 4000, 16000, 64000, 256000). "
    "In the first phase that deviation feeds the extra columns at a rate ~ eta delta ||M*|| / lambda "
    "while the weakest signal direction grows at ~ eta sigma_r / lambda, so the extra columns stay near "
    "alpha^2 only while kappa*delta is small; once grown they decay only sublinearly (the "
    "preconditioner gives them o <- o - eta o^3 / lambda, o^2 ~ lambda / (2 eta t)). Measured at kappa=10: "
    "the largest extra eigenvalue falls 1.0e-2, 8.3e-5, 2.5e-8, 7.3e-10, 4.0e-12 and the final error "
    "6.9e-6, 3.5e-6, 7.6e-10, 7.0e-11, 3.0e-12 over the same m (1e-10 reached by both seeds at "
    "m=256000); at kappa=100, kappa*delta stays >= 0.81 up to m=256000 and the final error stays "
    "3e-7 to 7e-7; at kappa=1 (kappa*delta 0.19, 0.088, 0.038, 0.021, 0.011) the final error is "
    "3.0e-9 at m=1000 and 3.5e-11 to 7.5e-13 from m=4000 on: the target is met once kappa*delta is below "
    "about 0.1, at every kappa tried. Extrapolating kappa*delta <= 0.08 (where kappa=10 succeeds) "
    "needs m ~ 2e5 (kappa/10)^2, about 2e7 at kappa=100 and 2e9 at kappa=1000 (an [m, n, n] float64 "
    "operator of ~18 GB / ~1.8 TB), out of reach here. The paper's guarantee assumes a Gaussian "
    "sample size growing with kappa and a sufficiently small alpha (paper body, not checked here); at "
    "m=1000 that sample-size condition fails for every kappa >= 1 at this 1e-10 target. "
    "The gd_slower_at_large_kappa FAIL follows (ScaledGD reaches no point, GD the kappa <= 10 ones). "
    "PrecGD's lambda_t ~ ||A(XX^T) - y|| is large while the residual is, so it never amplifies that "
    "error and passes at every kappa.")

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
         "log_points": 10, "m_sweep": (200,), "m_sweep_kappas": (10.0,)}


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
