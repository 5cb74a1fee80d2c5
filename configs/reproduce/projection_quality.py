"""jaxopt-lab reproduce projection-quality

Projection quality along training: the relative residual ||G - P P^T G|| / ||G|| of the LM's
matrix gradients for SVD, DCT (top-r columns by l1 score), random orthogonal and randomized-SVD
projectors at rank 16, fitted on the gradient itself and 100 steps earlier (DCT projection for low-rank training).
"""

import ml_collections

from jaxopt_lab.lab import Claim

TITLE = "Gradient-subspace capture: SVD vs DCT vs random projectors"
DESCRIPTION = (
    "'SVD-Free Low-Rank Adaptive Gradient Optimization for Large Language Models' (arXiv:2505.17967) against "
    "GaLore's SVD projector (arXiv:2403.03507) and a random orthogonal basis (FRUGAL's random "
    "projection, arXiv:2411.07837). Substitution: LLaMA on C4 -> the LLaMA-style decoder of "
    "jaxopt_lab.models (LlamaConfig.tiny) trained by Adam on the standard-library byte corpus for "
    "1,000 steps; every 100 steps the training gradient of each attention/MLP matrix is projected "
    "on its short side at rank 16 (dim/4). 'fresh' fits P on that gradient, 'stale' uses the P "
    "fitted 100 steps earlier (what a projected optimizer uses between refreshes). The DCT claim is "
    "read as: DCT's residual lies closer to SVD's than to random's (dct_position < 0.5, fixed a "
    "priori). One seed. Also probed at ranks 4, 8, 32 and 48 (figure dct_position_vs_rank.png). "
    "Why dct_near_svd fails (full size: position 0.81 fresh, 0.84 stale at rank 16), setting by "
    "setting against the paper and its code (IST-DASLab/ISTA-DASLab-Optimizers, "
    "fft_low_rank/dct_adamw.py and fft_projector.py): (1) what is measured -- the paper reports that "
    "DCT-AdamW matches SVD-based GaLore in loss, runtime and memory; it reports no projection "
    "residual, so the position < 0.5 is our reading of 'matching'; (2) the basis -- the official "
    "default (sim_type 'matmul') ranks the columns of its DCT matrix (the DCT-III vectors), ours "
    "the rows (DCT-II), both by the l1 norm of the gradient's coefficients; measured once outside "
    "this experiment, on this model's initial gradients at rank 16, both give the same position "
    "(0.664 and 0.663), so the basis is not the cause; (3) refresh -- the official default refits every step (update_proj_gap = 1), which is "
    "our 'fresh' case, and it fails too; (4) rank -- the position falls with rank but stays far "
    "above 0.5: fresh 0.88 / 0.85 / 0.81 / 0.75 / 0.68 and stale 0.88 / 0.87 / 0.84 / 0.81 / 0.76 "
    "at rank 4 / 8 / 16 / 32 / 48 of the projected side 64 (dct_position_vs_rank.png); (5) "
    "training stage -- at rank 16 the fresh position grows from 0.73 at step 100 to 0.83 at "
    "step 1000, as the SVD residual rises from 0.09 to 0.32 while DCT "
    "stays at 0.66-0.78 and random at 0.87 (projection_residual.png); (6) model and data -- "
    "LlamaConfig.tiny (dim 64, 2 layers, 256-byte vocabulary) on a byte corpus for 1,000 steps, "
    "against LLaMA 60M-1B on C4 for 10k+ steps, not runnable on 2 CPU cores. What the measurements "
    "show: the top-r DCT columns recover only 12-32% of the gap between a random subspace and the "
    "SVD one at every rank, stage and refresh period tried here -- the hidden coordinates of the "
    "matrices have no order along which a fixed cosine basis could align with the gradient -- so "
    "at this scale DCT is not near SVD in the captured gradient. Whether it is at the paper's "
    "model sizes, and whether its loss parity holds here, is not measured by this reproduction.")
QUOTE = ("'we store only the indices of the selected columns, avoiding the need to store full "
         "projection matrices ...'; 'matching the performance of costly SVD-based methods while "
         "achieving faster runtime and reduced memory usage' [abstract]")
CLAIMS = [
    Claim("svd_is_optimal", "precondition (Eckart-Young): the top-r SVD subspace has the smallest "
          "fresh residual", key="residual_fresh_svd", op="<=", bound="residual_fresh_dct"),
    Claim("dct_beats_random", QUOTE + ": DCT residual < random-subspace residual (fresh)",
          key="residual_fresh_dct", op="<", bound="residual_fresh_random"),
    Claim("dct_near_svd", QUOTE + ": (dct - svd)/(random - svd) < 0.5 (fresh)",
          key="dct_position_fresh", op="<", bound=0.5),
    Claim("dct_near_svd_between_refreshes", QUOTE + ": the same with projectors fitted 100 steps "
          "earlier (stale)", key="dct_position_stale", op="<", bound=0.5),
]
QUICK = {"steps": 6, "log_every": 2, "seq_len": 8, "batch_size": 2, "eval_windows": 2,
         "corpus_bytes": 20_000, "model.dim": 16, "model.n_layers": 1, "model.hidden_dim": 16,
         "model.n_heads": 2, "rank": 4, "projection.every": 2, "project_only": ("mlp",),
         "projection.kinds": ("svd", "dct", "random"), "projection.ranks": (8,)}


def get_config():
    # The LM pre-training config (configs/lowrank/lm_pretrain.py) with this reproduction's changes.
    from jaxopt_lab.lab.config import load_config
    from jaxopt_lab.lab.project import project_root

    c = load_config(project_root() / "configs" / "lowrank" / "lm_pretrain.py")
    c.steps = 1000
    c.log_every = 100
    c.eval_windows = 64
    c.update_proj_gap = 200
    c.optimizers = ml_collections.ConfigDict({"adam": {"name": "adam", "learning_rate": 3e-3}})
    c.projection = ml_collections.ConfigDict(
        {"every": 100, "kinds": ("svd", "dct", "random", "randomized_svd"),
         "ranks": (4, 8, 32, 48)})     # the sensitivity to rank (16 = dim/4 is the run's rank)
    return c
