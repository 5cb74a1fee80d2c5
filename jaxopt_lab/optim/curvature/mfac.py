r"""M-FAC: the inverse of a sliding-window empirical Fisher applied matrix-free.

"Efficient Matrix-Free Approximations of Second-Order Information, with Applications to Pruning and
Optimization" (Frantar, Kurtic, Alistarh), arXiv:2107.03356; official code IST-DASLab/M-FAC
``optim.py`` (``HInvFastUpMulti``, ``MFAC``).

With the last ``m`` gradients as rows of ``G`` (``m x d``; a ring buffer, zero rows until it fills, as
in the official code), the damped empirical Fisher is ``F = lambda I + G^T G / m`` and the step is

    u = F^{-1} g = (g - G^T (m lambda I + G G^T)^{-1} G g) / lambda,

the closed form of the paper's recursion (``m`` Woodbury rank-one updates of ``lambda^{-1} I``; the
official ``setup`` factorises ``m I + G G^T / lambda`` by an unpivoted LU to get the same coefficients —
for this SPD matrix that is its Cholesky factorisation, which we use). Per step: one row of the
``m x m`` Gram matrix ``G G^T`` (``O(d m)``), one ``m x m`` Cholesky solve (``O(m^3)``, independent
of ``d``) and ``G^T c`` (``O(d m)``); memory ``m d``. Momentum as in the official ``MFAC.step``:
``v <- mu v + (1 - mu) u``. The gradients of all leaves form one vector ``g`` (one Fisher over the model).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from ..registry import register
from .. import _common

__all__ = ["MFACState", "scale_by_mfac", "mfac", "mfac_state_bytes", "inverse_fisher_product"]

_NAME = "mfac"


class MFACState(NamedTuple):
    """``gradients``: like params with a leading window axis ``m``; ``gram``: ``G G^T`` (``m x m``)."""

    count: jax.Array
    gradients: Any
    gram: jax.Array
    momentum: Any


def _dots(stacked, tree) -> jax.Array:
    """``G x`` for ``G`` the window (leading axis) and ``x`` a tree like one row."""
    return sum(jnp.tensordot(s, x, axes=x.ndim, precision=jax.lax.Precision.HIGHEST)
               for s, x in zip(jax.tree.leaves(stacked), jax.tree.leaves(tree)))


def inverse_fisher_product(gradients, gram: jax.Array, vector, damping, dots=None):
    """``(damping I + G^T G / m)^{-1} vector`` with ``G`` the window ``gradients`` (leading axis ``m``)
    and ``gram = G G^T``; ``dots = G vector`` if already known."""
    m = gram.shape[0]
    dots = _dots(gradients, vector) if dots is None else dots
    system = gram + m * damping * jnp.eye(m, dtype=gram.dtype)
    coefficients = jax.scipy.linalg.cho_solve(jax.scipy.linalg.cho_factor(system), dots)
    return jax.tree.map(
        lambda s, x: (x - jnp.tensordot(coefficients, s, axes=1,
                                        precision=jax.lax.Precision.HIGHEST)) / damping,
        gradients, vector)


def scale_by_mfac(window_size: int = 32, damping: float = 1e-1, momentum: float = 0.0
                  ) -> optax.GradientTransformationExtraArgs:
    r"""M-FAC's direction ``F^{-1} g`` over a window of ``window_size`` gradients (module docstring).

    Args:
      window_size: ``m``, gradients kept (>= 1).
      damping: ``lambda`` > 0 of ``F = lambda I + G^T G / m``.
      momentum: ``mu`` in ``[0, 1)`` of ``v <- mu v + (1 - mu) F^{-1} g``.

    >>> tx = scale_by_mfac(window_size=4, damping=1e-2)
    >>> params = {"w": jnp.ones(3)}
    >>> u, state = tx.update({"w": jnp.array([1.0, 0.0, 0.0])}, tx.init(params))
    >>> round(float(u["w"][0]), 3)  # 1 / (lambda + |g|^2 / m) = 1 / 0.26
    3.846
    """
    _common.check_int("window_size", window_size)
    _common.check_positive("damping", damping)
    _common.check_beta("momentum", momentum)

    def init(params):
        return MFACState(
            jnp.zeros([], jnp.int32),
            jax.tree.map(lambda x: jnp.zeros((window_size, *x.shape), jnp.float32), params),
            jnp.zeros((window_size, window_size), jnp.float32),
            jax.tree.map(lambda x: jnp.zeros(x.shape, jnp.float32), params))

    def update(updates, state, params=None, **extra):
        del params, extra
        g = jax.tree.map(lambda x: x.astype(jnp.float32), updates)
        slot = state.count % window_size
        gradients = jax.tree.map(lambda s, x: s.at[slot].set(x), state.gradients, g)
        dots = _dots(gradients, g)
        gram = state.gram.at[slot, :].set(dots).at[:, slot].set(dots)
        direction = inverse_fisher_product(gradients, gram, g, damping, dots)
        velocity = jax.tree.map(lambda v, u: momentum * v + (1.0 - momentum) * u,
                                state.momentum, direction)
        new_updates = jax.tree.map(lambda v, x: v.astype(x.dtype), velocity, updates)
        return new_updates, MFACState(state.count + 1, gradients, gram, velocity)

    return optax.GradientTransformationExtraArgs(init, update)


@register(_NAME, family="curvature", extra_args=(),
          paper="Efficient Matrix-Free Approximations of Second-Order Information, with Applications "
                "to Pruning and Optimization, arXiv:2107.03356")
def mfac(learning_rate: optax.ScalarOrSchedule = 1e-3, window_size: int = 32,
         damping: float = 1e-1, momentum: float = 0.0, weight_decay: float = 0.0
         ) -> optax.GradientTransformationExtraArgs:
    """M-FAC: ``chain(scale_by_mfac(...), add_decayed_weights(weight_decay),
    scale_by_learning_rate(learning_rate))``. (The official optimizer adds the decay to the gradient
    before preconditioning; here it is decoupled, as for every alias of this package.)

    >>> tx = mfac(1e-2, window_size=8)
    >>> state = tx.init({"w": jnp.ones(3)})
    """
    return _common.alias(scale_by_mfac(window_size, damping, momentum),
                                      learning_rate, weight_decay)


def mfac_state_bytes(params, window_size: int = 32) -> int:
    """Closed form of ``scale_by_mfac``'s state in bytes (float32): ``(m + 1) d + m^2`` floats and the
    int32 count, for ``d`` the number of parameters."""
    d = sum(x.size for x in jax.tree.leaves(params))
    return 4 * ((window_size + 1) * d + window_size ** 2) + 4
