"""Metrics for matrix sensing runs: errors, spectra, imbalance, fitted convergence rates.

All functions are pure ``jax.numpy`` so they run inside a vmapped sweep trial. The rate fits take a
per-step error trace ``e_t`` (``t = 1..T``) and a window ``[start, stop)`` and fit by least squares,
keeping only steps whose error is finite and lies strictly between ``floor`` (the floating-point floor;
about 1e-13 in float64) and ``ceiling`` (to skip an initial phase):

* :func:`linear_rate`: ``log e_t ~ a + t log rho``; returns ``rho`` (per-step contraction, < 1 is linear
  convergence).
* :func:`power_law_exponent`: ``log e_t ~ a - p log t``; returns ``p`` (``e_t ~ t^-p``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

__all__ = [
    "relative_error", "imbalance", "singular_values", "linear_rate", "power_law_exponent",
    "log_slope", "iterations_to", "learning_times",
]


def relative_error(estimate: Float[Array, "n1 n2"], truth: Float[Array, "n1 n2"]) -> jax.Array:
    """``||estimate - M*||_F / ||M*||_F``."""
    return jnp.linalg.norm(estimate - truth) / jnp.linalg.norm(truth)


def imbalance(F: Float[Array, "n1 k"], G: Float[Array, "n2 k"]) -> jax.Array:
    """``||F^T F - G^T G||_F``: nearly conserved by small-step GD on ``F G^T`` (the conserved quantity of
    "How Over-Parameterization Slows Down Gradient Descent in Matrix Sensing" (arXiv:2310.01769))."""
    return jnp.linalg.norm(F.T @ F - G.T @ G)


def singular_values(F: Float[Array, "n1 k"], G=None) -> jax.Array:
    """Singular values of ``F G^T`` (of ``F F^T`` if G is None), descending, in O(n k^2)."""
    G = F if G is None else G
    _, R1 = jnp.linalg.qr(F)
    _, R2 = jnp.linalg.qr(G)
    return jnp.linalg.svd(R1 @ R2.T, compute_uv=False)


def _window(errors, start, stop, floor, ceiling):
    errors = jnp.asarray(errors)
    t = jnp.arange(1, errors.shape[-1] + 1, dtype=errors.dtype)
    stop = errors.shape[-1] if stop is None else stop
    inside = (t > start) & (t <= stop)
    ok = inside & jnp.isfinite(errors) & (errors > floor) & (errors < ceiling)
    return t, jnp.log(jnp.where(ok, errors, 1.0)), ok


def log_slope(x, y, weights) -> jax.Array:
    """Least-squares slope of ``y`` on ``x`` over the points with ``weights`` (NaN with < 2 points)."""
    w = weights.astype(x.dtype)
    n = jnp.sum(w)
    xm = jnp.sum(w * x) / n
    ym = jnp.sum(w * y) / n
    slope = jnp.sum(w * (x - xm) * (y - ym)) / jnp.sum(w * (x - xm) ** 2)
    return jnp.where(n >= 2, slope, jnp.nan)


def linear_rate(errors: Float[Array, " T"], start: int = 0, stop=None, floor=0.0,
                ceiling=jnp.inf) -> jax.Array:
    """Per-step contraction ``rho`` from ``log e_t ~ a + t log rho`` over steps ``start < t <= stop``."""
    t, log_e, ok = _window(errors, start, stop, floor, ceiling)
    return jnp.exp(log_slope(t, log_e, ok))


def power_law_exponent(errors: Float[Array, " T"], start: int = 0, stop=None, floor=0.0,
                       ceiling=jnp.inf) -> jax.Array:
    """Exponent ``p`` of ``e_t ~ C t^-p``: minus the log-log slope over ``start < t <= stop``."""
    t, log_e, ok = _window(errors, start, stop, floor, ceiling)
    return -log_slope(jnp.log(t), log_e, ok)


def iterations_to(errors: Float[Array, " T"], threshold) -> jax.Array:
    """First step count ``t`` with ``e_t < threshold``; ``inf`` if the trace never gets there."""
    below = jnp.asarray(errors) < threshold
    return jnp.where(jnp.any(below), jnp.argmax(below, axis=-1) + 1.0, jnp.inf)


def learning_times(spectrum: Float[Array, "T k"], targets: Float[Array, " r"],
                   fraction: float = 0.5) -> jax.Array:
    """For each target ``sigma_i``, the first step at which the i-th singular value exceeds
    ``fraction * sigma_i`` (``inf`` if never): the steps of the incremental-learning staircase."""
    spectrum = jnp.asarray(spectrum)
    r = targets.shape[0]
    reached = spectrum[:, :r] >= fraction * targets[None, :]
    return jnp.where(jnp.any(reached, axis=0), jnp.argmax(reached, axis=0) + 1.0, jnp.inf)
