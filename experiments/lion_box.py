"""Lion with decoupled weight decay lambda solves the box-constrained problem ||x||_inf <= 1/lambda.

"Lion Secretly Solves Constrained Optimization: As Lyapunov Predicts" (arXiv:2310.05898): Lion with
decoupled weight decay lambda minimises f(x) subject to ||x||_inf <= 1/lambda. The problem is
least squares ``f(x) = ||A x - b||^2 / 2`` whose unconstrained optimum lies far outside the box. For
each lambda, full-batch Lion (``jaxopt_lab.optim.lion_kappa``, kappa = l1, a cosine-decaying step) starts
*at* the unconstrained optimum; the reference box solution comes from projected gradient descent
(``x <- clip(x - grad f(x) / L, -1/lambda, 1/lambda)``, step ``1/L``, ``L = ||A||_2^2``) on the shared
fixed-point driver, run to a gradient-mapping norm of 1e-12. Runs in float64 (``jax.enable_x64``, only
inside this experiment) so that the box test and the distances are not float32 rounding.

Reported per lambda: ``lambda * ||x_T||_inf`` (<= 1 means inside the box), the relative distance
``||x_T - x_box|| / ||x_box||``, the relative objective gap ``(f(x_T) - f(x_box)) / f(x_box)``, the
projected-gradient (KKT) residual ``||x - clip(x - grad f(x))||_inf`` at ``x_T`` and the agreement of
the active sets; a figure of ``lambda ||x_t||_inf`` and the distance to ``x_box`` along the run.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxopt_lab import _loop, optim, train
from jaxopt_lab.lab import Range, plots

CONFIG_SPEC = {
    "dim": Range(1, integer=True),
    "n_rows": Range(1, integer=True),
    "target_scale": Range(0.0, open_low=True),
    "steps": Range(10, integer=True),
    "trace_points": Range(1, integer=True),
    "lion.learning_rate": Range(0.0, open_low=True),
    "lion.final_learning_rate": Range(0.0, open_low=True),
    "lion.b1": Range(0.0, 1.0, open_high=True),
    "lion.b2": Range(0.0, 1.0, open_high=True),
    "pgd.max_iterations": Range(1, integer=True),
    "pgd.threshold": Range(0.0, open_low=True),
}

CONFIG_DEFAULTS = {
    "seed": (0, "seed of the least-squares problem A, b"),
    "dim": (50, "dimension d of x"),
    "n_rows": (100, "rows of A (entries N(0, 1/n_rows))"),
    "target_scale": (3.0, "standard deviation of x_true, which puts the unconstrained optimum far outside "
                          "the box"),
    "lambdas": ((0.5, 1.0, 2.0), "decoupled weight decays lambda (> 0): the box is ||x||_inf <= 1/lambda"),
    "steps": (40000, "full-batch Lion steps, a multiple of trace_points"),
    "trace_points": (80, "points of the traces along the run"),
    "lion.learning_rate": (0.01, "Lion's initial step (cosine decay to lion.final_learning_rate)"),
    "lion.final_learning_rate": (1e-6, "Lion's final step, <= lion.learning_rate"),
    "lion.b1": (0.9, "Lion's interpolation factor of the update direction"),
    "lion.b2": (0.99, "Lion's momentum decay"),
    "pgd.max_iterations": (200000, "iteration cap of the projected-gradient reference"),
    "pgd.threshold": (1e-12, "gradient-mapping norm at which the projected-gradient reference stops"),
}


def validate(cfg) -> None:
    from jaxopt_lab.lab import ConfigError

    lambdas = tuple(cfg.lambdas)
    if not lambdas or not all(isinstance(v, (int, float)) and v > 0 for v in lambdas):
        raise ConfigError(f"config key 'lambdas' = {lambdas!r}: must be a non-empty tuple of numbers > 0")
    if cfg.steps % cfg.trace_points:
        raise ConfigError(f"config key 'trace_points' = {cfg.trace_points!r}: must divide steps = "
                          f"{cfg.steps}")
    if cfg.lion.final_learning_rate > cfg.lion.learning_rate:
        raise ConfigError(f"config key 'lion.final_learning_rate' = {cfg.lion.final_learning_rate!r}: "
                          f"must be <= lion.learning_rate = {cfg.lion.learning_rate!r}")


def problem(key, n_rows: int, dim: int, target_scale: float):
    """``A`` (n x d, entries N(0, 1/n)) and ``b = A x_true`` with ``x_true ~ N(0, target_scale^2)``."""
    k_a, k_x = jax.random.split(key)
    a = jax.random.normal(k_a, (n_rows, dim), jnp.float64) / jnp.sqrt(n_rows)
    x_true = target_scale * jax.random.normal(k_x, (dim,), jnp.float64)
    return a, a @ x_true


def projected_gradient(a, b, radius, *, threshold, max_iterations):
    """The box solution by projected gradient descent with step 1/L on the shared driver."""
    lipschitz = jnp.linalg.norm(a, 2) ** 2

    def grad(x):
        return a.T @ (a @ x - b)

    def step(_, x):
        return jnp.clip(x - grad(x) / lipschitz, -radius, radius)

    def error(x):  # the gradient mapping, zero exactly at the box solution
        return jnp.max(jnp.abs(x - step(0, x))) * lipschitz

    return _loop.iterate(step, error, jnp.zeros(a.shape[1], a.dtype), threshold=threshold,
                         max_iterations=max_iterations, inner_iterations=100)


def run_lion(a, b, lam, x0, cfg):
    """Full-batch Lion with decoupled weight decay ``lam`` on the training engine's pure chunks;
    traces at ``trace_points`` block ends."""
    schedule = optax.cosine_decay_schedule(cfg.lion.learning_rate, cfg.steps,
                                           alpha=cfg.lion.final_learning_rate / cfg.lion.learning_rate)
    tx = optim.get("lion_kappa", learning_rate=schedule, b1=cfg.lion.b1, b2=cfg.lion.b2,
                   weight_decay=lam, kappa="l1")
    block = cfg.steps // cfg.trace_points
    engine = train.Engine(lambda x, batch: 0.5 * jnp.sum((batch[0] @ x - batch[1]) ** 2), tx,
                          train.batches.full_batch(), (a, b))

    def run_block(state, index):
        state, _ = engine.pure_run(state, None, index * block, block)
        return state, state.params

    state, xs = jax.lax.scan(run_block, engine.pure_init(x0), jnp.arange(cfg.trace_points))
    return state.params, xs


def run(cfg, ctx):
    with jax.enable_x64(True):
        _run(cfg, ctx)


def _run(cfg, ctx):
    lambdas = [float(v) for v in cfg.lambdas]
    a, b = problem(ctx.key, cfg.n_rows, cfg.dim, cfg.target_scale)
    x_ls = jnp.linalg.lstsq(a, b)[0]
    f = jax.jit(lambda x: 0.5 * jnp.sum((a @ x - b) ** 2))
    lion = jax.jit(lambda lam: run_lion(a, b, lam, x_ls, cfg))
    pgd = jax.jit(lambda r: projected_gradient(a, b, r, threshold=cfg.pgd.threshold,
                                               max_iterations=cfg.pgd.max_iterations))
    ctx.progress(len(lambdas))
    linf_curves, dist_curves, summary = {}, {}, {}
    block = cfg.steps // cfg.trace_points
    t = np.arange(1, cfg.trace_points + 1) * block
    for i, lam in enumerate(lambdas):
        radius = 1.0 / lam
        box = pgd(radius)
        x_box = box.state
        x_t, xs = lion(jnp.asarray(lam))
        gap = (f(x_t) - f(x_box)) / f(x_box)
        kkt = jnp.max(jnp.abs(x_t - jnp.clip(x_t - a.T @ (a @ x_t - b), -radius, radius)))
        active_lion = np.abs(np.asarray(x_t)) >= radius * (1 - 1e-6)
        active_box = np.abs(np.asarray(x_box)) >= radius * (1 - 1e-9)
        tag = f"lam{i}"
        values = {
            f"{tag}_lambda": lam,
            f"{tag}_unconstrained_linf_times_lambda": float(lam * jnp.max(jnp.abs(x_ls))),
            f"{tag}_final_linf_times_lambda": float(lam * jnp.max(jnp.abs(x_t))),
            f"{tag}_rel_dist_to_box_solution": float(jnp.linalg.norm(x_t - x_box)
                                                     / jnp.linalg.norm(x_box)),
            f"{tag}_rel_objective_gap": float(gap),
            f"{tag}_kkt_residual": float(kkt),
            f"{tag}_kkt_residual_at_start": float(
                jnp.max(jnp.abs(x_ls - jnp.clip(x_ls - a.T @ (a @ x_ls - b), -radius, radius)))),
            f"{tag}_n_active_box": int(active_box.sum()),
            f"{tag}_active_set_agreement": float(np.mean(active_lion == active_box)),
            f"{tag}_pgd_converged": bool(box.converged),
            f"{tag}_pgd_iterations": int(box.n_iters),
            f"{tag}_first_step_inside_box": int(t[np.argmax(lam * np.max(np.abs(np.asarray(xs)), 1)
                                                            <= 1.0 + 1e-12)])
            if np.any(lam * np.max(np.abs(np.asarray(xs)), 1) <= 1.0 + 1e-12) else -1,
        }
        summary.update(values)
        ctx.log(i + 1, **{k: v for k, v in values.items() if not isinstance(v, bool)})
        linf_curves[f"lambda={lam:g}"] = (t, lam * np.max(np.abs(np.asarray(xs)), axis=1))
        dist_curves[f"lambda={lam:g}"] = (t, np.linalg.norm(np.asarray(xs) - np.asarray(x_box), axis=1)
                                          / np.linalg.norm(np.asarray(x_box)))
    tags = [f"lam{i}" for i in range(len(lambdas))]
    summary.update(
        max_final_linf_times_lambda=max(summary[f"{g}_final_linf_times_lambda"] for g in tags),
        min_unconstrained_linf_times_lambda=min(summary[f"{g}_unconstrained_linf_times_lambda"]
                                                for g in tags),
        max_rel_dist_to_box_solution=max(summary[f"{g}_rel_dist_to_box_solution"] for g in tags),
        max_rel_objective_gap=max(summary[f"{g}_rel_objective_gap"] for g in tags),
        max_kkt_residual=max(summary[f"{g}_kkt_residual"] for g in tags),
        all_pgd_converged=all(summary[f"{g}_pgd_converged"] for g in tags),
        lambdas=lambdas)
    ctx.summary(**summary)
    fig, axes = plots.plt.subplots(1, 2, figsize=(11, 3.8))
    plots.lines(linf_curves, xlabel="Lion step", ylabel="lambda * ||x_t||_inf", logx=True, logy=True,
                title="iterates enter the box (<= 1)", ax=axes[0])
    axes[0].axhline(1.0, color="k", lw=0.8, ls="--")
    plots.lines(dist_curves, xlabel="Lion step", ylabel="||x_t - x_box|| / ||x_box||", logx=True,
                logy=True, title="distance to the box solution (projected GD)", ax=axes[1])
    fig.tight_layout()
    ctx.figure("lion_box", fig)
