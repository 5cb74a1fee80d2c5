r"""Inverse p-th roots of symmetric positive semi-definite matrices, ``(A + eps I)^{-1/p}``.

Shampoo preconditions with ``L^{-1/4} G R^{-1/4}`` ("Shampoo: Preconditioned Stochastic Tensor
Optimization", arXiv:1802.09568; "Scalable Second Order Optimization for Deep Learning",
arXiv:2002.09018). Two ways to compute the root, selectable:

* ``"newton"``: the coupled Newton iteration of the second paper (Algorithm 3 / section 3.1), as in
  google-research/precondition ``precondition/distributed_shampoo.py`` (``matrix_inverse_pth_root``):
  with ``A_eps = A + eps I`` and ``z = (1 + p) / (2 ||A_eps||_F)``,
  ``M_0 = z A_eps``, ``H_0 = z^{1/p} I``, and
  ``T_k = ((p + 1) I - M_k) / p``, ``M_{k+1} = T_k^p M_k``, ``H_{k+1} = H_k T_k``,
  stopping when ``max |M_k - I| <= error_tolerance``, after ``max_iterations``, or when the error grew by
  more than 1.2x (then the previous ``H`` is returned). ``H_k -> A_eps^{-1/p}``; only matmuls, so it
  runs well on accelerators.
* ``"eigh"``: ``V diag((max(lambda, 0) + eps)^{-1/p}) V^T`` from ``jnp.linalg.eigh`` (exact, slower on
  accelerators for large blocks).

The ridge is relative by default, ``eps = epsilon * lambda_max(A)`` as in the reference
(``relative_matrix_epsilon=True``; ``lambda_max`` by its ``power_iteration``, or exactly from eigh): an
absolute ridge leaves the float32 Newton iteration a condition number it cannot handle on the
rank-deficient statistics ``G G^T`` of a wide block.

Both return ``(root, error)``: ``error`` is ``max |M - I|`` for Newton (how far the iteration is from
convergence) and ``0`` for eigh; a non-finite input gives a non-finite root or error, which Shampoo
uses to keep its previous preconditioner.
"""

from __future__ import annotations

from typing import Literal

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from .. import _common

__all__ = ["inverse_pth_root", "max_eigenvalue", "ROOT_METHODS"]

ROOT_METHODS = ("newton", "eigh")


def max_eigenvalue(matrix, iterations: int = 100, error_tolerance: float = 1e-6):
    """The largest eigenvalue of the symmetric PSD ``matrix`` by power iteration, as the reference's
    ``power_iteration``: a fixed start vector, at most ``iterations`` steps, stopping when the Rayleigh
    quotient changes by at most ``error_tolerance``."""
    n = matrix.shape[-1]
    hi = jax.lax.Precision.HIGHEST
    v0 = jnp.cos(jnp.arange(n, dtype=matrix.dtype) * 1.7 + 0.3)  # deterministic, not orthogonal to much

    def cond(state):
        i, _, _, changing = state
        return (i < iterations) & changing

    def body(state):
        i, v, s, _ = state
        v = v / jnp.maximum(jnp.linalg.norm(v), 1e-30)
        mv = jnp.matmul(matrix, v, precision=hi)
        s_new = jnp.dot(v, mv, precision=hi)
        return i + 1, mv, s_new, jnp.abs(s_new - s) > error_tolerance

    _, _, s, _ = jax.lax.while_loop(cond, body, (0, v0, jnp.zeros((), matrix.dtype), jnp.array(True)))
    return s


def _newton(matrix, p: int, ridge_epsilon, max_iterations: int, error_tolerance: float):
    n = matrix.shape[-1]
    identity = jnp.eye(n, dtype=matrix.dtype)
    damped = matrix + ridge_epsilon * identity
    z = (1.0 + p) / (2.0 * jnp.linalg.norm(damped))
    m0 = z * damped
    h0 = identity * z ** (1.0 / p)
    hi = jax.lax.Precision.HIGHEST

    def cond(state):
        i, _, _, _, error, improving = state
        return (i < max_iterations) & (error > error_tolerance) & improving

    def body(state):
        i, m, h, _, error, _ = state
        t = ((p + 1.0) * identity - m) / p
        new_m = jnp.matmul(jnp.linalg.matrix_power(t, p), m, precision=hi)
        new_h = jnp.matmul(h, t, precision=hi)
        new_error = jnp.max(jnp.abs(new_m - identity))
        # the error may rise for an iteration before it falls; more than 1.2x means divergence
        return i + 1, new_m, new_h, h, new_error, new_error < 1.2 * error

    error0 = jnp.max(jnp.abs(m0 - identity))
    _, m, h, previous_h, _, improving = jax.lax.while_loop(
        cond, body, (0, m0, h0, h0, error0, jnp.array(True)))
    root = jnp.where(improving, h, previous_h)
    return root, jnp.max(jnp.abs(m - identity))


def _eigh(matrix, p: int, ridge_epsilon, relative: bool):
    eigenvalues, vectors = jnp.linalg.eigh(matrix)
    if relative:
        ridge_epsilon = ridge_epsilon * jnp.maximum(eigenvalues[-1], 1e-16)
    scale = (jnp.maximum(eigenvalues, 0.0) + ridge_epsilon) ** (-1.0 / p)
    root = (vectors * scale[None, :]) @ vectors.T
    return root, jnp.zeros((), matrix.dtype)


def inverse_pth_root(matrix: Float[Array, "n n"], p: int, *, ridge_epsilon=1e-6,
                     relative_epsilon: bool = True,
                     method: Literal["newton", "eigh"] = "newton", max_iterations: int = 100,
                     error_tolerance: float = 1e-6):
    """``(matrix + eps I)^{-1/p}`` of a symmetric PSD ``matrix`` and the method's error, with
    ``eps = ridge_epsilon * max(lambda_max(matrix), 1e-16)`` (``relative_epsilon``) or ``ridge_epsilon``.

    >>> root, _ = inverse_pth_root(jnp.diag(jnp.array([16.0, 1.0])), 4, ridge_epsilon=0.0)
    >>> [round(float(x), 4) for x in jnp.diag(root)]
    [0.5, 1.0]
    """
    p = _common.check_int("p", p)
    _common.check_choice("method", method, ROOT_METHODS)
    _common.check_nonnegative("ridge_epsilon", ridge_epsilon)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"inverse_pth_root: matrix must be square, got shape {matrix.shape}")
    if method == "eigh":
        return _eigh(matrix, p, ridge_epsilon, relative_epsilon)
    if relative_epsilon:
        ridge_epsilon = ridge_epsilon * jnp.maximum(max_eigenvalue(matrix), 1e-16)
    if matrix.shape[0] == 1:
        return (matrix + ridge_epsilon) ** (-1.0 / p), jnp.zeros((), matrix.dtype)
    return _newton(matrix, p, ridge_epsilon, max_iterations, error_tolerance)
