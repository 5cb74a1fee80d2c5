"""Lazy-Hessian cubic Newton vs cubic Newton: gradient norm against arithmetic cost.

"Second-order optimization with lazy Hessians" (Doikov, Chayti, Jaggi), arXiv:2212.00781: reusing one
Hessian (one factorisation) for ``m`` cubic-Newton steps, ``m = d`` is best and improves the
arithmetic complexity of cubic Newton by about ``sqrt(d)``. Problem: l2-regularised logistic
regression ``f(x) = mean_i log(1 + exp(-y_i a_i^T x)) + mu/2 ||x||^2`` on generated data (``a_i ~ N(0,
I/d)``, labels of a planted ``x*`` flipped with probability ``label_noise``), full batch, float64
(``jax.enable_x64`` inside this experiment). Both methods are ``jaxopt_lab.optim.lazy_cubic_newton``
with learning rate 1 and the same regularisation ``M`` (``M_factor`` times a bound on the Hessian's
Lipschitz constant, ``L <= max|sigma'''| max_i ||a_i|| ||A||_2^2 / n`` with ``max|sigma'''| = 1/(6
sqrt(3))``), one with ``hessian_every = 1`` (cubic Newton), one with ``hessian_every = d``.

Arithmetic is counted, not timed (the paper's measure): a gradient ``4 n d`` flops (two
matrix-vector products), a Hessian ``d`` Hessian-vector products of ``8 n d`` (each about two gradients,
how it is computed here), a symmetric eigendecomposition with vectors ``9 d^3`` (Golub & Van Loan's
count for the symmetric QR algorithm), and a cubic step in the eigenbasis ``4 d^2`` plus ``3 d`` per
bisection iteration. Reported: steps, Hessians and flops to reach ``||grad f|| <= target``; a figure of
the gradient norm against cumulative flops.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxopt_lab import optim
from jaxopt_lab.lab import Range, plots

CONFIG_SPEC = {
    "dim": Range(1, integer=True),
    "n_samples": Range(1, integer=True),
    "mu": Range(0.0, open_low=True),
    "label_noise": Range(0.0, 0.5),
    "M_factor": Range(0.0, open_low=True),
    "target": Range(0.0, open_low=True),
    "max_steps": Range(1, integer=True),
    "bisection_iterations": Range(1, integer=True),
}

CONFIG_DEFAULTS = {
    "seed": (0, "seed of the generated data (A, the planted x* and the flipped labels)"),
    "dim": (500, "dimension d (the lazy method refreshes its Hessian every d steps)"),
    "n_samples": (1000, "examples n (full batch)"),
    "mu": (1e-3, "l2 regularisation mu"),
    "label_noise": (0.1, "probability of flipping a planted label, in [0, 0.5]"),
    "M_factor": (1.0, "cubic regularisation M as a multiple of the bound on the Hessian's Lipschitz constant"),
    "target": (1e-9, "stop at ||grad f|| <= target"),
    "max_steps": (2000, "step cap of each method"),
    "bisection_iterations": (100, "bisection iterations of each cubic step (counted in its flops)"),
}

_SIGMA3 = 1.0 / (6.0 * math.sqrt(3.0))  # max |sigma'''| of the logistic loss


def problem(key, n: int, d: int, label_noise: float):
    k_a, k_x, k_flip = jax.random.split(key, 3)
    a = jax.random.normal(k_a, (n, d), jnp.float64) / jnp.sqrt(d)
    x_star = jax.random.normal(k_x, (d,), jnp.float64)
    y = jnp.sign(a @ x_star + 1e-30)
    flip = jax.random.uniform(k_flip, (n,)) < label_noise
    return a, jnp.where(flip, -y, y)


def flop_costs(n: int, d: int, bisection_iterations: int) -> dict:
    return {"gradient": 4 * n * d, "hessian": d * 8 * n * d, "eigh": 9 * d ** 3,
            "step": 4 * d * d + 3 * d * bisection_iterations}


def run_method(grad_fn, x0, regularization, hessian_every, target, max_steps):
    """Steps until ``||grad|| <= target`` (or ``max_steps``); the gradient norm after each step."""
    tx = optim.get("lazy_cubic_newton", learning_rate=1.0, regularization=regularization,
                   hessian_every=hessian_every)
    norms = jnp.full((max_steps + 1,), jnp.nan, x0.dtype).at[0].set(jnp.linalg.norm(grad_fn(x0)))

    def cond(carry):
        _, _, t, norms = carry
        return (t < max_steps) & (norms[t] > target)

    def body(carry):
        x, state, t, norms = carry
        updates, state = tx.update(grad_fn(x), state, x, grad_fn=grad_fn)
        x = optax.apply_updates(x, updates)
        return x, state, t + 1, norms.at[t + 1].set(jnp.linalg.norm(grad_fn(x)))

    x, _, steps, norms = jax.lax.while_loop(cond, body, (x0, tx.init(x0), 0, norms))
    return x, steps, norms


def run(cfg, ctx):
    with jax.enable_x64(True):
        _run(cfg, ctx)


def _run(cfg, ctx):
    n, d = cfg.n_samples, cfg.dim
    a, y = problem(ctx.key, n, d, cfg.label_noise)

    def loss(x):
        return jnp.mean(jnp.logaddexp(0.0, -y * (a @ x))) + 0.5 * cfg.mu * jnp.sum(x * x)

    grad_fn = jax.grad(loss)
    lipschitz = _SIGMA3 * float(jnp.max(jnp.linalg.norm(a, axis=1))) \
        * float(jnp.linalg.norm(a, 2)) ** 2 / n
    regularization = cfg.M_factor * lipschitz
    costs = flop_costs(n, d, cfg.bisection_iterations)
    x0 = jnp.zeros(d, jnp.float64)
    ctx.progress(2)
    summary = {"lipschitz_bound": lipschitz, "regularization": regularization, "dim": d,
               "n_samples": n, **{f"flops_{k}": v for k, v in costs.items()}}
    curves = {}
    for i, (tag, every) in enumerate((("full", 1), ("lazy", d))):
        run_fn = jax.jit(lambda x0, every=every: run_method(grad_fn, x0, regularization, every,
                                                            cfg.target, cfg.max_steps))
        _, steps, norms = run_fn(x0)
        steps = int(steps)
        norms = np.asarray(norms[:steps + 1])
        t = np.arange(steps)
        hessians_before = np.ceil((t + 1) / every)  # Hessians formed up to and including step t
        per_step = costs["gradient"] + costs["step"]
        cumulative = np.concatenate(
            [[0.0], (t + 1) * per_step + hessians_before * (costs["hessian"] + costs["eigh"])])
        reached = bool(norms[-1] <= cfg.target)
        values = {f"{tag}_hessian_every": every, f"{tag}_steps": steps,
                  f"{tag}_hessians": int(hessians_before[-1]) if steps else 0,
                  f"{tag}_reached_target": reached,
                  f"{tag}_final_grad_norm": float(norms[-1]),
                  f"{tag}_flops_to_target": float(cumulative[-1]) if reached else float("inf")}
        summary.update(values)
        ctx.log(i + 1, **{k: v for k, v in values.items() if not isinstance(v, bool)})
        curves[f"{'cubic Newton (m = 1)' if every == 1 else f'lazy (m = d = {d})'}"] = (
            np.maximum(cumulative, 1.0), norms)
    both = summary["full_reached_target"] and summary["lazy_reached_target"]
    summary["both_reached_target"] = float(both)
    summary["lazy_over_full_flops"] = (summary["lazy_flops_to_target"]
                                       / summary["full_flops_to_target"]) if both else float("inf")
    ctx.summary(**summary)
    fig = plots.lines(curves, xlabel="arithmetic operations (flops, counted)",
                      ylabel="||grad f(x_t)||", logx=True, logy=True,
                      title=f"logistic regression, d = {d}, n = {n}")
    fig.axes[0].axhline(cfg.target, color="k", lw=0.8, ls="--")
    ctx.figure("lazy_newton_rate", fig)
