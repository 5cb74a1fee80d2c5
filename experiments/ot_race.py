"""OT solver race: marginal error vs iteration and vs wall time on the problem families; Mirror Sinkhorn rates.

Two studies (``cfg.study``):

* ``race`` (Sinkhorn vs Sinkhorn-Newton-Sparse, arXiv:2401.12253): on each problem family (``cloud``:
  two random empirical measures in R^2 with the squared-Euclidean cost; ``grid_w1`` / ``grid_w2``:
  bump-mixture densities on a ``grid_size^2`` grid with cost ||x-y|| / ||x-y||^2; ``random_assignment``:
  the SNS paper's random assignment problem, C_ij ~ U[0, 1] with epsilon = 1 / ``random_assignment_eta``),
  each solver in ``cfg.solvers`` (``sinkhorn``: ours, kernel scaling with log absorption;
  ``sinkhorn_lse``: ours, pure log domain; ``ott``: ott-jax's Sinkhorn; ``sns``: Sinkhorn-Newton-Sparse)
  runs to the marginal error ``target_error`` at ``epsilon = epsilon_scale * median(C)``. Sinkhorn
  errors are recorded at every iteration; SNS counts each warm-up Sinkhorn step and each Newton step as
  one iteration (CG iterations reported apart). Wall time is the jitted solve to the target (compile
  excluded, median of ``repeats``); the error-vs-time curve spreads each stage's measured time evenly
  over its iterations (SNS: warm-up and Newton stages timed separately). ``float64`` turns on 64-bit
  floats for this run only (needed below ~1e-7). ``epsilon_sweep`` (optional) repeats Sinkhorn and SNS
  at each ``epsilon = e * median(C)`` and draws the iteration ratio vs epsilon.
* ``mirror`` (Mirror Sinkhorn, arXiv:2211.10420): Mirror Sinkhorn on a cloud problem for T in
  ``mirror.iterations``: the gap ``|<C, gamma_bar_T> - OT(C)|`` to POT's exact ``emd2``, the same with a
  noisy online cost ``C_t = C + noise * median(C) * N(0, 1)``, the marginal violation of gamma_bar_T, and
  for the convex objective ``f(P) = <C, P> + (tau/2)||P||^2`` the l1 distance to and the objective gap
  from POT's ``smooth_ot_dual(reg_type="l2")`` plan; then the l1 distance vs T for each tau in
  ``mirror.tau_sweep``; log-log slopes fitted by least squares.
"""

from __future__ import annotations

import contextlib

import jax
import jax.numpy as jnp
import numpy as np
from ott.geometry import geometry
from ott.problems.linear import linear_problem
from ott.solvers.linear import sinkhorn as ott_sinkhorn

from jaxopt_lab import ot
from jaxopt_lab.ot.pot_reference import require_pot
from jaxopt_lab.lab import Each, OneOf, Range, Rule, bench, plots

PROBLEMS = ("cloud", "grid_w1", "grid_w2", "random_assignment")
SOLVERS = ("sinkhorn", "sinkhorn_lse", "ott", "sns")

CONFIG_SPEC = {
    "study": OneOf(("race", "mirror")),
    "problems": OneOf(PROBLEMS),
    "solvers": OneOf(SOLVERS),
    "n": Range(2, integer=True),
    "grid_size": Range(2, integer=True),
    "epsilon_scale": Range(0, open_low=True),
    "random_assignment_eta": Range(0, open_low=True),
    "epsilon_sweep": Each(Range(0, open_low=True), may_be_empty=True),
    "target_error": Range(0, open_low=True),
    "repeats": Range(1, integer=True),
    "sinkhorn.max_iterations": Range(1, integer=True),
    "sns.warmup_iterations": Range(1, integer=True),
    "sns.max_iterations": Range(1, integer=True),
    "sns.kept_per_row": Range(0, 1, open_low=True),
    "sns.cg_max_iterations": Range(1, integer=True),
    "mirror.n": Range(2, integer=True),
    "mirror.noise": Range(0),
    "mirror.tau": Range(0, open_low=True),
    "mirror.iterations": Each(Range(1, integer=True)),
    "mirror.sweep_iterations": Each(Range(1, integer=True)),
    "mirror.tau_sweep": Each(Range(0, open_low=True)),
}

CONFIG_DEFAULTS = {
    "seed": (0, "PRNG seed of the problems (one key per problem family) and of the mirror study's noise"),
    "study": ("race", "'race': Sinkhorn vs Sinkhorn-Newton-Sparse to a marginal error; 'mirror': Mirror Sinkhorn "
                      "rates against POT's exact solutions (needs the POT extra)"),
    "problems": (("cloud", "grid_w1", "grid_w2"),
                 "race problem families: 'cloud' (n points in R^2, squared-Euclidean cost), 'grid_w1' / 'grid_w2' "
                 "(densities on a grid_size^2 grid, cost ||x-y|| / ||x-y||^2), 'random_assignment' (C_ij ~ U[0, 1])"),
    "solvers": (("sinkhorn", "sinkhorn_lse", "ott", "sns"),
                "race solvers: ours in kernel scaling ('sinkhorn') or log domain ('sinkhorn_lse'), ott-jax's "
                "Sinkhorn ('ott'), Sinkhorn-Newton-Sparse ('sns'); the iteration ratio needs 'sinkhorn' and 'sns'"),
    "n": (500, "points per measure of 'cloud' and side of the 'random_assignment' cost matrix"),
    "grid_size": (24, "grid side of 'grid_w1' / 'grid_w2': grid_size^2 points per measure"),
    "epsilon_scale": (0.01, "entropic regularisation epsilon as a multiple of the median cost (unitless); also "
                            "the mirror study's problem"),
    "random_assignment_eta": (1200.0, "'random_assignment' uses epsilon = 1 / eta (absolute), the SNS paper's eta"),
    "epsilon_sweep": ((), "optional epsilon scales (x median cost) at which Sinkhorn and SNS are rerun for the "
                          "iteration-ratio-vs-epsilon figure; empty: no sweep"),
    "target_error": (1e-5, "stopping criterion: l1 marginal error of the plan; below ~1e-7 set float64"),
    "float64": (False, "run in 64-bit floats (jax x64 for this run only); float32 cannot reach errors below ~1e-7"),
    "repeats": (3, "timed runs per solver (median wall time, compile excluded)"),
    "sinkhorn.max_iterations": (20000, "iteration cap of the Sinkhorn solvers (one row + column sweep each)"),
    "sns.warmup_iterations": (20, "SNS stage 1: Sinkhorn sweeps before the Newton stage (the paper's N1)"),
    "sns.max_iterations": (300, "SNS cap on Newton steps after the warm-up"),
    "sns.kept_per_row": (0.2, "fraction of each Hessian row SNS keeps when sparsifying (largest entries)"),
    "sns.cg_max_iterations": (50, "conjugate-gradient iterations per Newton step at most"),
    "mirror.n": (50, "mirror study: points per measure of its cloud problem"),
    "mirror.noise": (1.0, "mirror study: std of the online cost noise, as a multiple of the median cost"),
    "mirror.tau": (1.0, "mirror study: weight of the quadratic term (tau/2)||P||^2 of the convex objective"),
    "mirror.iterations": ((100, 300, 1000, 3000, 10000), "mirror study: horizons T at which the gaps are measured"),
    "mirror.sweep_iterations": ((100, 1000, 10000), "mirror study: horizons T of the plan-distance-vs-tau sweep"),
    "mirror.tau_sweep": ((1.0, 100.0, 1000.0, 10000.0), "mirror study: taus of the plan-distance-vs-tau sweep"),
}

# checked before anything is imported (see jaxopt_lab.lab.rules): the mirror study compares with POT, a
# dependency the solvers never import, so without it the config is refused in one line before any work
CONFIG_RULES = (
    Rule("study", "study == 'race' or installed('ot')",
         "'race' (study 'mirror' needs POT, the `ot` package, a dependency of jaxopt-lab missing from this "
         "environment: pip install pot)"),
)


def make_problem(name: str, key, cfg, dtype, epsilon_scale=None):
    """Problem ``name`` at ``epsilon = epsilon_scale * median(C)`` (default ``cfg.epsilon_scale``).

    ``random_assignment`` is the SNS paper's random assignment problem: ``C_ij ~ U[0, 1]`` i.i.d.,
    uniform marginals, and (without ``epsilon_scale``) the paper's ``epsilon = 1 / eta`` with
    ``eta = cfg.random_assignment_eta`` (1200 in the paper).
    """
    scale = cfg.epsilon_scale if epsilon_scale is None else epsilon_scale
    if name == "cloud":
        return ot.point_cloud_problem(key, cfg.n, epsilon_scale=scale, dtype=dtype)
    if name == "random_assignment":
        cost = jax.random.uniform(key, (cfg.n, cfg.n), dtype)
        eps = 1.0 / cfg.random_assignment_eta if epsilon_scale is None else epsilon_scale * jnp.median(cost)
        weights = jnp.full((cfg.n,), 1.0 / cfg.n, dtype)
        return linear_problem.LinearProblem(geometry.Geometry(cost_matrix=cost, epsilon=eps), a=weights, b=weights)
    power = 1 if name == "grid_w1" else 2
    return ot.grid_density_problem(key, cfg.grid_size, power=power, epsilon_scale=scale, dtype=dtype)


def _problem_key(key, name):
    # one key per problem family, independent of which families a config selects
    return jax.random.fold_in(key, PROBLEMS.index(name))


def _precision(cfg):
    return jax.enable_x64(True) if cfg.float64 else contextlib.nullcontext()


def _pot_or_config_error():
    """POT, or the one-line ``ConfigError`` of ``require_pot`` (the guard at use; ``CONFIG_RULES`` refuses
    the config earlier)."""
    from jaxopt_lab.lab import ConfigError
    try:
        return require_pot("study='mirror'")
    except ModuleNotFoundError as err:
        raise ConfigError(str(err)) from None


def run(cfg, ctx):
    with _precision(cfg):
        dtype = jnp.float64 if cfg.float64 else jnp.float32
        if cfg.study == "race":
            _race(cfg, ctx, dtype)
        else:
            _mirror(cfg, ctx, dtype)


# -- race ---------------------------------------------------------------------------------------------

def _solver_fn(name, cfg):
    """A jittable ``prob -> (errors at iterations, iterations, n_iters, converged, reg_cost, stats)``."""
    target = cfg.target_error
    max_it = cfg.sinkhorn.max_iterations
    if name in ("sinkhorn", "sinkhorn_lse"):
        solver = ot.Sinkhorn(threshold=target, max_iterations=max_it, inner_iterations=1,
                             lse_mode=name == "sinkhorn_lse")

        def fn(prob):
            out = solver(prob)
            return dict(errors=out.errors, n_iters=out.n_iters, converged=out.converged, reg_cost=out.reg_cost)
        return fn
    if name == "ott":
        solver = ott_sinkhorn.Sinkhorn(threshold=target, max_iterations=max_it, inner_iterations=1)

        def fn(prob):
            out = solver(prob)
            return dict(errors=out.errors, n_iters=out.n_iters, converged=out.converged, reg_cost=out.reg_ot_cost)
        return fn
    sns = ot.SinkhornNewtonSparse(threshold=target, warmup_iterations=cfg.sns.warmup_iterations,
                                  max_iterations=cfg.sns.max_iterations, kept_per_row=cfg.sns.kept_per_row,
                                  cg_max_iterations=cfg.sns.cg_max_iterations)

    def fn(prob):
        out = sns(prob)
        return dict(errors=out.errors, n_iters=out.n_iters, converged=out.converged, reg_cost=out.reg_cost,
                    **out.stats)
    return fn


def _curve(name, res, cfg):
    """(iterations, errors) of the recorded trace."""
    n = int(res["n_iters"])
    if name != "sns":
        errs = np.asarray(res["errors"])[:n]
        return np.arange(1, n + 1), errs
    warm_n = int(res["warmup_iterations"])
    inner = min(10, cfg.sns.warmup_iterations)
    warm = np.asarray(res["warmup_errors"])[: warm_n // inner]
    newton = np.asarray(res["errors"])[: int(res["newton_iterations"])]
    its = np.concatenate([inner * np.arange(1, len(warm) + 1), warm_n + np.arange(1, len(newton) + 1)])
    return its, np.concatenate([warm, newton])


def _race(cfg, ctx, dtype):
    summary, iter_fig, time_fig = {}, {}, {}
    # one compiled solver each, shared by all problems and the epsilon sweep (epsilon is a traced leaf
    # of the problem, so same-shape problems reuse the compilation)
    solvers = {name: jax.jit(_solver_fn(name, cfg)) for name in set(cfg.solvers) | {"sinkhorn", "sns"}}
    ctx.progress(len(cfg.problems) * len(cfg.solvers))
    step = 0
    for pname in cfg.problems:
        prob = make_problem(pname, _problem_key(ctx.key, pname), cfg, dtype)
        ot.validate_problem(prob)
        iter_series, time_series = {}, {}
        for sname in cfg.solvers:
            fn = solvers[sname]
            timing = bench.time_jitted(fn, prob, repeats=cfg.repeats)
            res = jax.device_get(fn(prob))
            its, errs = _curve(sname, res, cfg)
            n_iters = int(res["n_iters"])
            if sname == "sns":
                warm_cfg_solver = ot.Sinkhorn(threshold=0.0, max_iterations=int(res["warmup_iterations"]),
                                              inner_iterations=min(10, cfg.sns.warmup_iterations))
                warm_t = bench.time_jitted(jax.jit(lambda p: warm_cfg_solver(p).f), prob, repeats=cfg.repeats)
                newton_n = max(int(res["newton_iterations"]), 1)
                warm_n = int(res["warmup_iterations"])
                per_newton = max(timing.run_s - warm_t.run_s, 0.0) / newton_n
                times = np.where(its <= warm_n, its * warm_t.run_s / max(warm_n, 1),
                                 warm_t.run_s + (its - warm_n) * per_newton)
                summary[f"{pname}/sns/newton_iterations"] = int(res["newton_iterations"])
                summary[f"{pname}/sns/cg_iterations"] = int(np.sum(res["cg_iterations"]))
                summary[f"{pname}/sns/kept_per_row"] = int(res["kept_per_row"])
                summary[f"{pname}/sns/newton_step_s"] = per_newton
            else:
                times = its * timing.run_s / max(n_iters, 1)
            iter_series[sname] = (its, errs)
            time_series[sname] = (times, errs)
            summary[f"{pname}/{sname}/iterations"] = n_iters
            summary[f"{pname}/{sname}/converged"] = bool(res["converged"])
            summary[f"{pname}/{sname}/final_error"] = float(errs[-1]) if len(errs) else float("nan")
            summary[f"{pname}/{sname}/time_s"] = timing.run_s
            summary[f"{pname}/{sname}/compile_s"] = timing.compile_s
            summary[f"{pname}/{sname}/reg_cost"] = float(res["reg_cost"])
            step += 1
            ctx.log(step, **{f"{pname}/{sname}/iterations": n_iters, f"{pname}/{sname}/time_s": timing.run_s})
        iter_fig[pname], time_fig[pname] = iter_series, time_series
        if "sinkhorn" in cfg.solvers and "sns" in cfg.solvers:
            sk, sn = summary[f"{pname}/sinkhorn/iterations"], summary[f"{pname}/sns/iterations"]
            summary[f"{pname}/iteration_ratio"] = sk / max(sn, 1)
            summary[f"{pname}/time_ratio"] = summary[f"{pname}/sinkhorn/time_s"] / summary[f"{pname}/sns/time_s"]
            ref = summary[f"{pname}/sinkhorn/reg_cost"]
            summary[f"{pname}/reg_cost_rel_diff"] = abs(summary[f"{pname}/sns/reg_cost"] - ref) / abs(ref)
    if "sinkhorn" in cfg.solvers and "sns" in cfg.solvers:
        summary["min_iteration_ratio"] = min(summary[f"{p}/iteration_ratio"] for p in cfg.problems)
        summary["max_reg_cost_rel_diff"] = max(summary[f"{p}/reg_cost_rel_diff"] for p in cfg.problems)
        summary["all_converged"] = float(all(summary[f"{p}/{s}/converged"] for p in cfg.problems
                                             for s in ("sinkhorn", "sns")))
    summary["float64"] = bool(cfg.float64)
    if cfg.epsilon_sweep:
        _epsilon_sweep(cfg, ctx, dtype, summary, solvers["sinkhorn"], solvers["sns"])
    ctx.summary(**summary)
    for pname in cfg.problems:
        ctx.figure(f"error_vs_iteration_{pname}", plots.lines(
            iter_fig[pname], xlabel="iteration", ylabel="marginal error", logy=True, logx=True,
            title=f"{pname}: eps = {cfg.epsilon_scale:g} x median cost"))
        ctx.figure(f"error_vs_time_{pname}", plots.lines(
            time_fig[pname], xlabel="wall time (s)", ylabel="marginal error", logy=True,
            title=f"{pname}: eps = {cfg.epsilon_scale:g} x median cost"))


def _epsilon_sweep(cfg, ctx, dtype, summary, sinkhorn, sns):
    """Sinkhorn / SNS iteration ratio vs ``epsilon = e * median(C)`` for e in ``cfg.epsilon_sweep``.

    Sinkhorn's iteration count grows like 1/epsilon while SNS's stays near ``warmup_iterations`` plus a few
    Newton steps only when stage 1 leaves it in Newton's fast region; the ratio is at most
    ``sinkhorn_iterations / (warmup_iterations + 1)``. Figure ``iteration_ratio_vs_epsilon``.
    """
    ratios, counts = {}, {}
    for pname in cfg.problems:
        key = _problem_key(ctx.key, pname)
        rows = []
        for e in cfg.epsilon_sweep:
            prob = make_problem(pname, key, cfg, dtype, epsilon_scale=e)
            sk, sn = jax.device_get(sinkhorn(prob)), jax.device_get(sns(prob))
            tag = f"{pname}/eps_{e:g}"
            summary[f"{tag}/sinkhorn/iterations"] = int(sk["n_iters"])
            summary[f"{tag}/sns/iterations"] = int(sn["n_iters"])
            summary[f"{tag}/sns/newton_iterations"] = int(sn["newton_iterations"])
            summary[f"{tag}/converged"] = bool(sk["converged"]) and bool(sn["converged"])
            summary[f"{tag}/iteration_ratio"] = int(sk["n_iters"]) / max(int(sn["n_iters"]), 1)
            rows.append((e, summary[f"{tag}/iteration_ratio"], int(sk["n_iters"]), int(sn["n_iters"]),
                         summary[f"{tag}/converged"]))
        es = np.asarray([r[0] for r in rows])
        ratios[pname] = (es, np.asarray([r[1] for r in rows]))
        counts[f"{pname}: Sinkhorn"] = (es, np.asarray([r[2] for r in rows], float))
        counts[f"{pname}: SNS"] = (es, np.asarray([r[3] for r in rows], float))
    ratios["100x"] = (np.asarray(cfg.epsilon_sweep, float), np.full(len(cfg.epsilon_sweep), 100.0))
    ctx.figure("iteration_ratio_vs_epsilon", plots.lines(
        ratios, xlabel="epsilon / median cost", ylabel="Sinkhorn / SNS iterations", logx=True, logy=True,
        title=f"iterations to marginal error {cfg.target_error:g} (SNS: {cfg.sns.warmup_iterations} warm-up steps)"))
    ctx.figure("iterations_vs_epsilon", plots.lines(
        counts, xlabel="epsilon / median cost", ylabel="iterations", logx=True, logy=True,
        title=f"iterations to marginal error {cfg.target_error:g}"))


# -- mirror -------------------------------------------------------------------------------------------

def _slope(ts, values):
    ts, values = np.asarray(ts, float), np.abs(np.asarray(values, float))
    ok = values > 0
    if ok.sum() < 2:
        return float("nan")
    return float(np.polyfit(np.log(ts[ok]), np.log(values[ok]), 1)[0])


def _mirror(cfg, ctx, dtype):
    pot = _pot_or_config_error()
    m = cfg.mirror
    prob = ot.point_cloud_problem(ctx.key, m.n, epsilon_scale=cfg.epsilon_scale, dtype=dtype)
    cost = prob.geom.cost_matrix
    a, b, c = (np.asarray(x, np.float64) for x in (prob.a, prob.b, cost))
    exact = float(pot.emd2(a, b, c))
    median = float(np.median(c))
    noise_key = jax.random.fold_in(ctx.key, 1)

    def noisy(t, p):
        return cost + m.noise * median * jax.random.normal(jax.random.fold_in(noise_key, t), p.shape, p.dtype)

    def objective(p):
        return jnp.sum(p * cost) + 0.5 * m.tau * jnp.sum(p ** 2)

    ref_plan = _l2_reference(pot, a, b, c, m.tau)
    rows = {"gap": [], "noisy_gap": [], "marginal": [], "l2_distance": [], "l2_gap": []}
    ctx.progress(int(max(m.iterations)))
    for i, T in enumerate(m.iterations):
        solver = ot.MirrorSinkhorn(max_iterations=int(T))
        plain = solver(prob)
        online = solver(prob, gradient=noisy)
        smooth = np.asarray(solver(prob, objective=objective).matrix, np.float64)
        rows["gap"].append(abs(float(plain.cost) - exact))
        rows["noisy_gap"].append(abs(float(online.cost) - exact))
        rows["marginal"].append(float(plain.marginal_error))
        rows["l2_distance"].append(float(np.abs(smooth - ref_plan).sum()))
        rows["l2_gap"].append(abs(_l2_objective(smooth, c, m.tau) - _l2_objective(ref_plan, c, m.tau)))
        ctx.log(int(T), **{k: v[-1] for k, v in rows.items()})
    ts = np.asarray(m.iterations, float)
    summary = {f"mirror/{k}_slope": _slope(ts, v) for k, v in rows.items()}
    summary.update({f"mirror/{k}_first": v[0] for k, v in rows.items()})
    summary.update({f"mirror/{k}_last": v[-1] for k, v in rows.items()})
    summary["mirror/exact_cost"] = exact
    summary["mirror/relative_gap_last"] = rows["gap"][-1] / exact
    summary["float64"] = bool(cfg.float64)
    ctx.figure("mirror_rates", plots.lines(
        {"|<C,avg> - OT|": (ts, rows["gap"]), "noisy cost": (ts, rows["noisy_gap"]),
         "marginal violation": (ts, rows["marginal"]), "l2 objective: |P - P*|_1": (ts, rows["l2_distance"]),
         "l2 objective: |f(avg) - f(P*)|": (ts, rows["l2_gap"])},
        xlabel="T", ylabel="error", logx=True, logy=True, title="Mirror Sinkhorn"))
    _tau_sweep(cfg, ctx, prob, pot, summary)
    ctx.summary(**summary)


def _l2_objective(plan, cost, tau):
    return float(np.sum(plan * cost) + 0.5 * tau * np.sum(plan ** 2))


def _l2_reference(pot, a, b, c, tau):
    """POT's solution of ``min <C, P> + (tau/2)||P||^2`` on U(a, b) (dual L-BFGS, Blondel et al. 2018)."""
    return pot.smooth.smooth_ot_dual(a, b, c, tau, reg_type="l2", stopThr=1e-12, numItermax=20000)


def _tau_sweep(cfg, ctx, prob, pot, summary):
    """Plan distance |gamma_bar_T - P*_tau|_1 vs T for each tau in ``mirror.tau_sweep``.

    The rate Mirror Sinkhorn guarantees is on the objective; the plan distance follows from it only
    through strong convexity, ||P - P*||_2^2 <= (2 / tau)(f(P) - f(P*)) for feasible P, which is vacuous
    until the gap is below tau ||P - P*||_2^2 / 2. The sweep shows how the distance's fitted slope depends on
    tau (how far P*_tau is from a sparse LP vertex); ``nonzeros_per_row`` counts P*_tau's support.
    """
    m = cfg.mirror
    cost = prob.geom.cost_matrix
    a, b, c = (np.asarray(x, np.float64) for x in (prob.a, prob.b, cost))
    ts = np.asarray(m.sweep_iterations, float)
    curves = {}
    for tau in m.tau_sweep:
        ref_plan = _l2_reference(pot, a, b, c, float(tau))

        def objective(p, tau=float(tau)):
            return jnp.sum(p * cost) + 0.5 * tau * jnp.sum(p ** 2)

        dist = [float(np.abs(np.asarray(ot.MirrorSinkhorn(max_iterations=int(T))(prob, objective=objective).matrix,
                                        np.float64) - ref_plan).sum()) for T in m.sweep_iterations]
        slope = _slope(ts, dist)
        summary[f"mirror/tau_{tau:g}/l2_distance_slope"] = slope
        summary[f"mirror/tau_{tau:g}/nonzeros_per_row"] = float(np.sum(ref_plan > 1e-12) / len(a))
        curves[f"tau = {tau:g} (slope {slope:.2f})"] = (ts, dist)
    ctx.figure("mirror_distance_vs_tau", plots.lines(
        curves, xlabel="T", ylabel="|gamma_bar_T - P*_tau|_1", logx=True, logy=True,
        title="<C,P> + (tau/2)||P||^2: plan distance vs T"))
