r"""Grams: Adam's magnitude with the current gradient's sign.

"Grams: Gradient Descent with Adaptive Momentum Scaling" (Cao et al., 2024), arXiv:2412.17107.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from ._common import adam_direction, alias, check_beta, check_float_params, check_nonnegative, moment
from .registry import register

__all__ = ["scale_by_grams", "grams"]


class ScaleByGramsState(NamedTuple):
    count: jax.Array
    mu: optax.Updates
    nu: optax.Updates


def scale_by_grams(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
                   eps_before_correction: bool = False) -> optax.GradientTransformationExtraArgs:
    r"""Grams' direction: the gradient's sign with Adam's magnitude (Algorithm 1 of the paper; the
    authors' ``grams-pytorch`` computes the same)::

        m <- b1 m + (1-b1) g;   v <- b2 v + (1-b2) g^2
        u = sign(g) * |m_hat / (sqrt(v_hat) + eps)|,   m_hat = m/(1-b1^t),  v_hat = v/(1-b2^t)

    (AdamW-style decoupled weight decay is added by the alias). ``eps_before_correction=True`` is the
    authors' code (Gunale0926/Grams ``grams/src/grams.py``), which adds ``eps`` to ``sqrt(v)`` before
    the bias correction (and defaults to ``eps=1e-6``); the default follows the paper's Algorithm 1. The update direction comes from the
    current gradient; momentum only sets the magnitude. ``sign(0) = 0``: a coordinate whose gradient is
    exactly zero does not move.

    >>> import jax.numpy as jnp
    >>> tx = scale_by_grams()
    >>> s = tx.init(jnp.zeros(2))
    >>> u, s = tx.update(jnp.array([1.0, 1.0]), s)
    >>> u, s = tx.update(jnp.array([-1.0, 0.0]), s)  # m_hat > 0 but the gradient's sign wins
    >>> [bool(x < 0) for x in u], float(u[1])
    ([True, False], 0.0)
    """
    check_beta("b1", b1)
    check_beta("b2", b2)
    check_nonnegative("eps", eps)

    def init(params):
        check_float_params("grams", params)
        zeros = optax.tree.zeros_like(params)
        return ScaleByGramsState(jnp.zeros([], jnp.int32), zeros, zeros)

    def update(updates, state, params=None, **extra):
        del params, extra
        count = optax.safe_increment(state.count)
        mu = moment(updates, state.mu, b1, 1)
        nu = moment(updates, state.nu, b2, 2)
        out = jax.tree.map(lambda g, u: jnp.sign(g) * jnp.abs(u), updates,
                           adam_direction(mu, nu, b1, b2, count, eps, eps_before_correction))
        return optax.tree.cast_like(out, updates), ScaleByGramsState(count, mu, nu)

    return optax.GradientTransformationExtraArgs(init, update)


@register("grams", family="adaptive",
          paper="Grams: Gradient Descent with Adaptive Momentum Scaling, arXiv:2412.17107")
def grams(learning_rate: optax.ScalarOrSchedule = 1e-3, b1: float = 0.9, b2: float = 0.999,
          eps: float = 1e-8, weight_decay: float = 0.0,
          eps_before_correction: bool = False) -> optax.GradientTransformationExtraArgs:
    r"""Grams: ``chain(scale_by_grams, add_decayed_weights(weight_decay), scale_by_learning_rate)``.

    Defaults of the official grams-pytorch README (``lr=1e-3, weight_decay=0``).

    >>> import jax.numpy as jnp
    >>> tx = grams(0.1)
    >>> u, _ = tx.update(jnp.array([2.0, -3.0]), tx.init(jnp.zeros(2)))
    >>> [round(float(x), 4) for x in u]
    [-0.1, 0.1]
    """
    return alias(scale_by_grams(b1, b2, eps, eps_before_correction), learning_rate, weight_decay)
