"""Curvature of a loss at a point: Hessian-vector products and the top Hessian eigenvalue.

The sharpness-aware optimizers are judged by the largest eigenvalue ``lambda_max`` of the Hessian of
the training loss (the "sharpness"). It is found matrix-free by power iteration on Hessian-vector
products ``H v = d/dt grad L(w + t v)|_{t=0}`` (forward-over-reverse, one ``jvp`` of ``grad``: about
the cost of two gradients, never the ``d x d`` matrix), run by the shared fixed-point driver
(:func:`jaxopt_lab._loop.iterate`), so it jits and vmaps.

Power iteration converges to the eigenvalue of largest *magnitude*; at (or near) a minimum, and for
the nets trained here, that is the top positive eigenvalue.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Float, PRNGKeyArray

from ..._loop import iterate

__all__ = ["hessian_vector_product", "TopEigenOutput", "top_hessian_eigenvalue"]

Params = Any


def hessian_vector_product(loss_fn: Callable[[Params], Array], params: Params,
                           vector: Params) -> Params:
    """``H(params) @ vector`` for ``H`` the Hessian of the scalar ``loss_fn`` (forward-over-reverse).

    >>> hvp = hessian_vector_product(lambda w: 0.5 * 3.0 * jnp.sum(w ** 2), jnp.ones(2), jnp.ones(2))
    >>> hvp.tolist()
    [3.0, 3.0]
    """
    return jax.jvp(jax.grad(loss_fn), (params,), (vector,))[1]


class TopEigenOutput(NamedTuple):
    """Result of :func:`top_hessian_eigenvalue`.

    Attributes:
      eigenvalue: the Rayleigh quotient ``v^T H v`` of the last iterate (``lambda_max``).
      eigenvector: the unit-norm iterate ``v`` (a pytree like ``params``).
      errors: the driver's per-block trace of ``|lambda_k - lambda_{k-1}| / |lambda_k|``.
      n_iters: power iterations taken.
      converged: the relative change fell below ``threshold``.
    """

    eigenvalue: Float[Array, ""]
    eigenvector: Params
    errors: Array
    n_iters: Array
    converged: Array


def _unit(tree: Params) -> Params:
    norm = optax.tree.norm(tree)
    safe = jnp.where(norm > 0, norm, 1.0)
    return jax.tree.map(lambda x: x / safe.astype(x.dtype), tree)


def top_hessian_eigenvalue(loss_fn: Callable[[Params], Array], params: Params, key: PRNGKeyArray, *,
                           max_iterations: int = 100, min_iterations: int = 20,
                           threshold: float = 1e-4, inner_iterations: int = 5) -> TopEigenOutput:
    """Largest-magnitude eigenvalue of the Hessian of ``loss_fn`` at ``params`` by power iteration.

    ``v_{k+1} = H v_k / ||H v_k||`` from a Gaussian ``v_0``; ``lambda_k = v_k^T H v_k``. Stops when
    ``|lambda_k - lambda_{k-1}| <= threshold |lambda_k|`` after at least ``min_iterations`` steps
    (the power method needs ~20 steps on a fixed batch before its estimate is trustworthy), or after
    ``max_iterations``. The loss must be a deterministic function of ``params`` (fix the batch).

    >>> loss = lambda w: 0.5 * (1.0 * w[0] ** 2 + 4.0 * w[1] ** 2)
    >>> out = top_hessian_eigenvalue(loss, jnp.ones(2), jax.random.PRNGKey(0))
    >>> round(float(out.eigenvalue), 4)
    4.0
    """
    for name, value in (("max_iterations", max_iterations), ("inner_iterations", inner_iterations)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"top_hessian_eigenvalue: {name} must be an int >= 1, got {value!r}")
    leaves, treedef = jax.tree.flatten(params)
    keys = jax.random.split(key, len(leaves))
    v0 = _unit(treedef.unflatten([jax.random.normal(k, x.shape, x.dtype)
                                  for k, x in zip(keys, leaves)]))
    dtype = jnp.result_type(*leaves)

    def rayleigh(v, hv):
        return sum(jnp.vdot(a, b) for a, b in zip(jax.tree.leaves(v), jax.tree.leaves(hv)))

    def step(_, state):
        v, eigenvalue, _ = state
        hv = hessian_vector_product(loss_fn, params, v)
        return _unit(hv), rayleigh(v, hv).astype(dtype), eigenvalue

    def error(state):
        _, eigenvalue, previous = state
        return jnp.abs(eigenvalue - previous) / jnp.maximum(jnp.abs(eigenvalue), 1e-30)

    init = (v0, jnp.asarray(jnp.inf, dtype), jnp.asarray(0.0, dtype))
    out = iterate(step, error, init, threshold=threshold, max_iterations=max_iterations,
                  min_iterations=min(min_iterations, max_iterations),
                  inner_iterations=inner_iterations)
    v, eigenvalue, _ = out.state
    return TopEigenOutput(eigenvalue, v, out.errors, out.n_iters, out.converged)
