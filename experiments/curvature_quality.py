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

* **PSGD** ("Curvature-Informed SGD via General Purpose Lie-Group Preconditioners", arXiv:2402.04553):
  the Hessian-mode preconditioners ``P`` of ``scale_by_psgd_kron`` (Kron; and all-diagonal factors,
  ``max_skew = 0``, as the diagonal baseline) and ``scale_by_psgd_lra`` (rank ``r``), each fitted by the
  optimizer's own update for ``psgd_fits`` fits on exact Hessian-vector products at the trained point
  (its seeded Gaussian probes ``v``, ``h = H v`` with the dense ``H``: the jvp of the gradient's
  linearisation there). The fitting criterion ``E[h^T P h + v^T P^{-1} v]``
  is minimised by ``P E[h h^T] P = E[v v^T]``, i.e. ``P = (H^2)^{-1/2} = |H|^{-1}``. A trained MLP's
  Hessian is singular (softmax shift, dead units), so ``|H|^{-1}`` does not exist and the fit lets
  ``P`` grow without bound along the null space; the error is therefore measured on the fitted
  quantity that stays finite, ``P^{-1} -> |H|``: ``||P^{-1} - |H|||_F / |||H|||_F`` (Frobenius), per
  rank, with the closed-form criterion optimum of the diagonal class, ``P^{-1} = diag(((H^2)_ii)^{1/2})``,
  for reference (the criterion is not this norm, so it is no floor).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import scipy.linalg
from jax.flatten_util import ravel_pytree

from jaxopt_lab import data, models
from jaxopt_lab.lab import Range, plots
from jaxopt_lab.optim.curvature import (inverse_fisher_product, lanczos, lra_precondition,
                                        scale_by_psgd_kron, scale_by_psgd_lra)

CONFIG_SPEC = {
    "hidden": Range(1, integer=True),
    "n_samples": Range(2, integer=True),
    "train_steps": Range(0, integer=True),
    "learning_rate": Range(0.0, open_low=True),
    "damping": Range(0.0, open_low=True),
    "psgd_fits": Range(1, integer=True),
}

CONFIG_DEFAULTS = {
    "seed": (0, "seed of the digits split, the initialisation and the Lanczos / PSGD probes"),
    "hidden": (16, "MLP hidden width (64 -> hidden -> 10: ~1.2k parameters at 16)"),
    "n_samples": (512, "training examples: the full batch of every exact quantity"),
    "train_steps": (200, "Adam steps before the curvature is measured"),
    "learning_rate": (0.01, "Adam's learning rate for those steps"),
    "ks": ((1, 2, 5, 10), "FOSI: numbers k of top Hessian eigenpairs (Lanczos order 4 k)"),
    "windows": ((16, 64, 256), "M-FAC: gradient windows m, each <= n_samples"),
    "damping": (1e-3, "M-FAC: damping lambda of the empirical Fisher"),
    "psgd_ranks": ((1, 4, 16, 64), "PSGD LRA: preconditioner ranks r"),
    "psgd_fits": (2000, "PSGD: preconditioner fits on exact Hessian-vector products"),
}


def validate(cfg) -> None:
    from jaxopt_lab.lab import ConfigError

    ks, windows = tuple(cfg.ks), tuple(cfg.windows)
    if not ks or not all(isinstance(k, int) and k >= 1 for k in ks):
        raise ConfigError(f"config key 'ks' = {ks!r}: must be a non-empty tuple of ints >= 1")
    if not windows or not all(isinstance(m, int) and 1 <= m <= cfg.n_samples for m in windows):
        raise ConfigError(f"config key 'windows' = {windows!r}: must be ints in [1, n_samples = "
                          f"{cfg.n_samples}]")
    ranks = tuple(cfg.psgd_ranks)
    if not ranks or not all(isinstance(r, int) and r >= 1 for r in ranks):
        raise ConfigError(f"config key 'psgd_ranks' = {ranks!r}: must be a non-empty tuple of ints >= 1")


def dense_kron_preconditioner(factors, shapes) -> np.ndarray:
    """The dense ``P`` of PSGD Kron's factors on the ``ravel_pytree`` vector: block-diagonal over the
    leaves; a matrix leaf (rows ``prod(shape[:-1])``, row-major) has ``P_l (x) P_r`` with
    ``P_side = Q^T Q`` (triangular ``Q``) or ``diag(q^2)`` (vector ``q``), a 1-D leaf ``diag(q^2)``."""
    def side(q):
        q = np.asarray(q, np.float64)
        return q.T @ q if q.ndim == 2 else np.diag(q * q)

    blocks = []
    for f, shape in zip(factors, shapes):
        if len(f) == 1:
            blocks.append(np.diag(np.asarray(f[0], np.float64).ravel() ** 2))
        else:
            blocks.append(np.kron(side(f[0]), side(f[1])))
    return scipy.linalg.block_diag(*blocks)


def dense_lra_preconditioner(state) -> np.ndarray:
    """The dense ``P = Q^T Q`` of PSGD LRA's state, column by column with its own ``lra_precondition``."""
    n = state.d.shape[0]
    columns = jax.vmap(lambda e: lra_precondition(state.u, state.v, state.d, e))(
        jnp.eye(n, dtype=state.d.dtype))
    return np.asarray(columns, np.float64).T


def abs_hessian_error(p_inverse: np.ndarray, hessian: np.ndarray) -> float:
    """``||P^{-1} - |H|||_F / |||H|||_F``: how far a fitted ``P^{-1}`` is from PSGD's Hessian-fit
    optimum ``(H^2)^{1/2} = |H|`` (finite even where ``H`` is singular)."""
    values, vectors = np.linalg.eigh(hessian)
    abs_h = (vectors * np.abs(values)) @ vectors.T
    return float(np.linalg.norm(p_inverse - abs_h) / np.linalg.norm(abs_h))


def best_diagonal_inverse(hessian: np.ndarray) -> np.ndarray:
    """``P^{-1}`` of the best diagonal ``P`` under PSGD's criterion: ``sum_i p_i (H^2)_ii + 1 / p_i`` is
    minimised by ``p_i = ((H^2)_ii)^{-1/2}``, so ``P^{-1} = diag(||H_i||)`` (column norms)."""
    return np.diag(np.linalg.norm(hessian, axis=0))


def fit_psgd(tx, params, grad_fn, fits: int):
    """``fits`` preconditioner fits of a Hessian-mode PSGD transformation at fixed ``params`` (its own
    ``update``: a seeded probe ``v``, ``h = H v`` by ``jax.jvp`` of ``grad_fn``, one Lie-group step).
    Returns the final state."""
    zeros = jax.tree.map(jnp.zeros_like, params)

    def step(state, _):
        return tx.update(zeros, state, params, grad_fn=grad_fn)[1], None

    # LLVM's cheap pipeline: compiling dominates (~3 s of CPU per fit program) and optimizing these
    # tiny matrices buys nothing
    fast = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}
    return jax.jit(lambda s: jax.lax.scan(step, s, None, length=fits)[0],
                   compiler_options=fast)(tx.init(params))


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
    ctx.progress(3)

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
    # (jitted: one compile instead of one per eager primitive, which dominates at --quick size)
    exact_direction = jax.jit(lambda s, g: jnp.linalg.solve(
        cfg.damping * jnp.eye(d) + s.T @ s / cfg.n_samples, g))(per_sample, g)
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

    # PSGD: Hessian-fitted preconditioners vs |H|^{-1}
    # the loss's gradient map to first order at the trained point: its jvp is exactly h = H v with the
    # dense Hessian above (what forward-over-reverse gives, at a fraction of the compile time)
    grad_at = jax.jit(jax.grad(flat_loss))(flat)
    grad_fn = lambda p: unravel(grad_at + hessian @ (ravel_pytree(p)[0] - flat))  # noqa: E731
    shapes = [leaf.shape for leaf in jax.tree.leaves(params)]
    dense_h = np.asarray(hessian, np.float64)
    psgd = {}
    for name, max_skew in (("diag", 0), ("kron", 1)):
        state = fit_psgd(scale_by_psgd_kron("hessian", b1=0.0, max_skew=max_skew, seed=cfg.seed),
                         params, grad_fn, cfg.psgd_fits)
        psgd[name] = abs_hessian_error(
            np.linalg.inv(dense_kron_preconditioner(state.factors, shapes)), dense_h)
    lra_errors = []
    for r in cfg.psgd_ranks:
        state = fit_psgd(scale_by_psgd_lra(r, "hessian", b1=0.0, seed=cfg.seed), params, grad_fn,
                         cfg.psgd_fits)
        lra_errors.append(abs_hessian_error(np.linalg.inv(dense_lra_preconditioner(state)), dense_h))
        summary[f"psgd_lra_r{r}_rel_error"] = lra_errors[-1]
    summary["psgd_diag_rel_error"] = psgd["diag"]
    summary["psgd_kron_rel_error"] = psgd["kron"]
    summary["psgd_diag_optimum_rel_error"] = abs_hessian_error(best_diagonal_inverse(dense_h), dense_h)
    summary["psgd_fits"] = cfg.psgd_fits
    summary["psgd_lra_largest_rank_over_diag_error"] = lra_errors[-1] / psgd["diag"]
    summary["psgd_lra_error_decreases_with_rank"] = float(all(
        b < a for a, b in zip(lra_errors, lra_errors[1:])))
    ctx.log(3, **{k: v for k, v in summary.items() if k.startswith("psgd")})
    ctx.summary(**summary)

    fig, axes = plots.plt.subplots(1, 3, figsize=(16, 3.8))
    plots.lines({"max relative eigenvalue error": (list(cfg.ks), eig_errors),
                 "subspace error 1 - sigma_min": (list(cfg.ks), subspace_errors)},
                xlabel="k (Lanczos order 4k)", ylabel="error", logy=True,
                title=f"Lanczos top-k vs dense eigh (d = {d})", ax=axes[0])
    plots.lines({"||F_m^-1 g - F^-1 g|| / ||F^-1 g||": (list(cfg.windows), mfac_errors)},
                xlabel="window m", ylabel="relative error", logx=True, logy=True,
                title=f"M-FAC window vs empirical Fisher of n = {cfg.n_samples}", ax=axes[1])
    ranks = list(cfg.psgd_ranks)
    plots.lines({"PSGD LRA (rank r)": (ranks, lra_errors),
                 "PSGD diagonal": (ranks, [psgd["diag"]] * len(ranks)),
                 "PSGD Kron": (ranks, [psgd["kron"]] * len(ranks)),
                 "criterion's best diagonal (closed form)": (ranks, [summary["psgd_diag_optimum_rel_error"]]
                                                 * len(ranks))},
                xlabel="LRA rank r", ylabel="||P^-1 - |H|||_F / |||H|||_F", logx=True, logy=True,
                title=f"PSGD Hessian fit, {cfg.psgd_fits} fits", ax=axes[2])
    fig.tight_layout()
    ctx.figure("curvature_quality", fig)
