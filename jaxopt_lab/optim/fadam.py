r"""FAdam: momentum of the clipped natural gradient under the diagonal empirical Fisher.

"FAdam: Adam is a natural gradient optimizer using diagonal empirical Fisher information" (Hwang, 2024),
arXiv:2405.12807.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from ._common import (alias, bias_correction, check_beta, check_choice, check_float_params,
                      check_nonnegative, check_positive, need_params)
from .registry import register

__all__ = ["scale_by_fadam", "fadam"]

_CLIP_RULES = ("paper", "code")


class ScaleByFAdamState(NamedTuple):
    count: jax.Array
    mu: optax.Updates
    fim: optax.Updates  # diagonal empirical Fisher, initialised to ones


def _rms(x: jax.Array) -> jax.Array:
    return jnp.sqrt(jnp.mean(jnp.square(x)))


def scale_by_fadam(b1: float = 0.9, b2: float = 0.999, clip: float = 1.0, p: float = 0.5,
                   eps: float = 1e-7, eps2: float = 1e-3, weight_decay: float = 0.01,
                   clip_rule: str = "paper") -> optax.GradientTransformationExtraArgs:
    r"""FAdam's direction (Algorithm 1 of the paper), per tensor, ``t`` from 1::

        b2_t = b2 (1 - b2^(t-1)) / (1 - b2^t)                 (bias-corrected; 0 at t = 1)
        F <- b2_t F + (1 - b2_t) g^2                            (F starts at ones)
        eps_t = min(eps, eps2 * rms(g));     D = F^p + eps_t
        g_nat = clip(g / D);   m <- b1 m + (1-b1) g_nat
        direction = m + weight_decay * clip(w / D)

    ``clip``: ``clip_rule="paper"`` (the default) caps the RMS at ``clip``, ``x / max(1, rms(x)/clip)``;
    ``clip_rule="code"`` is the public ports' ``x / (max(1, rms(x)) / clip)`` (kozistr/pytorch-optimizer
    ``fadam.py``, lessw2020/FAdam_PyTorch), which for ``clip > 1`` *amplifies* small updates; both agree
    at ``clip = 1``. No bias correction of ``m``. The corrections are computed in the parameters' dtype.
    Where ``D = 0`` (a tensor whose gradient has been exactly zero) the quotient is 0; a NaN gradient
    gives a NaN update.

    >>> import jax.numpy as jnp
    >>> tx = scale_by_fadam(weight_decay=0.0)
    >>> u, _ = tx.update(jnp.array([2.0, -2.0]), tx.init(jnp.zeros(2)), jnp.zeros(2))
    >>> [round(float(x), 4) for x in u]  # (1-b1) * sign(g): F = g^2, |g_nat| = 1
    [0.1, -0.1]
    """
    check_beta("b1", b1)
    check_beta("b2", b2)
    check_positive("clip", clip)
    check_positive("p", p)
    check_nonnegative("eps", eps)
    check_nonnegative("eps2", eps2)
    check_nonnegative("weight_decay", weight_decay)
    check_choice("clip_rule", clip_rule, _CLIP_RULES)

    def clipped(x):
        rms = _rms(x)
        divisor = jnp.maximum(1.0, rms / clip) if clip_rule == "paper" else jnp.maximum(1.0, rms) / clip
        return x / divisor.astype(x.dtype)

    def init(params):
        check_float_params("fadam", params)
        return ScaleByFAdamState(jnp.zeros([], jnp.int32), optax.tree.zeros_like(params),
                                 optax.tree.ones_like(params))

    def update(updates, state, params=None, **extra):
        del extra
        need_params("fadam", params)
        count = optax.safe_increment(state.count)

        def fisher(g, f):
            # b2_t = b2 (1 - b2^(t-1)) / (1 - b2^t), in the parameters' dtype
            b2_t = (b2 * bias_correction(b2, count - 1, f.dtype)
                    / bias_correction(b2, count, f.dtype)).astype(f.dtype)
            return b2_t * f + (1 - b2_t) * g * g

        def natural(x, g, f):
            """``x / D`` clipped; 0 where ``D = 0`` (NaN stays NaN: ``D == 0`` is False for NaN)."""
            denom = f ** p + jnp.minimum(eps, eps2 * _rms(g))
            zero = denom == 0
            return clipped(jnp.where(zero, 0.0, x / jnp.where(zero, 1.0, denom)))

        fim = jax.tree.map(fisher, updates, state.fim)
        mu = jax.tree.map(lambda m, g, f: b1 * m + (1 - b1) * natural(g, g, f), state.mu, updates, fim)
        out = jax.tree.map(lambda m, w, g, f: m + weight_decay * natural(w, g, f), mu, params, updates,
                           fim)
        return optax.tree.cast_like(out, updates), ScaleByFAdamState(
            count, optax.tree.cast_like(mu, state.mu), optax.tree.cast_like(fim, state.fim))

    return optax.GradientTransformationExtraArgs(init, update)


@register("fadam", family="adaptive",
          paper="FAdam: Adam is a natural gradient optimizer using diagonal empirical Fisher "
                "information, arXiv:2405.12807")
def fadam(learning_rate: optax.ScalarOrSchedule = 1e-3, b1: float = 0.9, b2: float = 0.999,
          clip: float = 1.0, p: float = 0.5, eps: float = 1e-7, eps2: float = 1e-3,
          weight_decay: float = 0.01, clip_rule: str = "paper") -> optax.GradientTransformationExtraArgs:
    r"""FAdam: ``chain(scale_by_fadam(..., weight_decay), scale_by_learning_rate(learning_rate))``.

    The decay is Fisher-preconditioned (``w / (F^p + eps_t)``, clipped) so it lives in the direction.

    >>> import jax.numpy as jnp
    >>> tx = fadam(1.0, weight_decay=0.0)
    >>> u, _ = tx.update(jnp.array([3.0]), tx.init(jnp.zeros(1)), jnp.zeros(1))
    >>> round(float(u[0]), 4)
    -0.1
    """
    return alias(scale_by_fadam(b1, b2, clip, p, eps, eps2, weight_decay, clip_rule), learning_rate,
                 weight_decay=None)
