"""Iterations to a 1e-10 error vs condition number: GD vs ScaledGD(lambda) vs PrecGD (over-parameterized).

"The Power of Preconditioning in Overparameterized Low-Rank Matrix Sensing" (Xu, Shen, Ma, Tong, Chi;
arXiv 2302.01186); PrecGD of Zhang, Fattahi, Zhang (NeurIPS 2021). Symmetric dense Gaussian
sensing of a rank-r PSD M* with condition number kappa (geometric spectrum from 1 to 1/kappa), width
``k > r`` from a small random init; one ``lab.sweep`` per method over kappa x seeds (one operator per
run, drawn from ``seed``; the seeds vary M* and the init). ScaledGD(lambda) uses
the fixed damping ``lambda = scaled.damping * sigma_r(M*)``; PrecGD ``lambda_t = precgd.damping *
||A(X X^T) - y||``. Float64 when ``x64`` (a 1e-10 target is below float32's floor). A second
sweep runs ScaledGD(lambda) over the measurement counts ``m_sweep`` at ``m_sweep_kappas`` (figure
``scaledgd_error_vs_m``): its final error, the largest over-parameterized eigenvalue and kappa times
the operator's deviation from isometry on M*, which tell a solver fault from a sample-size limit.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxopt_lab import sensing
from jaxopt_lab.lab import Each, OneOf, Range, Rule, plots, sweep

CONFIG_SPEC = {
    "problem.n": Range(2, integer=True),
    "problem.rank": Range(1, integer=True),
    "problem.m": Range(1, integer=True),
    "k": Range(1, integer=True),
    "alpha": Range(0.0, open_low=True),
    "gd.step_size": Range(0.0, open_low=True),
    "scaled.step_size": Range(0.0, open_low=True),
    "scaled.damping": Range(0.0, open_low=True),
    "precgd.step_size": Range(0.0, open_low=True),
    "precgd.damping": Range(0.0, open_low=True),
    "target": Range(0.0, open_low=True),
    "num_steps": Range(1, integer=True),
    "seeds": Range(1, integer=True),
    "log_points": Range(2, integer=True),
    "x64": OneOf([True, False]),
    "kappas": Each(Range(1.0)),
    "m_sweep": Each(Range(1, integer=True)),
    "m_sweep_kappas": Each(Range(1.0)),
}

CONFIG_DEFAULTS = {
    "seed": (0, "PRNG seed of the measurement operator (one per run); trial seeds are seed .. seed + seeds - 1"),
    "seeds": (2, "trials per grid point, each with its own ground truth and init (vmapped by lab.sweep)"),
    "num_steps": (2000, "iterations per trial, for every method"),
    "x64": (True, "run in 64-bit floats (a 1e-10 target is below float32's floor)"),
    "log_points": (60, "steps whose errors go to metrics.jsonl, geometrically spaced over the run"),
    "target": (1e-10, "relative error at which iterations are counted"),
    "problem.n": (10, "side of the symmetric PSD ground truth M* (n x n)"),
    "problem.rank": (2, "rank r of M*"),
    "problem.m": (1000, "dense Gaussian measurements (50 n r here: preconditioning amplifies the RIP error)"),
    "k": (4, "width of X (n x k), over-parameterized: k > r"),
    "alpha": (1e-6, "init scale; the extra columns must stay far below sqrt(target)"),
    "kappas": ((1.0, 10.0, 100.0, 1000.0), "condition numbers of M* (geometric spectrum from 1 to 1 / kappa)"),
    "m_sweep": ((1000, 4000, 16000, 64000, 256000), "measurement counts of the ScaledGD(lambda) sensitivity sweep"),
    "m_sweep_kappas": ((1.0, 10.0, 100.0), "condition numbers of the ScaledGD(lambda) sensitivity sweep"),
    "gd.step_size": (0.1, "step size of plain GD"),
    "scaled.step_size": (0.3, "step size of ScaledGD(lambda)"),
    "scaled.damping": (0.1, "ScaledGD(lambda)'s fixed damping lambda, as a multiple of sigma_r(M*)"),
    "precgd.step_size": (0.3, "step size of PrecGD"),
    "precgd.damping": (0.3, "PrecGD's damping lambda_t, as a multiple of the residual norm ||A(X X^T) - y||"),
}

# rules relating keys, checked before anything is imported (see jaxopt_lab.lab.rules): rank <= n and an
# (over-)parameterized width k >= rank
CONFIG_RULES = (
    Rule("problem.rank", "problem.rank <= problem.n", "<= problem.n = {problem.n}"),
    Rule("k", "k >= problem.rank", ">= problem.rank = {problem.rank}"),
)

METHODS = ("gd", "scaledgd", "precgd")


def make_trial(cfg, method: str):
    """``(key, {"kappa": kappa}) -> errors`` for ``method`` in :data:`METHODS`."""
    p = cfg.problem

    def trial(key, hp):
        kappa = hp["kappa"]
        k_prob, k_init = jax.random.split(key)
        prob = sensing.make_problem(k_prob, p.n, p.rank, p.m, condition_number=kappa,
                                    operator_key=jax.random.PRNGKey(cfg.seed))
        X0 = sensing.small_init(k_init, (p.n, cfg.k), cfg.alpha)
        if method == "gd":
            out = sensing.gradient_descent(prob, X0, step_size=cfg.gd.step_size, num_steps=cfg.num_steps)
        elif method == "scaledgd":
            out = sensing.scaled_gradient_descent(prob, X0, step_size=cfg.scaled.step_size,
                                                  damping=cfg.scaled.damping / kappa,
                                                  num_steps=cfg.num_steps)
        else:
            out = sensing.scaled_gradient_descent(prob, X0, step_size=cfg.precgd.step_size,
                                                  damping=cfg.precgd.damping, adaptive=True,
                                                  num_steps=cfg.num_steps)
        return out.errors
    return trial


def make_m_trial(cfg, m: int):
    """``(key, {"kappa": kappa}) -> [final error, largest sigma_{r+1}(X_t X_t^T) / ||M*||_F, kappa delta]``
    for ScaledGD(lambda) with ``m`` measurements.

    ``delta = ||A*A(M*) - M*||_op / ||M*||_op`` is the operator's deviation from isometry on M*; in the
    first phase that error reaches the over-parameterized directions, which the preconditioner scales by
    ``1 / lambda ~ kappa / sigma_1`` while the weakest signal direction grows at a rate ~ sigma_r / lambda:
    the extra columns stay small only while ``kappa delta`` is small.
    """
    p = cfg.problem

    def trial(key, hp):
        kappa = hp["kappa"]
        k_prob, k_init = jax.random.split(key)
        prob = sensing.make_problem(k_prob, p.n, p.rank, m, condition_number=kappa,
                                    operator_key=jax.random.PRNGKey(cfg.seed))
        X0 = sensing.small_init(k_init, (p.n, cfg.k), cfg.alpha)
        out = sensing.scaled_gradient_descent(prob, X0, step_size=cfg.scaled.step_size,
                                              damping=cfg.scaled.damping / kappa, num_steps=cfg.num_steps,
                                              track_spectrum=True)
        M = prob.ground_truth
        top = jnp.linalg.norm(M, 2)
        extra = jnp.max(out.spectrum[:, p.rank]) / jnp.linalg.norm(M) if cfg.k > p.rank else 0.0 * top
        delta = jnp.linalg.norm(prob.operator.normal(M) - M, 2) / top
        return jnp.stack([out.errors[-1], extra, kappa * delta])
    return trial


def trial(cfg):
    """For ``jaxopt-lab sweep``: iterations of ScaledGD(lambda) to ``target`` (grid key ``kappa``)."""
    inner = make_trial(cfg, "scaledgd")

    def fn(key, hp):
        errors = inner(key, {"kappa": hp.get("kappa", 1.0)})
        return {"iterations": sensing.iterations_to(errors, cfg.target), "final_error": errors[-1]}
    return fn


def _loglog_slope(kappas, iters):
    """Log-log slope of iterations vs kappa (NaN with fewer than two kappas)."""
    if len(kappas) < 2:
        return float("nan")
    return float(np.polyfit(np.log(np.asarray(kappas)), np.log(iters), 1)[0])


def run(cfg, ctx):
    with jax.enable_x64(bool(cfg.x64)):
        _run(cfg, ctx)


def _run(cfg, ctx):
    kappas = [float(c) for c in cfg.kappas]
    seeds = range(cfg.seed, cfg.seed + cfg.seeds)
    T = cfg.num_steps
    results = {m: np.asarray(sweep.sweep(make_trial(cfg, m), seeds, {"kappa": kappas}).outputs)
               for m in METHODS}  # (kappas, seeds, T)

    curves = {f"{m}_kappa{c:g}": np.exp(np.mean(np.log(results[m][i]), axis=0))
              for m in METHODS for i, c in enumerate(kappas)}
    steps = np.unique(np.geomspace(1, T, cfg.log_points).astype(int))
    ctx.progress(int(steps[-1]))
    for t in steps:
        ctx.log(int(t), **{name: float(c[t - 1]) for name, c in curves.items()})

    summary = {"x64": bool(cfg.x64), "num_steps": T}
    iters = {}
    for m in METHODS:
        it = np.asarray(jax.vmap(jax.vmap(lambda e: sensing.iterations_to(e, cfg.target)))(
            jnp.asarray(results[m])))  # (kappas, seeds); inf = not reached within num_steps
        reached = np.isfinite(it)
        # mean over seeds, only where every seed reached the target (else censored: inf)
        mean_it = np.where(reached.all(1), np.where(reached, it, 0).mean(1), np.inf)
        iters[m] = mean_it
        # The growth slope is fitted over the kappas every seed reached (>= 2 of them), else over the
        # iterations censored at num_steps (a lower bound on the true slope; finite in short runs).
        # For the growth ratio the max is censored (num_steps) and the min is over reached kappas only
        # (1 if none): a method that misses the target anywhere gets a large ratio, never a small one.
        censored = np.where(np.isfinite(mean_it), mean_it, float(T))
        done = mean_it[np.isfinite(mean_it)]
        done_kappas = [c for c, v in zip(kappas, mean_it) if np.isfinite(v)]
        summary[f"{m}_reached_fraction"] = float(reached.mean())
        summary[f"{m}_iters_loglog_slope"] = (_loglog_slope(done_kappas, done) if len(done) >= 2
                                              else _loglog_slope(kappas, censored))
        summary[f"{m}_iters_loglog_slope_censored"] = _loglog_slope(kappas, censored)
        summary[f"{m}_iters_max_over_min"] = float(censored.max() / (done.min() if done.size else 1.0))
        for i, c in enumerate(kappas):
            if np.isfinite(mean_it[i]):  # absent = not reached by every seed within num_steps
                summary[f"{m}_iters_kappa{c:g}"] = float(mean_it[i])
            summary[f"{m}_final_error_kappa{c:g}"] = float(np.mean(results[m][i, :, -1]))
        summary[f"{m}_largest_kappa_reached"] = float(max([c for c, v in zip(kappas, mean_it)
                                                           if np.isfinite(v)], default=0.0))
    summary.update(_m_sweep(cfg, ctx, seeds))
    ctx.summary(**summary)

    t = np.arange(1, T + 1)
    for m in METHODS:
        ctx.figure(f"error_{m}", plots.lines(
            {f"kappa={c:g}": (t, np.maximum(curves[f"{m}_kappa{c:g}"], 1e-16)) for c in kappas},
            xlabel="iteration t", ylabel="relative error", logy=True,
            title=f"{m}: k={cfg.k}, r={cfg.problem.rank} ({cfg.seeds} seeds)"))
    # Censored points (target not reached) are drawn at num_steps, and said so in the title.
    ctx.figure("iterations_vs_kappa", plots.lines(
        {m: (kappas, np.where(np.isfinite(iters[m]), iters[m], T)) for m in METHODS},
        xlabel="condition number kappa", ylabel=f"iterations to {cfg.target:g}", logx=True, logy=True,
        title=f"iterations to {cfg.target:g} (points at {T} = not reached)"))


def _m_sweep(cfg, ctx, seeds):
    """ScaledGD(lambda)'s final error vs the number of measurements m (figure ``scaledgd_error_vs_m``):
    whether its stall above ``target`` is the solver or the operator's deviation from isometry."""
    ms = sorted(int(m) for m in cfg.m_sweep)
    kappas = [float(c) for c in cfg.m_sweep_kappas]
    out = np.stack([np.asarray(sweep.sweep(make_m_trial(cfg, m), seeds, {"kappa": kappas}).outputs)
                    for m in ms])  # (ms, kappas, seeds, 3)
    final, extra, kdelta = (np.exp(np.mean(np.log(np.maximum(out[..., i], 1e-300)), axis=-1))
                            for i in range(3))  # geometric means over seeds: (ms, kappas)
    summary = {}
    for j, c in enumerate(kappas):
        for i, m in enumerate(ms):
            summary[f"m_sweep_scaledgd_final_error_kappa{c:g}_m{m}"] = float(final[i, j])
            summary[f"m_sweep_extra_direction_max_kappa{c:g}_m{m}"] = float(extra[i, j])
            summary[f"m_sweep_kappa_delta_kappa{c:g}_m{m}"] = float(kdelta[i, j])
        reached = [m for i, m in enumerate(ms) if np.all(out[i, j, :, 0] < cfg.target)]
        summary[f"m_sweep_smallest_m_reaching_target_kappa{c:g}"] = (float(min(reached)) if reached
                                                                      else float("nan"))
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    panels = [(final, "final relative error"), (extra, "max_t sigma_r+1(X_t X_t^T) / ||M*||_F"),
              (kdelta, "kappa * delta")]
    for ax, (values, label) in zip(axes, panels):
        plots.lines({f"kappa={c:g}": (ms, np.maximum(values[:, j], 1e-16)) for j, c in enumerate(kappas)},
                    xlabel="measurements m", ylabel=label, logx=True, logy=True, ax=ax)
    axes[0].axhline(cfg.target, color="k", ls=":", lw=1)
    fig.suptitle(f"ScaledGD(lambda) after {cfg.num_steps} steps vs m (n={cfg.problem.n}, k={cfg.k}, "
                 f"alpha={cfg.alpha:g}, lambda={cfg.scaled.damping:g} sigma_r, "
                 f"kappa in {{{', '.join(f'{c:g}' for c in kappas)}}})")
    fig.tight_layout()
    ctx.figure("scaledgd_error_vs_m", fig)
    return summary
