"""Curvature of a loss at a point: Hessian-vector products, the top Hessian eigenvalue, Lanczos.

The sharpness-aware optimizers are judged by the largest eigenvalue ``lambda_max`` of the Hessian of
the training loss (the "sharpness"). It is found matrix-free by power iteration on Hessian-vector
products ``H v = d/dt grad L(w + t v)|_{t=0}`` (forward-over-reverse, one ``jvp`` of ``grad``: about
the cost of two gradients, never the ``d x d`` matrix), run by the shared fixed-point driver
(:func:`jaxopt_lab._loop.iterate`), so it jits and vmaps.

Power iteration converges to the eigenvalue of largest *magnitude*; at (or near) a minimum, and for
the nets trained here, that is the top positive eigenvalue. :func:`lanczos` gives the top ``k``
eigenpairs of any symmetric operator from as many products (FOSI uses it on Hessian-vector products).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Float, PRNGKeyArray

from ..._loop import iterate

__all__ = ["hessian_vector_product", "TopEigenOutput", "top_hessian_eigenvalue", "LanczosOutput",
           "lanczos"]

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


class LanczosOutput(NamedTuple):
    """Result of :func:`lanczos`: the ``k`` largest Ritz values (ascending) and their unit Ritz vectors
    as rows of a ``(k, d)`` matrix over the flattened parameters (``jax.flatten_util.ravel_pytree``
    order); ``tridiagonal`` is the ``order x order`` Lanczos matrix ``T = V^T H V``."""

    eigenvalues: Float[Array, " k"]
    eigenvectors: Float[Array, "k d"]
    tridiagonal: Float[Array, "m m"]


def lanczos(hvp: Callable[[Array], Array], dim: int, key: PRNGKeyArray, *, order: int,
            k: int, dtype=jnp.float32) -> LanczosOutput:
    """Top-``k`` eigenpairs of a symmetric operator ``hvp`` on ``R^dim`` by ``order`` Lanczos steps.

    Lanczos with full re-orthogonalisation (twice, "twice is enough"), as in the FOSI authors' code
    (hsivan/fosi ``fosi/jax_optim/lanczos_algorithm.py``): ``v_0`` Gaussian and unit;
    ``w = H v_i``, ``alpha_i = w . v_i``, ``w <- w - V (V^T w)`` (twice), ``beta_i = ||w||``,
    ``v_{i+1} = w / beta_i``; then ``T = V^T H V`` (tridiagonal) is diagonalised and the Ritz vectors
    are ``V^T y``. One ``hvp`` per step (a ``jax.jvp`` of ``grad``: never the dense Hessian); jitted
    ``lax.fori_loop``. ``order`` is capped at ``dim`` and ``k`` at ``order``; an invariant subspace
    found early (``beta = 0``) ends the recursion with zero vectors (zero rows of ``T``).

    >>> out = lanczos(lambda v: jnp.array([1.0, 2.0, 5.0]) * v, 3, jax.random.PRNGKey(0), order=3, k=2)
    >>> [round(float(x), 3) for x in out.eigenvalues]
    [2.0, 5.0]
    """
    for name, value in (("order", order), ("k", k), ("dim", dim)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"lanczos: {name} must be an int >= 1, got {name}={value!r}")
    order = min(order, dim)
    k = min(k, order)
    v0 = jax.random.normal(key, (dim,), dtype)
    vecs = jnp.zeros((order, dim), dtype).at[0].set(v0 / jnp.linalg.norm(v0))
    tridiagonal = jnp.zeros((order, order), dtype)
    hi = jax.lax.Precision.HIGHEST

    def step(i, carry):
        vecs, tridiagonal = carry
        v = vecs[i]
        w = hvp(v).astype(dtype)
        alpha = jnp.dot(w, v, precision=hi)
        tridiagonal = tridiagonal.at[i, i].set(alpha)
        w = w - jnp.dot(jnp.dot(vecs, w, precision=hi), vecs, precision=hi)
        w = w - jnp.dot(jnp.dot(vecs, w, precision=hi), vecs, precision=hi)
        beta = jnp.linalg.norm(w)
        ok = (beta > 1e-6 * jnp.maximum(jnp.abs(alpha), 1e-30)) & (i + 1 < order)
        nxt = jnp.minimum(i + 1, order - 1)
        beta = jnp.where(ok, beta, 0.0)
        tridiagonal = tridiagonal.at[i, nxt].set(jnp.where(ok, beta, tridiagonal[i, nxt]))
        tridiagonal = tridiagonal.at[nxt, i].set(jnp.where(ok, beta, tridiagonal[nxt, i]))
        vecs = vecs.at[nxt].set(jnp.where(ok, w / jnp.where(ok, beta, 1.0), vecs[nxt]))
        return vecs, tridiagonal

    vecs, tridiagonal = jax.lax.fori_loop(0, order, step, (vecs, tridiagonal))
    values, vectors = jnp.linalg.eigh(tridiagonal)
    ritz = jnp.matmul(vectors.T[order - k:], vecs, precision=hi)
    return LanczosOutput(values[order - k:], ritz, tridiagonal)
