"""jaxopt-lab reproduce robust-subgradient

The l1 sub-gradient method from small initialization recovers a low-rank PSD matrix under sparse,
arbitrarily large outliers for any over-parameterized width r', while l2 GD does not.
"""

import ml_collections

from jaxopt_lab.lab import Claim

TITLE = ("Global convergence of the sub-gradient method for robust matrix recovery "
         "(Ma, Fattahi; arXiv 2202.08788)")
DESCRIPTION = (
    "Dense symmetric Gaussian sensing of a rank-2 PSD M* (n=20, m=20nr=800, smaller than n=30, "
    "m=1200 for the 2-core budget), a fraction of measurements shifted by +-10 ||y||_inf. SubGM on "
    "(1/m) sum |<A_i, UU^T> - y_i| with eta_t = 0.5 * 0.99^t (no normalisation), 1500 steps, float32; "
    "l2 GD with step 0.1 from the same init. (a) widths r' in {2, 4, 20} at alpha in {1e-3, 1} with 20% "
    "outliers; (b) success (final relative error < 1e-2) vs outlier fraction in {0, .1, .2, .3, .4} "
    "at r'=4, alpha=1e-3; (c) the r'=n final error vs m in {800, 3200, 12800} and alpha in "
    "{1e-3, 1e-5, 1e-7}; 3 seeds. "
    "Differences from the paper: n, m and the outlier model are ours (sign-symmetric shifts of "
    "10 ||y||_inf, as in Titan-Tong/ScaledGD MS_l1.m), the step is unnormalised eta_0 q^t with eta_0=0.5, "
    "q=0.99, the run is a fixed 1500 steps in float32 and the error is ||UU^T - M*||_F/||M*||_F. "
    "Root cause of the exact_recovery_overparameterized FAIL (measured, not tuned away): the "
    "over-parameterized run stops at a floor set by the sample size m and the init scale alpha, while "
    "r'=r recovers to float32 precision (9.7e-8). Full size, 20% outliers, r'=n=20, 3 seeds (figure "
    "overparam_error_vs_m_alpha.png, summary keys sensitivity_*): final error 4.8e-3 / 1.6e-3 / 1.5e-5 "
    "at alpha = 1e-3 / 1e-5 / 1e-7 for m=800 (20nr); 1.1e-3 / 6.8e-6 / 7.5e-8 at m=3200; 1.1e-4 / "
    "7.7e-8 / 8.1e-8 at m=12800. The floor falls with both m and alpha; exact recovery (< 1e-5) "
    "needs m >= 3200 (80nr) with alpha <= 1e-5. Our reading: the extra "
    "directions of U grow from alpha^2, driven by the sign pattern's deviation from sign-RIP (of order "
    "sqrt(n/m), not shrinking with the residual); the smaller alpha, the later they start and the less "
    "they grow. (Earlier measurements, seeds 0-1: "
    "slower decays, eta_0 in {0.2, 0.5}, q in {0.995, 0.998}, 3000 steps, only lower the m=800 floor to "
    "1.4e-3.) The paper's exact-recovery guarantee is for m and alpha beyond thresholds (paper body, "
    "not checked here); the configured m=20nr with alpha=1e-3 is outside them. The claims are kept as "
    "stated; agnostic_to_overparameterization passes at the looser 1e-2.")

CLAIMS = [
    Claim("agnostic_to_overparameterization",
          "'a simple SubGM with small initialization is agnostic to both over-parameterization and noise' "
          "[2202.08788 abstract]: with 20% outliers, every width r' in {r, 2r, n} ends below 1e-2",
          key="l1_small_init_final_error_max_over_widths", op="<", bound=1e-2),
    Claim("exact_recovery_overparameterized",
          "'it converges to the true solution, even under arbitrarily large and arbitrarily dense noise "
          "values' [abstract]: at r'=n with 20% outliers the final error reaches 1e-5 (exact recovery in "
          "float32)",
          key="l1_small_init_overparam_final_error", op="<", bound=1e-5),
    Claim("small_init_helps",
          "'small initialization nullifies the effect of over-parameterization ... leading to an exponential "
          "improvement in its convergence rate' [abstract]: at r'=n, alpha=1e-3 ends lower than alpha=1",
          key="l1_small_init_overparam_final_error", op="<", bound="l1_large_init_overparam_final_error"),
    Claim("l1_recovers_under_outliers",
          "'converges to the true solution, even under arbitrarily large and arbitrarily dense noise "
          "values' [abstract]: SubGM succeeds in at least 90% of seeds at every outlier fraction tested",
          key="l1_success_min_over_corrupted", op=">=", bound=0.9),
    Claim("l2_fails_under_outliers",
          "the l2 contrast (our expectation, not the paper's words: l1-SubGM recovers, l2-GD is "
          "biased by the outliers): l2 GD succeeds in no seed at any non-zero outlier fraction",
          key="l2_success_max_over_corrupted", op="<=", bound=0.0),
]

QUICK = {"problem.n": 8, "problem.m": 200, "num_steps": 300, "seeds": 1, "widths": (2, 8),
         "fractions": (0.0, 0.2), "log_points": 10, "sensitivity.ms": (200,),
         "sensitivity.alphas": (1e-3, 1e-7)}


def get_config() -> ml_collections.ConfigDict:
    cfg = ml_collections.ConfigDict()
    cfg.experiment = "sensing_robust"
    cfg.seed = 0
    cfg.seeds = 3
    cfg.num_steps = 1500
    cfg.log_points = 50
    cfg.problem = ml_collections.ConfigDict()
    cfg.problem.n = 20
    cfg.problem.rank = 2
    cfg.problem.m = 800              # 20 n r
    cfg.outlier_fraction = 0.2
    cfg.outlier_scale = 10.0         # |s_i| = 10 ||y||_inf, as in Titan-Tong/ScaledGD MS_l1.m
    cfg.widths = (2, 4, 20)          # r' = r, 2r, n
    cfg.alphas = (1e-3, 1.0)
    cfg.fractions = (0.0, 0.1, 0.2, 0.3, 0.4)
    cfg.compare_width = 4
    cfg.compare_alpha = 1e-3
    cfg.subgm = ml_collections.ConfigDict()
    cfg.subgm.step_size = 0.5
    cfg.subgm.decay = 0.99
    cfg.gd = ml_collections.ConfigDict()
    cfg.gd.step_size = 0.1
    cfg.success_below = 1e-2
    # Over-parameterized (r' = n) final error vs sample size and init scale (figure
    # overparam_error_vs_m_alpha): what sets the floor the claims run into.
    cfg.sensitivity = ml_collections.ConfigDict()
    cfg.sensitivity.ms = (800, 3200, 12800)
    cfg.sensitivity.alphas = (1e-3, 1e-5, 1e-7)
    return cfg
