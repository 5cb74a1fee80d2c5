"""jaxopt-lab reproduce curvature-quality

On a small digits MLP, FOSI's Lanczos top-k Hessian eigenpairs (order 4k) against the dense Hessian's
eigh, and M-FAC's window estimate of the inverse damped empirical Fisher against the one of all samples.
"""

import ml_collections

from jaxopt_lab.lab import Claim

TITLE = "Curvature estimates vs exact quantities (small MLP, dense reference)"
DESCRIPTION = (
    "A digits MLP 64 -> 16 -> 10 (1210 parameters), 200 full-batch Adam steps (lr 1e-2) on n = 512 "
    "training samples, then, in float64: the dense Hessian of the full-batch loss and its eigh; "
    "jaxopt_lab's Lanczos (full re-orthogonalisation, the FOSI authors' algorithm) with the FOSI "
    "default order 4k for k in 1, 2, 5, 10; the damped empirical Fisher lambda I + G^T G / n "
    "(lambda = 1e-3) of all per-sample gradients against M-FAC's window estimate from m in 16, 64, "
    "256 of them (a random order), applied to the mean gradient by M-FAC's own inverse_fisher_product. "
    "Tolerances fixed before running: 5% on the top-k eigenvalues at FOSI's default k = 5. PSGD's "
    "preconditioners are not measured here.")
FOSI_QUOTE = ("FOSI runs Lanczos for m = 4 (k + l) iterations to estimate the k largest and l smallest "
              "Hessian eigenpairs (hsivan/fosi fosi/jax_optim/extreme_spectrum_estimation.py: "
              "'lanczos_order = 4 * (k_largest + l_smallest)'; FOSI: Hybrid First and Second Order "
              "Optimization, arXiv:2302.08484)")
MFAC_QUOTE = ("M-FAC approximates the inverse empirical Fisher from the m most recent gradients "
              "(arXiv:2107.03356, section 3, paraphrased): the estimate approaches the full empirical "
              "Fisher as the window m grows")
CLAIMS = [
    Claim("lanczos_top5_eigenvalues", FOSI_QUOTE + ": max relative error of the top-5 eigenvalues "
          "with order 20", key="fosi_default_max_rel_eigenvalue_error", op="<", bound=0.05),
    Claim("mfac_error_decreases_with_window", MFAC_QUOTE + ": relative error of F_m^-1 g strictly "
          "decreasing over m = 16, 64, 256", key="mfac_error_decreases_with_window", op=">=",
          bound=1.0),
]
QUICK = {"hidden": 4, "n_samples": 64, "train_steps": 10, "ks": (1, 2), "windows": (4, 16)}


def get_config():
    c = ml_collections.ConfigDict()
    c.experiment = "curvature_quality"
    c.seed = 0
    c.hidden = 16
    c.n_samples = 512
    c.train_steps = 200
    c.learning_rate = 1e-2
    c.damping = 1e-3
    c.ks = (1, 2, 5, 10)
    c.windows = (16, 64, 256)
    return c
