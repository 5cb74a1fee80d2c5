r"""Cubic-regularised Newton with lazy Hessians: one Hessian (and its eigendecomposition) per ``m`` steps.

"Second-order optimization with lazy Hessians" (Doikov, Chayti, Jaggi), arXiv:2212.00781, after Nesterov
and Polyak's cubic regularisation ("Cubic regularization of Newton method and its global performance").
With the Hessian ``H = Q diag(lambda) Q^T`` taken at the last snapshot ``x_pi(t)`` (``pi(t) = m floor(t/m)``)::

    h_t = argmin_h  <g_t, h> + 1/2 <H h, h> + M/6 ||h||^3 = -(H + M r/2 I)^{-1} g_t,   r = ||h_t||,

where ``r`` is the root of ``||(lambda + M r/2)^{-1} Q^T g|| = r`` on ``r > max(0, -2 lambda_min / M)``
(a decreasing function there; found by bisection in the eigenbasis, so each step costs
``O(d^2)`` after the ``O(d^3)`` factorisation, the paper's point). The dense Hessian is formed here — the
one method of this package that does — from ``d`` Hessian-vector products of ``grad_fn``
(``jax.jacfwd`` of it over the flattened params); it is meant for full-batch problems with ``d`` up to a
few thousand, as in the paper. (The "hard case" — ``g`` orthogonal to the bottom eigenvector of an
indefinite ``H`` — is not treated specially.)
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.flatten_util import ravel_pytree

from ..registry import register
from .. import _common
from . import _checks

__all__ = ["LazyCubicNewtonState", "cubic_regularized_step", "scale_by_lazy_cubic_newton",
           "lazy_cubic_newton"]

_NAME = "lazy_cubic_newton"


def cubic_regularized_step(eigenvalues, eigenvectors, g, regularization, *, iterations: int = 100):
    """``argmin_h <g, h> + <H h, h>/2 + M ||h||^3 / 6`` for ``H = Q diag(eigenvalues) Q^T`` (``Q`` =
    ``eigenvectors``, columns) and ``M = regularization > 0``; returns ``(h, ||h||)``.

    >>> h, r = cubic_regularized_step(jnp.array([2.0]), jnp.eye(1), jnp.array([4.0]), 0.0 + 1e-9)
    >>> round(float(h[0]), 3)  # M -> 0: the Newton step -g / lambda
    -2.0
    """
    gq = eigenvectors.T @ g
    m = jnp.asarray(regularization, g.dtype)
    low = jnp.maximum(0.0, -2.0 * eigenvalues[0] / m)
    high = low + jnp.sqrt(2.0 * jnp.linalg.norm(g) / m) + 1e-30

    def residual(r):  # decreasing in r on (low, inf)
        return jnp.linalg.norm(gq / (eigenvalues + 0.5 * m * r)) - r

    def bisect(_, bracket):
        lo, hi = bracket
        mid = 0.5 * (lo + hi)
        positive = residual(mid) > 0
        return jnp.where(positive, mid, lo), jnp.where(positive, hi, mid)

    lo, hi = jax.lax.fori_loop(0, iterations, bisect, (low, high))
    r = hi  # > low, so the shifted eigenvalues are positive
    h = -eigenvectors @ (gq / (eigenvalues + 0.5 * m * r))
    return h, jnp.linalg.norm(h)


class LazyCubicNewtonState(NamedTuple):
    """Eigendecomposition of the last snapshot's Hessian over the flattened params."""

    count: jax.Array
    eigenvalues: jax.Array
    eigenvectors: jax.Array


def scale_by_lazy_cubic_newton(regularization: float = 1.0, hessian_every: int = 1
                               ) -> optax.GradientTransformationExtraArgs:
    """The negated cubic-Newton step ``-h_t`` (so ``learning_rate = 1`` takes it exactly).

    Args:
      regularization: ``M > 0`` (the Hessian's Lipschitz constant times a factor; 6 m L in the theory).
      hessian_every: ``m >= 1``, steps between Hessians (``m = 1``: cubic Newton; the paper's best is
        ``m = d``).

    Reads ``grad_fn`` (the gradient of the full-batch loss) and params.

    >>> tx = scale_by_lazy_cubic_newton(regularization=1.0, hessian_every=2)
    >>> grad_fn = jax.grad(lambda w: jnp.sum(w ** 2))
    >>> w = jnp.ones(3)
    >>> u, _ = tx.update(grad_fn(w), tx.init(w), w, grad_fn=grad_fn)
    """
    _common.check_positive("regularization", regularization)
    _common.check_int("hessian_every", hessian_every)

    def init(params):
        flat, _ = ravel_pytree(params)
        dtype = jnp.promote_types(flat.dtype, jnp.float32)
        return LazyCubicNewtonState(jnp.zeros([], jnp.int32), jnp.zeros(flat.size, dtype),
                                    jnp.zeros((flat.size, flat.size), dtype))

    def update(updates, state, params=None, *, grad_fn=None, **extra):
        del extra
        _checks.need(_NAME, "grad_fn", grad_fn)
        _common.need_params(_NAME, params)
        flat_params, unravel = ravel_pytree(params)
        dtype = state.eigenvalues.dtype

        def factorize(_):
            flat_grad = lambda x: ravel_pytree(grad_fn(unravel(x)))[0]
            hessian = jax.jacfwd(flat_grad)(flat_params).astype(dtype)
            values, vectors = jnp.linalg.eigh(0.5 * (hessian + hessian.T))
            return values, vectors

        eigenvalues, eigenvectors = jax.lax.cond(
            state.count % hessian_every == 0, factorize,
            lambda _: (state.eigenvalues, state.eigenvectors), None)
        g, unravel_updates = ravel_pytree(updates)
        h, _ = cubic_regularized_step(eigenvalues, eigenvectors, g.astype(dtype), regularization)
        new = jax.tree.map(lambda a, x: a.astype(x.dtype), unravel_updates(-h), updates)
        return new, LazyCubicNewtonState(state.count + 1, eigenvalues, eigenvectors)

    return optax.GradientTransformationExtraArgs(init, update)


@register(_NAME, family="curvature", extra_args=("grad_fn",),
          paper="Second-order optimization with lazy Hessians, arXiv:2212.00781")
def lazy_cubic_newton(learning_rate: optax.ScalarOrSchedule = 1.0, regularization: float = 1.0,
                      hessian_every: int = 1) -> optax.GradientTransformationExtraArgs:
    """Lazy cubic Newton: ``chain(scale_by_lazy_cubic_newton(...), scale_by_learning_rate(lr))``;
    ``learning_rate = 1`` is the method of the paper.

    >>> tx = lazy_cubic_newton(regularization=10.0, hessian_every=5)
    """
    return _common.alias(scale_by_lazy_cubic_newton(regularization, hessian_every),
                         learning_rate)
