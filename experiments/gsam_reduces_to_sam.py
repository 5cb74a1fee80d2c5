"""GSAM with rho_max = rho_min and alpha = 0 against SAM, step for step over a training run.

big_vision's GSAM (google-research/big_vision, ``big_vision/trainers/proj/gsam/gsam.py``,
``gsam_gradient``) states: "Setting `rho_max=rho_min` and `alpha=0` reduces GSAM to SAM." (Zhuang et
al., "Surrogate Gap Minimization Improves Sharpness-Aware Training", arXiv:2203.08065; SAM: Foret et
al., arXiv:2010.01412). GSAM's radius follows the learning rate, ``rho_t = rho_min + (rho_max -
rho_min) (lr_t - lr_min) / (lr_max - lr_min)``, and its direction is ``g_r - alpha g_perp``; with
``rho_max = rho_min`` the radius is constant and with ``alpha = 0`` the direction is ``g_r``: SAM's.

The digits MLP is trained on the training engine (:mod:`jaxopt_lab.train`) by SAM and by three GSAM
variants from the same initialization and minibatches, with a cosine learning-rate schedule (so the
radius schedule is exercised): ``gsam_reduced`` (rho_min = rho_max, alpha = 0), and two controls that
must differ from SAM, ``gsam_alpha`` (alpha > 0) and ``gsam_rho_schedule`` (rho_min < rho_max). All runs
are one jitted ``lax.scan`` over steps; after every step the relative difference of each variant's
parameters to SAM's, ``max |w_v - w_sam| / max |w_sam|`` over all leaves, is recorded.

Summary: ``max_rel_diff_<variant>`` (over the run), ``tolerance`` = steps x 2^-23 (float32 rounding
accumulated over the run, fixed a priori), the first and last training loss of SAM.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxopt_lab import data, models, optim, train
from jaxopt_lab.lab import Range, Rule, plots

CONFIG_SPEC = {
    "steps": Range(1, integer=True),
    "batch_size": Range(1, integer=True),
    "hidden": Range(1, integer=True),
    "learning_rate": Range(0.0, open_low=True),
    "lr_min": Range(0.0),
    "rho": Range(0.0, open_low=True),
    "alpha_control": Range(0.0, open_low=True),
    "rho_min_control": Range(0.0),
}

CONFIG_DEFAULTS = {
    "seed": (0, "seed of the initialisation and minibatch order, shared by every variant"),
    "data_seed": (0, "the digits train/test split"),
    "steps": (600, "training steps (the tolerance is steps x 2^-23)"),
    "batch_size": (64, "examples per minibatch"),
    "hidden": (128, "MLP hidden width (two hidden layers)"),
    "learning_rate": (0.1, "peak learning rate lr_max of the cosine schedule"),
    "lr_min": (1e-3, "final learning rate of the cosine schedule, < learning_rate"),
    "rho": (0.05, "SAM's radius, GSAM's rho_max (and rho_min of gsam_reduced and gsam_alpha)"),
    "alpha_control": (0.3, "GSAM's alpha of the gsam_alpha control (> 0: must differ from SAM)"),
    "rho_min_control": (0.01, "rho_min of the gsam_rho_schedule control, < rho (must differ from SAM)"),
}

# rules relating keys, checked before anything is imported (see jaxopt_lab.lab.rules)
CONFIG_RULES = (
    Rule("lr_min", "lr_min < learning_rate",
         "< learning_rate = {learning_rate} (the schedule must decay for the radius schedule to act)"),
    Rule("rho_min_control", "rho_min_control < rho", "< rho = {rho} (the control must have a varying radius)"),
    Rule("batch_size", "batch_size <= digits_train_size()", "<= the training set size {digits_train_size()}"),
)
FLOAT32_ULP = 2.0 ** -23  # spacing of float32 numbers in [1, 2)


def optimizers(cfg) -> dict:
    """SAM and the GSAM variants, all on the same cosine learning-rate schedule."""
    schedule = optax.cosine_decay_schedule(cfg.learning_rate, cfg.steps,
                                           alpha=cfg.lr_min / cfg.learning_rate)
    lrs = {"lr_max": cfg.learning_rate, "lr_min": cfg.lr_min}
    return {
        "sam": optim.get("sam", learning_rate=schedule, rho=cfg.rho),
        "gsam_reduced": optim.get("gsam", learning_rate=schedule, rho=cfg.rho, rho_min=cfg.rho,
                                  alpha=0.0, **lrs),
        "gsam_alpha": optim.get("gsam", learning_rate=schedule, rho=cfg.rho, rho_min=cfg.rho,
                                alpha=cfg.alpha_control, **lrs),
        "gsam_rho_schedule": optim.get("gsam", learning_rate=schedule, rho=cfg.rho,
                                       rho_min=cfg.rho_min_control, alpha=0.0, **lrs),
    }


def relative_difference(params, reference):
    """max |p - r| / max |r| over all leaves."""
    diff = jax.tree.leaves(jax.tree.map(lambda p, r: jnp.max(jnp.abs(p - r)), params, reference))
    scale = jax.tree.leaves(jax.tree.map(lambda r: jnp.max(jnp.abs(r)), reference))
    return jnp.max(jnp.stack(diff)) / jnp.max(jnp.stack(scale))


def run(cfg, ctx):
    digits = data.digits(seed=cfg.data_seed)
    apply_fn, init_fn = models.functional_init(
        lambda rngs: models.MLP(64, (cfg.hidden, cfg.hidden), digits.num_classes, rngs=rngs))
    init_key, data_key = jax.random.split(ctx.key)
    x, y = jnp.asarray(digits.x_train), jnp.asarray(digits.y_train)

    def loss_fn(params, batch):
        return models.cross_entropy(apply_fn(params, batch[0]), batch[1])

    sampler = train.batches.epochs(len(y), cfg.batch_size)
    engines = {label: train.Engine(loss_fn, tx, sampler, (x, y)) for label, tx in optimizers(cfg).items()}
    params = init_fn(init_key)

    @jax.jit
    def trajectories():
        states = {label: engine.pure_init(params) for label, engine in engines.items()}

        def step(states, t):
            new, losses = {}, {}
            for label, engine in engines.items():
                new[label], metrics = engine.pure_run(states[label], data_key, t, 1)
                losses[label] = metrics["loss"][0]
            diffs = {label: relative_difference(new[label].params, new["sam"].params)
                     for label in engines if label != "sam"}
            return new, (diffs, losses)

        _, out = jax.lax.scan(step, states, jnp.arange(cfg.steps))
        return out

    ctx.progress(1)
    diffs, losses = jax.tree.map(np.asarray, trajectories())
    tolerance = cfg.steps * FLOAT32_ULP
    summary = {f"max_rel_diff_{label}": float(d.max()) for label, d in diffs.items()}
    summary.update(tolerance=tolerance, steps=cfg.steps, sam_first_loss=float(losses["sam"][0]),
                   sam_final_loss=float(losses["sam"][-10:].mean()))
    ctx.log(1, **summary)
    ctx.summary(**summary)

    steps = np.arange(1, cfg.steps + 1)
    floor = FLOAT32_ULP ** 2  # exact zeros drawn at this floor on the log scale
    series = {label: (steps, np.maximum(d, floor)) for label, d in diffs.items()}
    series["tolerance (steps x 2^-23)"] = (steps, np.full(cfg.steps, tolerance))
    ctx.figure("relative_difference", plots.lines(
        series, xlabel="step", ylabel="max |w - w_sam| / max |w_sam|", logy=True,
        title=f"GSAM vs SAM on digits, cosine lr {cfg.learning_rate:g} -> {cfg.lr_min:g} "
              f"(zeros drawn at {floor:.0e})"))
