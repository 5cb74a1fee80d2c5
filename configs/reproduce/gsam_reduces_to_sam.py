"""jaxopt-lab reproduce gsam-reduces-to-sam

GSAM with rho_max = rho_min and alpha = 0 follows SAM step for step over a digits-MLP training run with
a cosine learning-rate schedule (big_vision's stated property); GSAM with alpha > 0 or rho_min < rho_max
does not.
"""

import ml_collections

from jaxopt_lab.lab import Claim

TITLE = "GSAM with rho_max = rho_min and alpha = 0 is SAM, step for step"
DESCRIPTION = (
    "Zhuang et al., 'Surrogate Gap Minimization Improves Sharpness-Aware Training', arXiv:2203.08065; "
    "the property is stated in google-research/big_vision, big_vision/trainers/proj/gsam/gsam.py "
    "(gsam_gradient's docstring). SAM: Foret et al., arXiv:2010.01412. Run: scikit-learn's digits, a "
    "64-128-128-10 ReLU MLP, batch 64, 600 steps of a cosine learning-rate schedule 0.1 -> 0.001 (so "
    "GSAM's radius schedule rho_t = rho_min + (rho_max - rho_min)(lr_t - lr_min)/(lr_max - lr_min) is "
    "evaluated at every step), rho = 0.05; SAM and three GSAM variants from the same initialization and "
    "minibatches on the training engine, one jitted scan. Tolerance fixed a priori from float32 "
    "arithmetic: the two updates are the same operations (g_r - 0 * g_perp = g_r exactly), so any "
    "difference comes from rounding in differently fused programs; we allow one float32 ulp (2^-23) of "
    "relative difference per step, accumulated over the run: steps x 2^-23 = 7.2e-5 for 600 steps. "
    "Controls (preconditions, so the comparison can fail): alpha = 0.3 and rho_min = 0.01 must each "
    "move GSAM away from SAM by more than that tolerance. Figure relative_difference.png: the "
    "per-step relative parameter difference of every variant to SAM.")
_QUOTE = ("'Setting `rho_max=rho_min` and `alpha=0` reduces GSAM to SAM.' (google-research/big_vision, "
          "big_vision/trainers/proj/gsam/gsam.py, gsam_gradient docstring; arXiv:2203.08065)")
CLAIMS = [
    Claim("gsam(rho_max = rho_min, alpha = 0) equals sam over the run", _QUOTE,
          "max_rel_diff_gsam_reduced", "<=", "tolerance"),
    Claim("control: alpha > 0 differs from sam", "precondition: the comparison detects GSAM's "
          "surrogate-gap term (alpha = 0.3)", "max_rel_diff_gsam_alpha", ">", "tolerance"),
    Claim("control: rho_min < rho_max differs from sam", "precondition: the comparison detects "
          "GSAM's radius schedule (rho_min = 0.01)", "max_rel_diff_gsam_rho_schedule", ">",
          "tolerance"),
    Claim("the run trains", "precondition: SAM lowers the training loss (last 10 steps below the "
          "first step's loss)", "sam_final_loss", "<", "sam_first_loss"),
]
QUICK = {"steps": 40, "hidden": 16}


def get_config():
    c = ml_collections.ConfigDict()
    c.experiment = "gsam_reduces_to_sam"
    c.seed = 0
    c.data_seed = 0
    c.steps = 600
    c.batch_size = 64
    c.hidden = 128
    c.learning_rate = 0.1
    c.lr_min = 0.001
    c.rho = 0.05
    c.alpha_control = 0.3
    c.rho_min_control = 0.01
    return c
