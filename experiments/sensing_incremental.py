"""Incremental learning: from small init, GD learns the eigenvalues of X X^T one at a time (a staircase).

"Understanding Incremental Learning of Gradient Descent: A Fine-grained Analysis of Matrix Sensing"
(Jin, Li, Lyu, Du, Lee; arXiv 2301.11500). Symmetric GD on a PSD M* with eigenvalues
``problem.eigenvalues`` from ``X_0 = alpha * N(0,1)/sqrt(n)``, swept (``lab.sweep``) over widths ``ks``
(vmapped with a width mask) x init scales ``alphas`` x seeds, recording the singular values of
``X_t X_t^T`` at every step. The learning time of eigenvalue i is the first step where the i-th
eigenvalue of ``X_t X_t^T`` reaches half of its target; the linearised dynamics predict
``~ log(1/alpha) / (2 eta sigma_i)`` steps (derived here, not stated in the paper;
the summary reports it beside the measured times).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxopt_lab import sensing
from jaxopt_lab.lab import Each, Range, Rule, plots, sweep

CONFIG_SPEC = {
    "problem.n": Range(2, integer=True),
    "problem.m": Range(1, integer=True),
    "step_size": Range(0.0, open_low=True),
    "num_steps": Range(1, integer=True),
    "seeds": Range(1, integer=True),
    "learned_fraction": Range(0.0, 1.0, open_low=True, open_high=True),
    "log_points": Range(2, integer=True),
    "problem.eigenvalues": Each(Range(0.0, open_low=True)),
    "ks": Each(Range(1, integer=True)),
    "alphas": Each(Range(0.0, open_low=True)),
}

CONFIG_DEFAULTS = {
    "seed": (0, "PRNG seed of the measurement operator (one per run); trial seeds are seed .. seed + seeds - 1"),
    "seeds": (3, "trials per grid point, each with its own ground truth and init (vmapped by lab.sweep)"),
    "num_steps": (2500, "GD steps per trial"),
    "step_size": (0.05, "GD step size eta; the predicted learning time of eigenvalue i is log(1/alpha) / "
                        "(2 eta sigma_i)"),
    "log_points": (60, "steps whose errors go to metrics.jsonl, geometrically spaced over the run"),
    "learned_fraction": (0.5, "an eigenvalue counts as learned at the first step where the matching eigenvalue "
                              "of X X^T reaches this fraction of it"),
    "problem.n": (20, "side of the symmetric ground truth M* (n x n)"),
    "problem.m": (1600, "Gaussian measurements (20 n r here: fewer are far from isometric)"),
    "problem.eigenvalues": ((1.0, 0.5, 0.25, 0.125), "eigenvalues of M*, strictly decreasing; their number is the "
                                                    "rank r, which must be one of ks"),
    "ks": ((2, 4, 8), "widths k of X (n x k): under- (k < r), exactly (k = r) and over-parameterized (k > r)"),
    "alphas": ((1e-2, 1e-4, 1e-6), "init scales: X_0 = alpha * N(0, 1) / sqrt(n)"),
}

# rules relating keys, checked before anything is imported (see jaxopt_lab.lab.rules): the rank
# r = len(eigenvalues) fits the matrix side and is one of the widths ks (the exactly parameterized case
# the staircase is measured on)
CONFIG_RULES = (
    Rule("problem.eigenvalues", "len(problem.eigenvalues) <= problem.n and "
         "all(a > b for a, b in zip(problem.eigenvalues, problem.eigenvalues[1:]))",
         "strictly decreasing with at most problem.n = {problem.n} entries (the rank)"),
    Rule("ks", "len(problem.eigenvalues) in ks",
         "a tuple of widths containing the rank {len(problem.eigenvalues)} = len(problem.eigenvalues)"),
)


def _problem(cfg, key):
    p = cfg.problem
    eig = jnp.asarray(p.eigenvalues, jnp.result_type(float))
    U = sensing.symmetric_ground_truth(key, p.n, len(p.eigenvalues), singular_values=eig)
    # one operator per run (from cfg.seed): the seeds vary M* and the init
    op = sensing.gaussian_operator(jax.random.PRNGKey(cfg.seed), p.m, (p.n, p.n), symmetric=True)
    return sensing.SensingProblem(op, op.apply_factored(U, U), (U, U), True)


def make_trial(cfg):
    """``(key, {"k", "alpha"}) -> {"errors", "spectrum"}`` (width ``k`` in a ``max(ks)`` array)."""
    k_max = max(cfg.ks)

    def trial(key, hp):
        k_prob, k_init = jax.random.split(key)
        prob = _problem(cfg, k_prob)
        X0 = sensing.small_init(k_init, (cfg.problem.n, k_max), hp["alpha"], width=hp["k"])
        out = sensing.gradient_descent(prob, X0, step_size=cfg.step_size, num_steps=cfg.num_steps,
                                       track_spectrum=True)
        return {"errors": out.errors, "spectrum": out.spectrum}
    return trial


def trial(cfg):
    """For ``jaxopt-lab sweep``: final error and the learning time of the smallest eigenvalue."""
    inner = make_trial(cfg)
    targets = jnp.asarray(cfg.problem.eigenvalues)

    def fn(key, hp):
        out = inner(key, {"k": hp.get("k", max(cfg.ks)), "alpha": hp.get("alpha", min(cfg.alphas))})
        times = sensing.learning_times(out["spectrum"], targets, cfg.learned_fraction)
        return {"final_error": out["errors"][-1], "last_learning_time": times[-1]}
    return fn


def run(cfg, ctx):
    p, T = cfg.problem, cfg.num_steps
    eig = np.asarray(p.eigenvalues, dtype=float)
    r = len(eig)
    seeds = range(cfg.seed, cfg.seed + cfg.seeds)
    res = sweep.sweep(make_trial(cfg), seeds, {"k": list(cfg.ks), "alpha": list(cfg.alphas)})
    errors = np.asarray(res.outputs["errors"])      # (ks, alphas, seeds, T)
    spectrum = np.asarray(res.outputs["spectrum"])  # (ks, alphas, seeds, T, k_max)
    times = np.asarray(jax.vmap(lambda s: sensing.learning_times(s, jnp.asarray(eig), cfg.learned_fraction))(
        jnp.asarray(spectrum.reshape(-1, T, spectrum.shape[-1])))).reshape(spectrum.shape[:3] + (-1,))
    ik = list(cfg.ks).index(r)
    alphas = list(cfg.alphas)

    # Log the mean eigenvalues of X X^T at width r for every alpha (log-spaced steps).
    mean_spec = spectrum.mean(axis=2)  # (ks, alphas, T, k_max)
    steps = np.unique(np.geomspace(1, T, cfg.log_points).astype(int))
    ctx.progress(int(steps[-1]))
    for t in steps:
        values = {f"eig{i + 1}_alpha{a:g}": float(mean_spec[ik, j, t - 1, i])
                  for j, a in enumerate(alphas) for i in range(r)}
        values.update({f"error_k{k}_alpha{a:g}": float(np.exp(np.mean(np.log(errors[i, j, :, t - 1]))))
                       for i, k in enumerate(cfg.ks) for j, a in enumerate(alphas)})
        ctx.log(int(t), **values)

    summary = {}
    exact_times = times[ik]  # (alphas, seeds, r)
    finite = np.isfinite(exact_times)
    summary["all_eigenvalues_learned_fraction"] = float(np.mean(np.all(finite, axis=-1)))
    ordered = np.all(np.diff(exact_times, axis=-1) > 0, axis=-1)
    summary["staircase_ordered_fraction"] = float(np.mean(ordered))
    for j, a in enumerate(alphas):
        for i in range(r):
            summary[f"learning_time_eig{i + 1}_alpha{a:g}"] = float(np.mean(exact_times[j, :, i]))
    small, large = int(np.argmin(alphas)), int(np.argmax(alphas))
    # Plateau lengths: steps between consecutive learning times; they grow as alpha shrinks.
    plateaus = np.diff(exact_times, axis=-1).mean(axis=1)  # (alphas, r - 1)
    summary["plateau_mean_smallest_alpha"] = float(np.mean(plateaus[small]))
    summary["plateau_mean_largest_alpha"] = float(np.mean(plateaus[large]))
    order = np.argsort(alphas)[::-1]  # decreasing alpha
    last = exact_times[..., -1].mean(axis=1)[order]
    summary["last_learning_time_increases_as_alpha_shrinks"] = float(np.all(np.diff(last) > 0))
    # Linearised prediction: learning time of eigenvalue i grows by log(10)/(2 eta sigma_i) per decade.
    decades = np.log10(alphas[large] / alphas[small])
    predicted = decades * np.log(10) / (2 * cfg.step_size * eig)
    measured = exact_times[small].mean(0) - exact_times[large].mean(0)
    summary["learning_time_shift_measured_over_predicted"] = float(np.mean(measured / predicted))
    # One at a time: when eigenvalue i is learned, eigenvalue i+1 is still below 10% of its target.
    idx = np.clip(exact_times[small].astype(int) - 1, 0, T - 1) if np.all(finite[small]) else None
    if idx is not None:
        spec_small = spectrum[ik, small]  # (seeds, T, k_max)
        ratios = [spec_small[s, idx[s, i], i + 1] / eig[i + 1] for s in range(len(seeds)) for i in range(r - 1)]
        summary["next_eigenvalue_at_learning_time_max"] = float(np.max(ratios))
    else:
        summary["next_eigenvalue_at_learning_time_max"] = float("nan")
    for i, k in enumerate(cfg.ks):
        summary[f"final_error_k{k}"] = float(np.mean(errors[i, small, :, -1]))
    under = [k for k in cfg.ks if k < r]
    if under:
        k = max(under)
        best = float(np.sqrt(np.sum(eig[k:] ** 2)) / np.sqrt(np.sum(eig ** 2)))
        summary["under_k"] = k
        summary["under_final_error"] = summary[f"final_error_k{k}"]
        summary["under_best_rank_k_error"] = best
    ctx.summary(**summary)

    t = np.arange(1, T + 1)
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(alphas), figsize=(4.2 * len(alphas), 3.6), sharey=True)
    for j, (a, ax) in enumerate(zip(alphas, np.atleast_1d(axes))):
        for i in range(r):
            ax.plot(t, mean_spec[ik, j, :, i], label=f"eig {i + 1}")
            ax.axhline(eig[i], color="gray", lw=0.5, ls=":")
        ax.set_xscale("log")
        ax.set_title(f"alpha={a:g}")
        ax.set_xlabel("iteration t")
    np.atleast_1d(axes)[0].set_ylabel("eigenvalues of X_t X_t^T")
    np.atleast_1d(axes)[0].legend(fontsize=8)
    fig.suptitle(f"incremental learning (k=r={r}, {cfg.seeds} seeds)")
    ctx.figure("staircase", fig)
    ctx.figure("error_by_width", plots.lines(
        {f"k={k}": (t, np.exp(np.mean(np.log(np.maximum(errors[i, small], 1e-30)), 0)))
         for i, k in enumerate(cfg.ks)}, xlabel="iteration t", ylabel="relative error", logx=True,
        logy=True, title=f"alpha={alphas[small]:g}: k<r stops at the best rank-k approximation"))
