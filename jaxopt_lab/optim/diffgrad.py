r"""diffGrad: Adam's step scaled by a friction coefficient of the gradient change.

"diffGrad: An Optimization Method for Convolutional Neural Networks" (Dubey et al., 2019),
arXiv:1909.11015; the authors' code is shivram1987/diffGrad ``diffGrad_v2.py``.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from ._common import (adam_direction, alias, check_beta, check_float_params, check_nonnegative,
                      moment)
from .registry import register

__all__ = ["scale_by_diffgrad", "diffgrad"]


class ScaleByDiffGradState(NamedTuple):
    count: jax.Array
    mu: optax.Updates
    nu: optax.Updates
    previous_grad: optax.Updates


def scale_by_diffgrad(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
                      eps_before_correction: bool = False) -> optax.GradientTransformationExtraArgs:
    r"""diffGrad's direction (the paper's Eq. for ``xi`` and its Adam-form update)::

        xi = sigmoid(|g_{t-1} - g_t|)  in [0.5, 1)          (g_0 = 0 at the first step)
        m <- b1 m + (1-b1) g;  v <- b2 v + (1-b2) g^2;  u = xi * m_hat / (sqrt(v_hat) + eps)

    With ``xi = 1`` this is optax's ``scale_by_adam``. ``eps_before_correction=True`` reproduces the
    authors' code, which adds ``eps`` to ``sqrt(v)`` before the bias correction:
    ``u = xi * sqrt(1-b2^t)/(1-b1^t) * m / (sqrt(v) + eps)`` (the two differ only in how ``eps``
    scales in the first steps).

    >>> import jax.numpy as jnp
    >>> tx = scale_by_diffgrad()
    >>> u, _ = tx.update(jnp.array([0.0, 100.0]), tx.init(jnp.zeros(2)))
    >>> [round(float(x), 4) for x in u]  # xi = sigmoid(100) ~ 1 times Adam's sign(g)
    [0.0, 1.0]
    """
    check_beta("b1", b1)
    check_beta("b2", b2)
    check_nonnegative("eps", eps)

    def init(params):
        check_float_params("diffgrad", params)
        zeros = optax.tree.zeros_like(params)
        return ScaleByDiffGradState(jnp.zeros([], jnp.int32), zeros, zeros, zeros)

    def update(updates, state, params=None, **extra):
        del params, extra
        count = optax.safe_increment(state.count)
        mu = moment(updates, state.mu, b1, 1)
        nu = moment(updates, state.nu, b2, 2)
        direction = adam_direction(mu, nu, b1, b2, count, eps, eps_before_correction)
        out = jax.tree.map(lambda g, gp, u: jax.nn.sigmoid(jnp.abs(gp - g)) * u,
                           updates, state.previous_grad, direction)
        previous = optax.tree.cast_like(updates, state.previous_grad)
        return optax.tree.cast_like(out, updates), ScaleByDiffGradState(count, mu, nu, previous)

    return optax.GradientTransformationExtraArgs(init, update)


@register("diffgrad", family="adaptive",
          paper="diffGrad: An Optimization Method for Convolutional Neural Networks, arXiv:1909.11015")
def diffgrad(learning_rate: optax.ScalarOrSchedule = 1e-3, b1: float = 0.9, b2: float = 0.999,
             eps: float = 1e-8, weight_decay: float = 0.0,
             eps_before_correction: bool = False) -> optax.GradientTransformationExtraArgs:
    r"""diffGrad: ``chain(scale_by_diffgrad, add_decayed_weights, scale_by_learning_rate)``.

    The decay is decoupled (AdamW-style); the authors' code adds an L2 term to the gradient instead.

    >>> import jax.numpy as jnp
    >>> tx = diffgrad(0.1)
    >>> u, _ = tx.update(jnp.array([50.0]), tx.init(jnp.zeros(1)))
    >>> round(float(u[0]), 4)
    -0.1
    """
    return alias(scale_by_diffgrad(b1, b2, eps, eps_before_correction), learning_rate, weight_decay)
