"""SAM's edge of stability: the top Hessian eigenvalue SAM settles at, against its prediction.

"SAM operates far from home: eigenvalue regularization as a dynamical phenomenon" (Agarwala &
Dauphin, arXiv:2301.09949). For unnormalized SAM, ``w <- w - eta grad L(w + rho grad L(w))``, on a
quadratic direction of curvature ``lambda`` the error is multiplied by ``1 - eta lambda (1 + rho
lambda)`` per step, so the dynamics are stable iff ``eta lambda (1 + rho lambda) < 2``: the edge is

    lambda*(eta, rho) = (sqrt(1 + 8 rho / eta) - 1) / (2 rho)      (-> 2 / eta, GD's edge, as rho -> 0)

([derived]). A 2-layer tanh network is trained full batch on random targets (float64)
for every (eta, rho) of the grid and several initializations (one ``lab.sweep`` call of the training
engine's pure chunks, :mod:`jaxopt_lab.train`); every
``eval_every`` steps the top Hessian eigenvalue of the training loss is measured by power iteration
on Hessian-vector products. The *plateau* is the median of the last ``plateau_fraction`` of those
measurements; the summary reports, per grid point, plateau, prediction, relative error and the number
of diverged runs, and the worst relative error over the SAM runs (rho > 0) and over the GD runs
(rho = 0) that stayed finite.
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np

from jaxopt_lab import optim, train
from jaxopt_lab.lab import Each, Range, Rule, plots
from jaxopt_lab.lab import sweep as sweep_lib

CONFIG_SPEC = {
    "n": Range(1, integer=True),
    "dim": Range(1, integer=True),
    "width": Range(1, integer=True),
    "steps": Range(1, integer=True),
    "eval_every": Range(1, integer=True),
    "seeds": Range(1, integer=True),
    "target_scale": Range(0.0, open_low=True),
    "plateau_fraction": Range(0.0, 1.0, open_low=True),
    "power_iterations": Range(1, integer=True),
    "etas": Each(Range(0.0, open_low=True)),
    "rhos": Each(Range(0.0)),
}

CONFIG_DEFAULTS = {
    "seed": (0, "first initialisation seed (seeds seed .. seed + seeds - 1)"),
    "data_seed": (0, "seed of the random inputs and targets"),
    "n": (200, "training examples (full batch)"),
    "dim": (20, "input dimension"),
    "width": (50, "hidden width of the 2-layer tanh network"),
    "target_scale": (2.0, "standard deviation of the random targets"),
    "etas": ((0.2, 0.4), "learning rates eta of the grid (positive floats)"),
    "rhos": ((0.0, 0.05, 0.1, 0.2), "SAM radii rho of the grid (floats >= 0; 0 is gradient descent)"),
    "steps": (2000, "full-batch steps, a multiple of eval_every"),
    "eval_every": (50, "steps between measurements of the top Hessian eigenvalue"),
    "seeds": (3, "initialisations per grid point"),
    "plateau_fraction": (0.25, "the plateau is the median of this last fraction of the measurements"),
    "power_iterations": (20, "least power-iteration steps per measurement (at most 5x as many)"),
}

# checked before anything is imported (see jaxopt_lab.lab.rules)
CONFIG_RULES = (Rule("eval_every", "steps % eval_every == 0", "a divisor of steps = {steps}"),)


def predicted_edge(eta, rho):
    """lambda* with eta lambda (1 + rho lambda) = 2; 2/eta at rho = 0."""
    eta, rho = np.asarray(eta, float), np.asarray(rho, float)
    safe = np.where(rho > 0, rho, 1.0)
    return np.where(rho > 0, (np.sqrt(1.0 + 8.0 * safe / eta) - 1.0) / (2.0 * safe), 2.0 / eta)


def make_trial(cfg):
    """``trial(key, {"eta", "rho"}) -> {"lambda_max": [evals], "loss": [evals]}`` (pure)."""
    k_x, k_y = jax.random.split(jax.random.PRNGKey(cfg.data_seed))
    x = jax.random.normal(k_x, (cfg.n, cfg.dim))
    y = cfg.target_scale * jax.random.normal(k_y, (cfg.n,))

    def loss_fn(params, batch):
        inputs, targets = batch
        prediction = jnp.tanh(inputs @ params["w1"]) @ params["w2"]
        return 0.5 * jnp.mean((prediction - targets) ** 2)

    def full_loss(params):
        return loss_fn(params, (x, y))

    def trial(key, hparams):
        k1, k2 = jax.random.split(key)
        params = {"w1": jax.random.normal(k1, (cfg.dim, cfg.width)) / np.sqrt(cfg.dim),
                  "w2": jax.random.normal(k2, (cfg.width,)) / np.sqrt(cfg.width)}
        engine = train.Engine(loss_fn, optim.sam(hparams["eta"], hparams["rho"], normalize=False),
                              train.batches.full_batch(), (x, y))

        def block(state, index):
            state, _ = engine.pure_run(state, key, index * cfg.eval_every, cfg.eval_every)
            top = optim.top_hessian_eigenvalue(
                full_loss, state.params, jax.random.fold_in(key, index), threshold=1e-8,
                max_iterations=5 * cfg.power_iterations, min_iterations=cfg.power_iterations)
            return state, {"lambda_max": top.eigenvalue, "loss": full_loss(state.params)}

        _, trace = jax.lax.scan(block, engine.pure_init(params), jnp.arange(cfg.steps // cfg.eval_every))
        return trace

    return trial


def run(cfg, ctx):
    # float64: the power iteration and the long full-batch runs need it.
    with jax.enable_x64(True):
        grid = {"eta": np.asarray(cfg.etas, np.float64), "rho": np.asarray(cfg.rhos, np.float64)}
        ctx.progress(1)
        result = sweep_lib.sweep(make_trial(cfg), cfg.seed + np.arange(cfg.seeds), grid)
        lam = np.asarray(result.outputs["lambda_max"])  # (eta, rho, seed, evals)
        losses = np.asarray(result.outputs["loss"])
    n_evals = lam.shape[-1]
    tail = max(1, int(round(cfg.plateau_fraction * n_evals)))
    # A run that blew up (started too far above its edge for the catapult to recover) has no
    # plateau: it is counted in diverged_* and left out of the errors, never silently dropped.
    diverged = ~np.all(np.isfinite(lam), axis=-1) | ~np.isfinite(losses[..., -1])
    plateau = np.where(diverged, np.nan, np.median(np.where(np.isfinite(lam), lam, 0.0)[..., -tail:],
                                                   axis=-1))  # (eta, rho, seed)
    prediction = predicted_edge(grid["eta"][:, None], grid["rho"][None, :])  # (eta, rho)
    relative = np.abs(plateau / prediction[..., None] - 1.0)

    def worst(x):
        return float(np.nanmax(x)) if np.isfinite(x).any() else float("nan")

    ctx.log(1, diverged_runs=int(diverged.sum()))

    summary = {"runs": int(diverged.size), "diverged_runs": int(diverged.sum())}
    for (i, eta), (j, rho) in itertools.product(enumerate(cfg.etas), enumerate(cfg.rhos)):
        tag = f"eta{eta:g}_rho{rho:g}"
        summary[f"plateau_{tag}"] = float(np.nanmean(plateau[i, j])) if not diverged[i, j].all() \
            else float("nan")
        summary[f"predicted_{tag}"] = float(prediction[i, j])
        summary[f"rel_error_{tag}"] = worst(relative[i, j])
        summary[f"diverged_{tag}"] = int(diverged[i, j].sum())
    sam = np.asarray(cfg.rhos) > 0
    gd_edge = 2.0 / np.asarray(cfg.etas)[:, None, None]
    if sam.any():
        summary["sam_max_rel_error"] = worst(relative[:, sam])
        summary["sam_max_plateau_over_gd_edge"] = worst((plateau / gd_edge)[:, sam])
        summary["sam_diverged_runs"] = int(diverged[:, sam].sum())
    if (~sam).any():
        summary["gd_max_rel_error"] = worst(relative[:, ~sam])
    ctx.summary(**summary)

    steps = cfg.eval_every * (1 + np.arange(n_evals))
    for i, eta in enumerate(cfg.etas):
        series = {f"rho={rho:g}": (steps, np.nanmean(np.where(diverged[i, j][:, None], np.nan,
                                                              lam[i, j]), axis=0))
                  for j, rho in enumerate(cfg.rhos)}
        fig = plots.lines(series, xlabel="step", ylabel="top Hessian eigenvalue",
                          title=f"unnormalized SAM, eta={eta:g}: dashed = predicted edge")
        for j, rho in enumerate(cfg.rhos):
            fig.axes[0].axhline(prediction[i, j], ls="--", lw=0.8,
                                color=fig.axes[0].lines[j].get_color())
        ctx.figure(f"lambda_max_eta{eta:g}", fig)
