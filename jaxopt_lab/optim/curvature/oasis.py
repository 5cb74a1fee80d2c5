r"""OASIS: a Hutchinson diagonal preconditioner with an adaptive, Lipschitz-free step size.

"Doubly Adaptive Scaled Algorithm for Machine Learning Using Second-Order Information" (Jahani,
Rusakov, Shi, Richtarik, Mahoney, Takac), arXiv:2109.05198, Algorithm 1 (adaptive learning rate). With
``v_k`` Rademacher and ``H v_k`` one Hessian-vector product (a ``jax.jvp`` of the ``grad_fn`` extra
argument)::

    D_0 = v_0 * (H v_0),      D_k = beta2 D_{k-1} + (1 - beta2) v_k * (H v_k)
    Dh_k = max(|D_k|, alpha)                                   (elementwise truncation)
    eta_k = min( sqrt(1 + theta_{k-1}) eta_{k-1},  ||w_k - w_{k-1}||_{Dh_k} / (2 ||g_k - g_{k-1}||*_{Dh_k}) )
    w_{k+1} = w_k - eta_k Dh_k^{-1} g_k,                        theta_k = eta_k / eta_{k-1}

with ``||x||_D = sqrt(x^T D x)``, ``||x||*_D = sqrt(x^T D^{-1} x)``, ``eta_0 = initial_step`` and
``theta_0 = +inf`` (so ``eta_1`` is the local estimate). The direction returned is
``eta_k Dh_k^{-1} g_k``; the alias multiplies it by ``learning_rate`` (1 = the paper's method). All
leaves form one vector (one step size for the model).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.flatten_util import ravel_pytree

from .. import _common
from ..registry import register
from . import _checks

__all__ = ["OASISState", "scale_by_oasis", "oasis"]

_NAME = "oasis"


class OASISState(NamedTuple):
    """Flattened ``diagonal`` ``D_k``, previous params and gradient, ``step`` ``eta`` and ``theta``."""

    count: jax.Array
    key: jax.Array
    diagonal: jax.Array
    previous_params: jax.Array
    previous_grad: jax.Array
    step: jax.Array
    theta: jax.Array


def scale_by_oasis(initial_step: float = 1e-2, beta2: float = 0.99, alpha: float = 1e-5,
                   seed: int = 0) -> optax.GradientTransformationExtraArgs:
    """OASIS's scaled direction ``eta_k Dh_k^{-1} g_k`` (module docstring). Reads ``grad_fn`` and params.

    Args:
      initial_step: ``eta_0 > 0``.
      beta2: decay of the Hessian-diagonal average in ``[0, 1)``.
      alpha: truncation ``> 0`` of ``|D|`` (keeps ``Dh`` positive definite).
      seed: seed of the Rademacher vectors.

    >>> tx = scale_by_oasis()
    >>> grad_fn = jax.grad(lambda w: jnp.sum(jnp.array([1.0, 10.0]) * w ** 2))
    >>> w = jnp.ones(2)
    >>> u, state = tx.update(grad_fn(w), tx.init(w), w, grad_fn=grad_fn)
    """
    _common.check_positive("initial_step", initial_step)
    _common.check_beta("beta2", beta2)
    _common.check_positive("alpha", alpha)

    def init(params):
        flat, _ = ravel_pytree(jax.tree.map(lambda x: x.astype(jnp.float32), params))
        zeros = jnp.zeros_like(flat)
        return OASISState(jnp.zeros([], jnp.int32), jax.random.PRNGKey(seed), zeros, zeros, zeros,
                          jnp.asarray(initial_step, jnp.float32), jnp.asarray(jnp.inf, jnp.float32))

    def update(updates, state, params=None, *, grad_fn=None, **extra):
        del extra
        _checks.need(_NAME, "grad_fn", grad_fn)
        _common.need_params(_NAME, params)
        flat_params, unravel = ravel_pytree(params)
        w = flat_params.astype(jnp.float32)
        g, unravel_updates = ravel_pytree(jax.tree.map(lambda x: x.astype(jnp.float32), updates))
        key, sub = jax.random.split(state.key)
        v = jax.random.rademacher(sub, w.shape, jnp.float32)
        _, hv = jax.jvp(grad_fn, (params,), (unravel(v.astype(flat_params.dtype)),))
        sample = v * ravel_pytree(hv)[0].astype(jnp.float32)
        first = state.count == 0
        diagonal = jnp.where(first, sample, beta2 * state.diagonal + (1.0 - beta2) * sample)
        truncated = jnp.maximum(jnp.abs(diagonal), alpha)
        dw, dg = w - state.previous_params, g - state.previous_grad
        numerator = jnp.sqrt(jnp.sum(truncated * dw * dw))
        denominator = 2.0 * jnp.sqrt(jnp.sum(dg * dg / truncated))
        growth = jnp.sqrt(1.0 + state.theta) * state.step
        # no gradient change (a flat region, or a repeated point): only the growth bound applies
        local = jnp.where(denominator > 0, numerator / jnp.where(denominator > 0, denominator, 1.0),
                          jnp.inf)
        step = jnp.where(first, state.step, jnp.minimum(growth, local))
        theta = jnp.where(first, state.theta, step / state.step)
        direction = unravel_updates(step * g / truncated)
        direction = jax.tree.map(lambda a, x: a.astype(x.dtype), direction, updates)
        return direction, OASISState(state.count + 1, key, diagonal, w, g, step, theta)

    return optax.GradientTransformationExtraArgs(init, update)


@register(_NAME, family="curvature", extra_args=("grad_fn",),
          paper="Doubly Adaptive Scaled Algorithm for Machine Learning Using Second-Order "
                "Information, arXiv:2109.05198")
def oasis(learning_rate: optax.ScalarOrSchedule = 1.0, initial_step: float = 1e-2,
          beta2: float = 0.99, alpha: float = 1e-5, seed: int = 0, weight_decay: float = 0.0
          ) -> optax.GradientTransformationExtraArgs:
    """OASIS: ``chain(scale_by_oasis(...), add_decayed_weights(weight_decay),
    scale_by_learning_rate(learning_rate))``; ``learning_rate = 1`` is the paper's adaptive method.

    >>> tx = oasis()
    """
    return _common.alias(scale_by_oasis(initial_step, beta2, alpha, seed), learning_rate,
                         weight_decay)
