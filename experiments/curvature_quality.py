"""How well the matrix-free curvature estimates approximate the exact quantities on a small MLP.

A digits MLP (64 -> ``hidden`` -> 10, ~1.2k parameters at hidden = 16) is trained for ``train_steps``
Adam steps; at that point the full-batch quantities are computed densely (float64,
``jax.enable_x64`` inside this experiment):

* **FOSI** ("FOSI: Hybrid First and Second Order Optimization", arXiv:2302.08484): the top-``k``
  Hessian eigenpairs from ``jaxopt_lab.optim.curvature.lanczos`` with the FOSI default order
  ``4 k`` (Hessian-vector products only) against ``numpy``-style ``eigh`` of the dense Hessian:
  the largest relative eigenvalue error and the subspace error ``1 - sigma_min(U^T U_hat)``, per ``k``.
* **M-FAC** ("Efficient Matrix-Free Approximations of Second-Order Information", arXiv:2107.03356):
  the window estimate ``F_m = lambda I + G_m^T G_m / m`` from the last ``m`` per-sample gradients,
  applied by M-FAC's own ``inverse_fisher_product``, against the damped empirical Fisher of all ``n``
  samples: ``||F_m^{-1} g - F^{-1} g|| / ||F^{-1} g||`` for the mean gradient ``g``, per window ``m``.

PSGD's fitted preconditioners are not measured here (see the method's reference tests).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

from jaxopt_lab import data, models
from jaxopt_lab.lab import Range, plots
from jaxopt_lab.optim.curvature import inverse_fisher_product, lanczos

CONFIG_SPEC = {
    "hidden": Range(1, integer=True),
    "n_samples": Range(2, integer=True),
    "train_steps": Range(0, integer=True),
    "learning_rate": Range(0.0, open_low=True),
    "damping": Range(0.0, open_low=True),
}


def validate(cfg) -> None:
    from jaxopt_lab.lab import ConfigError

    ks, windows = tuple(cfg.ks), tuple(cfg.windows)
    if not ks or not all(isinstance(k, int) and k >= 1 for k in ks):
        raise ConfigError(f"config key 'ks' = {ks!r}: must be a non-empty tuple of ints >= 1")
    if not windows or not all(isinstance(m, int) and 1 <= m <= cfg.n_samples for m in windows):
        raise ConfigError(f"config key 'windows' = {windows!r}: must be ints in [1, n_samples = "
                          f"{cfg.n_samples}]")


def run(cfg, ctx):
    with jax.enable_x64(True):
        _run(cfg, ctx)


def _run(cfg, ctx):
    ds = data.digits(seed=cfg.seed)
    x = jnp.asarray(ds.x_train[:cfg.n_samples], jnp.float64)
    y = jnp.asarray(ds.y_train[:cfg.n_samples])
    apply_fn, init_fn = models.functional_init(
        lambda rngs: models.MLP(x.shape[1], (cfg.hidden,), ds.num_classes, rngs=rngs))
    params = jax.tree.map(lambda p: p.astype(jnp.float64), init_fn(ctx.key))

    def loss(params, xb, yb):
        return models.cross_entropy(apply_fn(params, xb), yb)

    tx = optax.adam(cfg.learning_rate)

    def train_step(carry, _):
        params, state = carry
        updates, state = tx.update(jax.grad(loss)(params, x, y), state, params)
        return (optax.apply_updates(params, updates), state), None

    (params, _), _ = jax.jit(lambda c: jax.lax.scan(train_step, c, None, length=cfg.train_steps))(
        (params, tx.init(params)))
    flat, unravel = ravel_pytree(params)
    d = flat.size
    flat_loss = lambda w: loss(unravel(w), x, y)  # noqa: E731
    ctx.progress(2)

    # FOSI: Lanczos top-k vs the dense Hessian
    hessian = jax.jit(jax.hessian(flat_loss))(flat)
    values, vectors = np.linalg.eigh(np.asarray(hessian))
    hvp = jax.jit(lambda v: jax.jvp(jax.grad(flat_loss), (flat,), (v,))[1])
    summary = {"n_params": d, "n_samples": cfg.n_samples, "train_loss": float(flat_loss(flat)),
               "hessian_top_eigenvalue": float(values[-1])}
    eig_errors, subspace_errors = [], []
    for k in cfg.ks:
        out = lanczos(hvp, d, jax.random.fold_in(ctx.key, k), order=4 * k, k=k, dtype=jnp.float64)
        exact = values[-k:]
        eig_error = float(np.max(np.abs(np.asarray(out.eigenvalues) - exact) / np.abs(exact)))
        overlap = np.linalg.svd(vectors[:, -k:].T @ np.asarray(out.eigenvectors).T,
                                compute_uv=False)
        eig_errors.append(eig_error)
        subspace_errors.append(float(1.0 - overlap.min()))
        summary[f"lanczos_k{k}_max_rel_eigenvalue_error"] = eig_error
        summary[f"lanczos_k{k}_subspace_error"] = subspace_errors[-1]
    fosi_k = 5 if 5 in cfg.ks else cfg.ks[-1]
    summary["fosi_default_k"] = fosi_k
    summary["fosi_default_max_rel_eigenvalue_error"] = summary[
        f"lanczos_k{fosi_k}_max_rel_eigenvalue_error"]
    ctx.log(1, **{k: v for k, v in summary.items() if k.startswith("lanczos")})

    # M-FAC: window estimate of the damped empirical Fisher vs all samples
    per_sample = jax.jit(jax.vmap(lambda xi, yi: jax.grad(
        lambda w: loss(unravel(w), xi[None], yi[None]))(flat)))(x, y)
    g = jnp.mean(per_sample, axis=0)
    fisher = cfg.damping * jnp.eye(d) + per_sample.T @ per_sample / cfg.n_samples
    exact_direction = jnp.linalg.solve(fisher, g)
    order = jax.random.permutation(jax.random.fold_in(ctx.key, 7), cfg.n_samples)
    mfac_errors = []
    for m in cfg.windows:
        window = per_sample[order[:m]]
        estimate = inverse_fisher_product(window, window @ window.T, g, cfg.damping)
        error = float(jnp.linalg.norm(estimate - exact_direction) / jnp.linalg.norm(exact_direction))
        mfac_errors.append(error)
        summary[f"mfac_m{m}_rel_error"] = error
    summary["mfac_error_decreases_with_window"] = float(all(
        b < a for a, b in zip(mfac_errors, mfac_errors[1:])))
    summary["mfac_largest_over_smallest_window_error"] = mfac_errors[-1] / mfac_errors[0]
    ctx.log(2, **{f"mfac_m{m}_rel_error": e for m, e in zip(cfg.windows, mfac_errors)})
    ctx.summary(**summary)

    fig, axes = plots.plt.subplots(1, 2, figsize=(11, 3.8))
    plots.lines({"max relative eigenvalue error": (list(cfg.ks), eig_errors),
                 "subspace error 1 - sigma_min": (list(cfg.ks), subspace_errors)},
                xlabel="k (Lanczos order 4k)", ylabel="error", logy=True,
                title=f"Lanczos top-k vs dense eigh (d = {d})", ax=axes[0])
    plots.lines({"||F_m^-1 g - F^-1 g|| / ||F^-1 g||": (list(cfg.windows), mfac_errors)},
                xlabel="window m", ylabel="relative error", logx=True, logy=True,
                title=f"M-FAC window vs empirical Fisher of n = {cfg.n_samples}", ax=axes[1])
    fig.tight_layout()
    ctx.figure("curvature_quality", fig)
