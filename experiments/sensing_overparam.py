"""Over-parameterization slows GD in matrix sensing: symmetric k=r vs k>r, asymmetric alpha, one-step fix.

"How Over-Parameterization Slows Down Gradient Descent in Matrix Sensing: The Curses of Symmetry and
Initialization" (Xiong, Ding, Du; arXiv 2310.01769). Three sweeps over seeds (``lab.sweep``),
all on one symmetric PSD ground truth per seed with dense Gaussian measurements (symmetrised for the
symmetric model, i.i.d. for the asymmetric one; one operator per run, drawn from ``seed``):

1. symmetric GD on ``X X^T`` for ``k`` in ``sym.ks`` (the ranks vmapped with a width mask): the per-step
   relative error, its linear rate for ``k = r`` and the power-law exponent of the *squared* error
   ``||X X^T - M*||_F^2`` for ``k > r`` (the paper's Omega(1/T^2) lower bound says that exponent is <= 2);
2. asymmetric GD on ``F G^T`` with ``k = asym.k > r`` for init scales ``asym.alphas``, ``asym.num_steps``
   steps: the asymptotic linear rate ``rho(alpha)``, the speed ``-log rho`` and its log-log slope against
   alpha (the paper: exp(-Omega(alpha^2 T))). The alpha^2 rate only sets in once the over-parameterized
   directions have shrunk to the order-alpha^2 imbalance (after ~1/(eta alpha^2) steps; before that the
   decay is sublinear), so it is fitted over the last quarter of the steps before the error reaches
   ``fit.floor``, and ``asym.num_steps`` must reach well past 1/(eta alpha^2) for the smallest alpha;
3. the same with the one-step modification (:func:`jaxopt_lab.sensing.rebalance`, applied once when the
   error first drops below ``asym.rebalance_below``): the speed after it, across alphas.

Float64 when ``x64`` (the curves run down to the 1e-13 floor). Errors at or below
``fit.floor`` are left out of every fit.
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
    "problem.condition_number": Range(1.0),
    "sym.alpha": Range(0.0, open_low=True),
    "sym.step_size": Range(0.0, open_low=True),
    "asym.k": Range(1, integer=True),
    "asym.step_size": Range(0.0, open_low=True),
    "asym.rebalance_below": Range(0.0, 1.0, open_low=True),
    "num_steps": Range(10, integer=True),
    "asym.num_steps": Range(10, integer=True),
    "seeds": Range(1, integer=True),
    "fit.floor": Range(0.0),
    "fit.ceiling": Range(0.0, 1.0, open_low=True),
    "log_points": Range(2, integer=True),
    "x64": OneOf([True, False]),
    "sym.ks": Each(Range(1, integer=True)),
    "asym.alphas": Each(Range(0.0, open_low=True)),
}

CONFIG_DEFAULTS = {
    "seed": (0, "PRNG seed of the measurement operator (one per run); trial seeds are seed .. seed + seeds - 1"),
    "seeds": (3, "trials per grid point, each with its own ground truth and init (vmapped by lab.sweep)"),
    "num_steps": (6000, "symmetric GD steps per trial"),
    "x64": (True, "run in 64-bit floats (the error curves run down to the 1e-13 floor)"),
    "log_points": (60, "steps whose errors go to metrics.jsonl, geometrically spaced over the run"),
    "problem.n": (20, "side of the symmetric PSD ground truth M* (n x n)"),
    "problem.rank": (2, "rank r of M*"),
    "problem.m": (400, "dense Gaussian measurements (10 n r here; >= 5 n r for a small RIP constant)"),
    "problem.condition_number": (1.0, "ratio of M*'s largest to smallest nonzero eigenvalue (>= 1)"),
    "sym.ks": ((2, 3, 4), "widths k of the symmetric model X X^T (k = r: linear rate; k > r: sublinear)"),
    "sym.alpha": (0.1, "init scale of the symmetric model"),
    "sym.step_size": (0.1, "GD step size of the symmetric model"),
    "asym.k": (4, "width k > r of the asymmetric model F G^T"),
    "asym.alphas": ((0.3, 0.1, 0.03), "init scales of the asymmetric model (its rate ~ exp(-alpha^2 T))"),
    "asym.step_size": (0.2, "GD step size eta of the asymmetric model"),
    "asym.num_steps": (100_000, "asymmetric GD steps; must reach well past 1 / (eta alpha^2) for the smallest "
                                "alpha, where the alpha^2 rate sets in"),
    "asym.rebalance_below": (0.01, "the one-step modification is applied once, when the error first drops "
                                   "below this"),
    "fit.floor": (1e-12, "errors at or below this are left out of every rate fit (numerical floor)"),
    "fit.ceiling": (1e-2, "linear rates are fitted on errors below this (the asymptotic regime)"),
}

# rules relating keys, checked before anything is imported (see jaxopt_lab.lab.rules): rank <= n, the
# symmetric widths include k = r and one above it, and the asymmetric width is over-parameterized (k > r)
CONFIG_RULES = (
    Rule("problem.rank", "problem.rank <= problem.n", "<= problem.n = {problem.n}"),
    Rule("sym.ks", "problem.rank in sym.ks and any(k > problem.rank for k in sym.ks)",
         "a tuple of widths containing problem.rank = {problem.rank} and one above it"),
    Rule("asym.k", "asym.k > problem.rank", "> problem.rank = {problem.rank} (over-parameterized)"),
    Rule("asym.num_steps", "asym.num_steps >= num_steps",
         ">= num_steps = {num_steps} (the comparison at equal T reads the asymmetric trace at step num_steps)"),
)


def _problem(cfg, key, symmetric_operator=True):
    p = cfg.problem
    # One operator per run (from cfg.seed); the seeds vary M*, the init and nothing else.
    return sensing.make_problem(key, p.n, p.rank, p.m, condition_number=p.condition_number,
                                symmetric_operator=symmetric_operator,
                                operator_key=jax.random.PRNGKey(cfg.seed))


def symmetric_trial(cfg):
    """``(key, {"k": width}) -> errors``: symmetric GD with width ``k`` inside a ``max(sym.ks)`` array."""
    k_max = max(cfg.sym.ks)

    def trial(key, hp):
        k_prob, k_init = jax.random.split(key)
        prob = _problem(cfg, k_prob)
        X0 = sensing.small_init(k_init, (cfg.problem.n, k_max), cfg.sym.alpha, width=hp["k"])
        return sensing.gradient_descent(prob, X0, step_size=cfg.sym.step_size,
                                        num_steps=cfg.num_steps).errors
    return trial


def asymmetric_trial(cfg, rebalance_below):
    """``(key, {"alpha": a}) -> errors``: GD on ``F G^T`` from scale ``a`` (independent F0, G0)."""
    def trial(key, hp):
        k_prob, k_f, k_g = jax.random.split(key, 3)
        # the same symmetric M* as the symmetric sweep (same key), measured by non-symmetric A_i:
        # symmetric A_i would never see the antisymmetric part of F G^T
        prob = _problem(cfg, k_prob, symmetric_operator=False)
        shape = (cfg.problem.n, cfg.asym.k)
        F0 = sensing.small_init(k_f, shape, hp["alpha"])
        G0 = sensing.small_init(k_g, shape, hp["alpha"])
        return sensing.asymmetric_gradient_descent(
            prob, F0, G0, step_size=cfg.asym.step_size, num_steps=cfg.asym.num_steps,
            rebalance_below=rebalance_below).errors
    return trial


def trial(cfg):
    """For ``jaxopt-lab sweep``: final error and fitted rate of symmetric GD at width ``sym.alpha``."""
    sym_trial = symmetric_trial(cfg)

    def fn(key, hp):
        errors = sym_trial(key, {"k": hp.get("k", max(cfg.sym.ks))})
        return {"final_error": errors[-1],
                "linear_rate": sensing.linear_rate(errors, floor=cfg.fit.floor, ceiling=cfg.fit.ceiling)}
    return fn


def _log_curves(ctx, curves: dict, num_steps: int, points: int):
    """Log the seed-mean curves at ``points`` log-spaced steps (non-finite -> the run is ``diverged``).

    Curves shorter than ``num_steps`` (the symmetric runs) are logged up to their own length.
    """
    steps = np.unique(np.geomspace(1, num_steps, points).astype(int))
    ctx.progress(int(steps[-1]))
    for t in steps:
        ctx.log(int(t), **{name: float(curve[t - 1]) for name, curve in curves.items() if t <= len(curve)})


def _asymptotic_rates(errors, cfg):
    """Per-seed linear rate over the last quarter of the steps before the error reaches ``fit.floor``."""
    def rate(e):
        below = e <= cfg.fit.floor
        end = jnp.where(jnp.any(below), jnp.argmax(below), e.shape[0])  # steps above the floor
        return sensing.linear_rate(e, start=(3 * end) // 4, stop=end, floor=cfg.fit.floor,
                                   ceiling=cfg.fit.ceiling)
    return np.asarray(jax.vmap(rate)(errors))


def _fits(errors, cfg, start: int = 0):
    """Per-seed rates: (linear rate rho, power-law exponent of the squared error).

    The linear fit keeps errors below ``fit.ceiling``; a run that never gets there (short runs) is fitted
    over the same steps without the ceiling instead of giving NaN.
    """
    def rate(e):
        low = sensing.linear_rate(e, start=start, floor=cfg.fit.floor, ceiling=cfg.fit.ceiling)
        return jnp.where(jnp.isnan(low), sensing.linear_rate(e, start=start, floor=cfg.fit.floor), low)
    rho = jax.vmap(rate)(errors)
    late = cfg.num_steps // 10  # the power-law regime: after the first phase
    expo = jax.vmap(lambda e: sensing.power_law_exponent(e ** 2, start=late, floor=cfg.fit.floor ** 2))(
        errors)
    return np.asarray(rho), np.asarray(expo)


def run(cfg, ctx):
    with jax.enable_x64(bool(cfg.x64)):
        _run(cfg, ctx)


def _run(cfg, ctx):
    r, T, T_asym = cfg.problem.rank, cfg.num_steps, cfg.asym.num_steps
    seeds = range(cfg.seed, cfg.seed + cfg.seeds)

    sym = sweep.sweep(symmetric_trial(cfg), seeds, {"k": list(cfg.sym.ks)})
    plain = sweep.sweep(asymmetric_trial(cfg, 0.0), seeds, {"alpha": list(cfg.asym.alphas)})
    modified = sweep.sweep(asymmetric_trial(cfg, cfg.asym.rebalance_below), seeds,
                           {"alpha": list(cfg.asym.alphas)})

    def geo_mean(errors):  # mean over seeds of log error: the curves span 13 decades
        return np.exp(np.mean(np.log(np.asarray(errors)), axis=-2))

    curves = {}
    curves.update({f"sym_k{k}": c for k, c in zip(cfg.sym.ks, geo_mean(sym.outputs))})
    curves.update({f"asym_alpha{a:g}": c for a, c in zip(cfg.asym.alphas, geo_mean(plain.outputs))})
    curves.update({f"modified_alpha{a:g}": c for a, c in zip(cfg.asym.alphas, geo_mean(modified.outputs))})
    _log_curves(ctx, curves, T_asym, cfg.log_points)

    summary = {}
    for i, k in enumerate(cfg.sym.ks):
        rho, expo = _fits(sym.outputs[i], cfg)
        summary[f"sym_k{k}_final_error"] = float(np.mean(sym.outputs[i][:, -1]))
        summary[f"sym_k{k}_linear_rate"] = float(np.mean(rho))
        if k > r:  # k = r sits at the float64 floor after the first phase: no power law to fit
            summary[f"sym_k{k}_sq_error_exponent"] = float(np.mean(expo))
    over = [k for k in cfg.sym.ks if k > r]
    summary["sym_exact_final_error"] = summary[f"sym_k{r}_final_error"]
    summary["sym_over_final_error_min"] = min(summary[f"sym_k{k}_final_error"] for k in over)
    summary["sym_over_sq_error_exponent_max"] = max(summary[f"sym_k{k}_sq_error_exponent"] for k in over)
    summary["sym_over_sq_error_exponent_min"] = min(summary[f"sym_k{k}_sq_error_exponent"] for k in over)

    speeds = {}
    for name, res in (("asym", plain), ("modified", modified)):
        for i, a in enumerate(cfg.asym.alphas):
            # plain GD: the asymptotic rate (last quarter before the floor); modified: from the switch on
            # (the window below fit.ceiling starts where the step was applied)
            rho = (_asymptotic_rates(res.outputs[i], cfg) if name == "asym"
                   else _fits(res.outputs[i], cfg)[0])
            speed = float(np.mean(-np.log(rho)))  # -log rho: the exponent in exp(-speed * T)
            speeds[name, a] = speed
            summary[f"{name}_alpha{a:g}_linear_rate"] = float(np.mean(rho))
            summary[f"{name}_alpha{a:g}_speed"] = speed
            summary[f"{name}_alpha{a:g}_final_error"] = float(np.mean(res.outputs[i][:, -1]))
    alphas = np.asarray(cfg.asym.alphas, dtype=float)
    for name in ("asym", "modified"):
        s = np.asarray([speeds[name, a] for a in cfg.asym.alphas])
        summary[f"{name}_speed_vs_alpha_loglog_slope"] = float(np.polyfit(np.log(alphas), np.log(s), 1)[0])
        summary[f"{name}_speed_max_over_min"] = float(s.max() / s.min())
        summary[f"{name}_speed_smallest_alpha"] = float(s[np.argmin(alphas)])
    # at the symmetric runs' budget T (equal T for the comparison with symmetric k > r)
    summary["asym_final_error_largest_alpha"] = float(np.mean(plain.outputs[int(np.argmax(alphas))][:, T - 1]))
    summary["x64"] = bool(cfg.x64)
    ctx.summary(**summary)

    t = np.arange(1, T + 1)
    clip = lambda c: np.maximum(c, 1e-16)  # noqa: E731 -- exact zeros would vanish on a log axis
    ctx.figure("symmetric_semilog", plots.lines(
        {f"k={k}": (t, clip(curves[f"sym_k{k}"])) for k in cfg.sym.ks}, xlabel="iteration t",
        ylabel="||XX^T - M*||_F / ||M*||_F", logy=True,
        title=f"symmetric GD, r={r}: k=r linear, k>r sublinear ({cfg.seeds} seeds)"))
    ctx.figure("symmetric_loglog", plots.lines(
        {**{f"k={k}: error^2": (t, clip(curves[f"sym_k{k}"] ** 2)) for k in over},
         "1/T^2 (lower-bound slope)": (t, 1.0 / t ** 2)}, xlabel="iteration t",
        ylabel="squared relative error", logx=True, logy=True,
        title="k>r: power law, no steeper than the Omega(1/T^2) bound"))
    ta = np.arange(1, T_asym + 1)
    series = {f"asym alpha={a:g}": (ta, clip(curves[f"asym_alpha{a:g}"])) for a in cfg.asym.alphas}
    series.update({f"sym k={max(over)}": (t, clip(curves[f"sym_k{max(over)}"]))})
    ctx.figure("asymmetric_alpha", plots.lines(
        series, xlabel="iteration t", ylabel="relative error", logy=True,
        title=f"asymmetric F G^T, k={cfg.asym.k}: linear, slower for small alpha"))
    ctx.figure("modified_step", plots.lines(
        {**{f"GD alpha={a:g}": (ta, clip(curves[f"asym_alpha{a:g}"])) for a in cfg.asym.alphas},
         **{f"one-step fix alpha={a:g}": (ta, clip(curves[f"modified_alpha{a:g}"])) for a in cfg.asym.alphas}},
        xlabel="iteration t", ylabel="relative error", logy=True,
        title="one-step modification: rate independent of alpha"))
    ctx.figure("speed_vs_alpha", plots.lines(
        {name: (alphas, np.asarray([speeds[name, a] for a in cfg.asym.alphas]))
         for name in ("asym", "modified")}, xlabel="alpha", ylabel="fitted speed -log(rho)",
        logx=True, logy=True, title="speed vs init scale (slope 2 = exp(-alpha^2 T))"))
