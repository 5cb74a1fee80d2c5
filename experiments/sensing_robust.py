"""Robust sensing: l1 sub-gradient method from small init vs l2 GD under sparse, large outliers.

"Global Convergence of Sub-gradient Method for Robust Matrix Recovery: Small Initialization, Noisy
Measurements, and Over-parameterization" (Ma, Fattahi; arXiv 2202.08788). Two sweeps over
seeds (``lab.sweep``) on a symmetric rank-r PSD M* with dense Gaussian measurements, a fraction of which
is corrupted by ``+-outlier_scale * ||y||_inf`` (one operator per run, drawn from ``seed``; the seeds vary
M*, the outliers and the init):

1. SubGM error vs t for widths ``r'`` in ``widths`` (vmapped with a width mask) and init scales ``alphas``,
   at ``outlier_fraction``;
2. success (final relative error below ``success_below``) vs outlier fraction, for SubGM (l1) and l2 GD,
   both from the same small init at width ``compare_width``;
3. sensitivity of the over-parameterized (``r' = n``) final error to the sample size and the init scale:
   SubGM at ``outlier_fraction`` for every ``sensitivity.ms`` x ``sensitivity.alphas``.
"""

from __future__ import annotations

import jax
import numpy as np

from jaxopt_lab import sensing
from jaxopt_lab.lab import Each, Range, Rule, plots, sweep

CONFIG_SPEC = {
    "problem.n": Range(2, integer=True),
    "problem.rank": Range(1, integer=True),
    "problem.m": Range(1, integer=True),
    "outlier_fraction": Range(0.0, 1.0),
    "outlier_scale": Range(0.0),
    "subgm.step_size": Range(0.0, open_low=True),
    "subgm.decay": Range(0.0, 1.0, open_low=True),
    "gd.step_size": Range(0.0, open_low=True),
    "compare_width": Range(1, integer=True),
    "compare_alpha": Range(0.0, open_low=True),
    "num_steps": Range(1, integer=True),
    "seeds": Range(1, integer=True),
    "success_below": Range(0.0, open_low=True),
    "log_points": Range(2, integer=True),
    "widths": Each(Range(1, integer=True)),
    "alphas": Each(Range(0.0, open_low=True)),
    "fractions": Each(Range(0.0, 1.0)),
    "sensitivity.ms": Each(Range(1, integer=True)),
    "sensitivity.alphas": Each(Range(0.0, open_low=True)),
}

CONFIG_DEFAULTS = {
    "seed": (0, "PRNG seed of the measurement operator (one per run); trial seeds are seed .. seed + seeds - 1"),
    "seeds": (3, "trials per grid point, each with its own ground truth and init (vmapped by lab.sweep)"),
    "num_steps": (1500, "iterations of SubGM and of l2 GD per trial"),
    "log_points": (50, "steps whose errors go to metrics.jsonl, geometrically spaced over the run"),
    "problem.n": (20, "side of the symmetric PSD ground truth M* (n x n)"),
    "problem.rank": (2, "rank r of M*"),
    "problem.m": (800, "dense Gaussian measurements (20 n r here)"),
    "outlier_fraction": (0.2, "fraction of measurements corrupted, for the width sweep and the sensitivity grid"),
    "outlier_scale": (10.0, "outlier magnitude: +-outlier_scale * ||y||_inf"),
    "widths": ((2, 4, 20), "SubGM widths r' of the width sweep (r' = r, 2r, n here)"),
    "alphas": ((1e-3, 1.0), "init scales of the width sweep (small vs large init)"),
    "fractions": ((0.0, 0.1, 0.2, 0.3, 0.4), "outlier fractions of the success-vs-fraction comparison"),
    "compare_width": (4, "width of both methods in the success-vs-fraction comparison (>= problem.rank)"),
    "compare_alpha": (1e-3, "init scale of both methods in the success-vs-fraction comparison"),
    "subgm.step_size": (0.5, "SubGM initial step eta_0 (step t: eta_0 q^t)"),
    "subgm.decay": (0.99, "SubGM geometric step decay q; too fast a decay freezes the iterate early"),
    "gd.step_size": (0.1, "step size of l2 GD (the baseline)"),
    "success_below": (1e-2, "a trial succeeds when its final relative error is below this"),
    "sensitivity.ms": ((800, 3200, 12800), "measurement counts of the over-parameterized (r' = n) sensitivity "
                                          "grid"),
    "sensitivity.alphas": ((1e-3, 1e-5, 1e-7), "init scales of the sensitivity grid"),
}

# rules relating keys, checked before anything is imported (see jaxopt_lab.lab.rules): rank <= n, and
# every width (and the comparison width) at least the rank (widths above n are clipped to n)
CONFIG_RULES = (
    Rule("problem.rank", "problem.rank <= problem.n", "<= problem.n = {problem.n}"),
    Rule("widths", "all(min(w, problem.n) >= problem.rank for w in widths)",
         "widths >= problem.rank = {problem.rank}"),
    Rule("compare_width", "compare_width >= problem.rank", ">= problem.rank = {problem.rank}"),
)


def make_trial(cfg, method: str, k_max: int, m=None):
    """``(key, {"width", "alpha", "fraction"}) -> errors`` for ``method`` in ``("l1", "l2")``, with ``m``
    measurements (default ``problem.m``)."""
    p = cfg.problem

    def trial(key, hp):
        k_prob, k_init = jax.random.split(key)
        prob = sensing.make_problem(k_prob, p.n, p.rank, m or p.m,
                                    outlier_fraction=hp.get("fraction", cfg.outlier_fraction),
                                    outlier_scale=cfg.outlier_scale,
                                    operator_key=jax.random.PRNGKey(cfg.seed))
        X0 = sensing.small_init(k_init, (p.n, k_max), hp.get("alpha", cfg.compare_alpha),
                                width=hp.get("width", k_max))
        if method == "l1":
            out = sensing.subgradient_method(prob, X0, step_size=cfg.subgm.step_size,
                                             decay=cfg.subgm.decay, num_steps=cfg.num_steps)
        else:
            out = sensing.gradient_descent(prob, X0, step_size=cfg.gd.step_size, num_steps=cfg.num_steps)
        return out.errors
    return trial


def trial(cfg):
    """For ``jaxopt-lab sweep``: SubGM final error at ``compare_width`` (grid e.g. ``outlier_fraction``)."""
    inner = make_trial(cfg, "l1", cfg.compare_width)

    def fn(key, hp):
        errors = inner(key, {"fraction": hp.get("outlier_fraction", cfg.outlier_fraction)})
        return {"final_error": errors[-1], "success": (errors[-1] < cfg.success_below).astype(float)}
    return fn


def run(cfg, ctx):
    p, T = cfg.problem, cfg.num_steps
    widths = [min(w, p.n) for w in cfg.widths]
    seeds = range(cfg.seed, cfg.seed + cfg.seeds)
    k_max = max(widths)
    width_sweep = sweep.sweep(make_trial(cfg, "l1", k_max), seeds,
                              {"width": widths, "alpha": list(cfg.alphas)})
    fractions = list(cfg.fractions)
    l1 = sweep.sweep(make_trial(cfg, "l1", cfg.compare_width), seeds, {"fraction": fractions})
    l2 = sweep.sweep(make_trial(cfg, "l2", cfg.compare_width), seeds, {"fraction": fractions})

    # A diverged l2 run (outliers blow it up) counts as a failure, and is reported, not plotted as NaN.
    def finals(res):
        e = np.asarray(res.outputs)[..., -1]
        return np.where(np.isfinite(e), e, np.inf)

    geo = lambda e: np.exp(np.mean(np.log(np.asarray(e)), axis=-2))  # noqa: E731 (mean of log over seeds)
    curves = {}
    for i, w in enumerate(widths):
        for j, a in enumerate(cfg.alphas):
            curves[f"l1_width{w}_alpha{a:g}"] = geo(width_sweep.outputs[i, j])
    steps = np.unique(np.geomspace(1, T, cfg.log_points).astype(int))
    ctx.progress(int(steps[-1]))
    for t in steps:
        ctx.log(int(t), **{name: float(c[t - 1]) for name, c in curves.items()})

    summary = {}
    wf = finals(width_sweep)  # (widths, alphas, seeds)
    small = int(np.argmin(cfg.alphas))
    large = int(np.argmax(cfg.alphas))
    for i, w in enumerate(widths):
        for j, a in enumerate(cfg.alphas):
            summary[f"l1_width{w}_alpha{a:g}_final_error"] = float(np.mean(wf[i, j]))
    summary["l1_small_init_final_error_max_over_widths"] = float(np.max(np.mean(wf[:, small], -1)))
    summary["l1_small_init_final_error_min_over_widths"] = float(np.min(np.mean(wf[:, small], -1)))
    summary["l1_small_init_overparam_final_error"] = float(np.mean(wf[-1, small]))
    summary["l1_large_init_overparam_final_error"] = float(np.mean(wf[-1, large]))
    f1, f2 = finals(l1), finals(l2)
    s1 = np.mean(f1 < cfg.success_below, -1)
    s2 = np.mean(f2 < cfg.success_below, -1)
    for i, f in enumerate(fractions):
        summary[f"l1_success_fraction{f:g}"] = float(s1[i])
        summary[f"l2_success_fraction{f:g}"] = float(s2[i])
        summary[f"l1_final_error_fraction{f:g}"] = float(np.mean(f1[i]))
        summary[f"l2_final_error_fraction{f:g}"] = float(np.mean(f2[i]))
        summary[f"l2_diverged_fraction{f:g}"] = float(np.mean(~np.isfinite(np.asarray(l2.outputs)[i, :, -1])))
    corrupted = [i for i, f in enumerate(fractions) if f > 0]
    summary["l1_success_min_over_corrupted"] = float(np.min(s1[corrupted])) if corrupted else float("nan")
    summary["l2_success_max_over_corrupted"] = float(np.max(s2[corrupted])) if corrupted else float("nan")
    sens_ms = sorted(int(m) for m in cfg.sensitivity.ms)
    sens_alphas = list(cfg.sensitivity.alphas)
    sens = np.stack([np.mean(finals(sweep.sweep(make_trial(cfg, "l1", p.n, m), seeds,
                                                {"alpha": sens_alphas})), -1)
                     for m in sens_ms])  # (ms, alphas): mean final error at r' = n
    for i, m in enumerate(sens_ms):
        for j, a in enumerate(sens_alphas):
            summary[f"sensitivity_overparam_final_error_m{m}_alpha{a:g}"] = float(sens[i, j])
    ctx.summary(**summary)

    t = np.arange(1, T + 1)
    ctx.figure("error_vs_t_widths", plots.lines(
        {f"r'={w}, alpha={a:g}": (t, np.maximum(curves[f"l1_width{w}_alpha{a:g}"], 1e-16))
         for w in widths for a in cfg.alphas}, xlabel="iteration t", ylabel="relative error", logy=True,
        title=f"SubGM, {cfg.outlier_fraction:.0%} outliers: small init is agnostic to r'"))
    ctx.figure("success_vs_outliers", plots.lines(
        {"l1 SubGM": (fractions, s1), "l2 GD": (fractions, s2)}, xlabel="outlier fraction",
        ylabel=f"success rate (error < {cfg.success_below:g})",
        title=f"recovery vs outlier fraction ({cfg.seeds} seeds)"))
    ctx.figure("overparam_error_vs_m_alpha", plots.lines(
        {f"alpha={a:g}": (sens_ms, np.maximum(sens[:, j], 1e-16)) for j, a in enumerate(sens_alphas)},
        xlabel="measurements m", ylabel="final relative error", logx=True, logy=True,
        title=f"SubGM, r'=n={p.n}, {cfg.outlier_fraction:.0%} outliers, {T} steps ({cfg.seeds} seeds)"))
