r"""Mirror Sinkhorn: mirror descent on the transport polytope with Sinkhorn projections.

"Mirror Sinkhorn: Fast Online Optimization on Transport Polytopes" (Ballu, Berthet; ICML 2023,
arXiv:2211.10420). To minimise a convex ``f`` over ``U(a, b) = {P >= 0: P 1 = a, P^T 1 = b}``:

    gamma_1 = a b^T;   for t = 1 .. T:
        gamma' = gamma_t * exp(-eta_t grad f(gamma_t))              (entropic mirror step)
        gamma_{t+1} = diag(a / gamma' 1) gamma'      (t even)       (alternate one Sinkhorn half-step:
        gamma_{t+1} = gamma' diag(b / gamma'^T 1)    (t odd)         rows to a, columns to b)
    output the Cesaro average  gamma_bar_T = (1/T) sum_{t<=T} gamma_t,

with ``eta_t = step_scale * sqrt(delta / t) / B``, ``B`` a bound on ``||grad f||_inf`` and
``delta = ||log a||_inf + ||log b||_inf``. For the linear objective ``f = <C, .>`` (the default) there is
no entropic bias: gamma_bar_T tends to an exact OT plan. ``grad f`` may also be an online / stochastic
oracle ``gradient(t, gamma)`` (e.g. noisy costs C_t = C + noise).

Everything runs in the log domain (``log gamma`` and the normalisations are log-sum-exps), so it
jit-compiles and does not underflow; the running sum for the average is kept in the linear domain
(its entries are averages of probabilities). Iteration runs on the shared driver; the error, every
``inner_iterations`` steps, is the marginal violation ``||gamma_bar 1 - a||_1 + ||gamma_bar^T 1 - b||_1``
of the average.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable, Optional

import jax
import jax.numpy as jnp
from ott.problems.linear import linear_problem

import numpy as np

from .. import _loop
from .output import (OTResult, compute_dtype, is_concrete, invalid_input, raise_if_failed, static_field,
                     validate_problem)

__all__ = ["MirrorSinkhorn", "MirrorSinkhornOutput"]

_static = static_field


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class MirrorSinkhornOutput(OTResult):
    """Result of :class:`MirrorSinkhorn` (``cost = <C, gamma_bar>``, marginals: :class:`OTResult`).

    Attributes (besides ``errors`` -- the marginal violation of the average per block --, ``n_iters``,
    ``status``, ``ot_prob``):
      plan: the Cesaro average plan gamma_bar_T (the solution), also ``matrix``.
      last_matrix: the last iterate gamma_T.
    """

    plan: jax.Array = None
    last_matrix: jax.Array = None

    @property
    def matrix(self) -> jax.Array:
        return self.plan


@functools.partial(jax.tree_util.register_dataclass)
@dataclasses.dataclass(frozen=True)
class MirrorSinkhorn:
    r"""Mirror Sinkhorn solver (see the module docstring).

    Args:
      threshold: stop when the marginal violation of the average is below it (default 0: run
        ``max_iterations`` steps, the usual use since the objective gap is what converges slowly).
      step_scale: multiplies the theoretical step ``sqrt(delta / t) / B`` (a pytree child).
      gradient_bound: B; ``None`` uses ``||grad f(a b^T)||_inf`` (= max C for the linear objective).
      max_iterations, min_iterations, inner_iterations: loop bounds.

    Call it as ``solver(prob)`` (objective ``<C, P>``), ``solver(prob, objective=fn)`` for a convex
    ``fn(P) -> scalar`` (differentiated with ``jax.grad``), or ``solver(prob, gradient=oracle)`` with
    ``oracle(t, P) -> (n, m) array`` (online / stochastic gradients; ``t`` is the int32 step, from 1).

    Example:
      >>> import jax
      >>> from jaxopt_lab.ot.problems import point_cloud_problem
      >>> prob = point_cloud_problem(jax.random.PRNGKey(0), 20)
      >>> out = MirrorSinkhorn(max_iterations=500)(prob)
      >>> out.matrix.shape
      (20, 20)
    """

    threshold: float = 0.0
    step_scale: float = 1.0
    max_iterations: int = _static(1000)
    min_iterations: int = _static(0)
    inner_iterations: int = _static(10)
    gradient_bound: Optional[float] = _static(None)
    throw: bool = _static(False)

    def __post_init__(self):
        if isinstance(self.threshold, (int, float)) and not self.threshold >= 0:
            raise ValueError(f"threshold must be >= 0, got {self.threshold!r}")
        if isinstance(self.step_scale, (int, float)) and not self.step_scale > 0:
            raise ValueError(f"step_scale must be > 0, got {self.step_scale!r}")
        for name in ("max_iterations", "inner_iterations"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be an int >= 1, got {v!r}")
        if self.gradient_bound is not None and not self.gradient_bound > 0:
            raise ValueError(f"gradient_bound must be > 0 or None, got {self.gradient_bound!r}")

    def __call__(self, prob: linear_problem.LinearProblem, *, objective: Optional[Callable] = None,
                 gradient: Optional[Callable] = None) -> MirrorSinkhornOutput:
        validate_problem(prob)
        if not prob.is_balanced:
            raise ValueError(f"MirrorSinkhorn works on the transport polytope (tau_a = tau_b = 1), got "
                             f"tau_a={prob.tau_a}, tau_b={prob.tau_b}")
        if objective is not None and gradient is not None:
            raise ValueError("pass at most one of objective (P -> scalar) and gradient ((t, P) -> array)")
        for name in ("a", "b"):
            w = getattr(prob, name)
            if is_concrete(w) and not np.all(np.asarray(w) > 0):
                raise ValueError(f"{name} must be > 0 everywhere for MirrorSinkhorn (delta uses ||log {name}||_inf)")
        return raise_if_failed(_solve(self, prob, objective, gradient), self.throw, "MirrorSinkhorn")


@functools.partial(jax.jit, static_argnums=(2, 3))
def _solve(solver: MirrorSinkhorn, prob, objective, gradient) -> MirrorSinkhornOutput:
    prob = compute_dtype(prob)
    cost = jnp.where(invalid_input(prob), jnp.nan, prob.geom.cost_matrix)
    dtype = cost.dtype
    a, b = prob.a, prob.b
    log_a, log_b = jnp.log(a), jnp.log(b)

    if gradient is None:
        if objective is None:
            def gradient(t, p):
                return cost
        else:
            grad_obj = jax.grad(objective)

            def gradient(t, p):
                return grad_obj(p)

    log_p0 = log_a[:, None] + log_b[None, :]
    if solver.gradient_bound is None:
        bound = jnp.max(jnp.abs(gradient(jnp.int32(1), jnp.exp(log_p0))))
    else:
        bound = jnp.asarray(solver.gradient_bound, dtype)
    delta = jnp.max(jnp.abs(log_a)) + jnp.max(jnp.abs(log_b))

    def step(it, state):
        log_p, total = state
        t = it + 1
        p = jnp.exp(log_p)
        total = total + p  # the average covers gamma_1 .. gamma_T
        eta = solver.step_scale * jnp.sqrt(delta / t) / bound
        log_q = log_p - eta * gradient(t, p)
        rows = lambda q: q + (log_a - jax.nn.logsumexp(q, axis=1))[:, None]  # noqa: E731
        cols = lambda q: q + (log_b - jax.nn.logsumexp(q, axis=0))[None, :]  # noqa: E731
        return jax.lax.cond(t % 2 == 0, rows, cols, log_q), total

    def average(state, n_iters):
        return state[1] / jnp.maximum(n_iters, 1).astype(dtype)

    def error(state):
        # the running sum's scale is its total mass: normalising by it avoids carrying the count
        total = state[1]
        mean = total / jnp.sum(total) * jnp.sum(a)
        return jnp.sum(jnp.abs(mean.sum(1) - a)) + jnp.sum(jnp.abs(mean.sum(0) - b))

    out = _loop.iterate(step, error, (log_p0.astype(dtype), jnp.zeros_like(cost)), threshold=solver.threshold,
                        max_iterations=solver.max_iterations, min_iterations=solver.min_iterations,
                        inner_iterations=solver.inner_iterations)
    return MirrorSinkhornOutput(errors=out.errors, n_iters=out.n_iters, status=out.status, ot_prob=prob,
                                plan=average(out.state, out.n_iters), last_matrix=jnp.exp(out.state[0]))
