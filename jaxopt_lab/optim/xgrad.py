r"""XGrad: the base optimizer's direction with the gradient taken at predicted weights.

"XGrad: Boosting Gradient-Based Optimizers With Weight Prediction" (Guan et al., 2023), arXiv:2305.18240;
the authors' code is guanleics/XGrad.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from ._common import (alias, bias_correction, check_beta, check_choice, check_float_params,
                      check_nonnegative, learning_rate_at, need_params)
from .registry import register

__all__ = ["scale_by_xgrad", "xgrad"]


class ScaleByXGradState(NamedTuple):
    count: jax.Array
    base: Any  # the base optimizer's state (optax.ScaleByAdamState or optax.TraceState)


_XGRAD_BASES = ("adam", "sgdm")


def scale_by_xgrad(learning_rate: optax.ScalarOrSchedule, base: str = "adam", b1: float = 0.9,
                   b2: float = 0.999, eps: float = 1e-8, momentum: float = 0.9,
                   steps_ahead: float = 1.0) -> optax.GradientTransformationExtraArgs:
    r"""XGrad's direction: the base optimizer's direction with the gradient taken at predicted weights.

    "XGrad: Boosting Gradient-Based Optimizers With Weight Prediction" (Guan et al., 2023),
    arXiv:2305.18240; the rule of the authors' code (guanleics/XGrad ``Adam.py``, ``SGD.py``)::

        w_hat = w - s * lr_t * d(state_t)         (moments frozen, s = steps_ahead; no decay term, as the
                                                   reference's AdamW.load_predicted_weights)
            adam: d = m_hat / (sqrt(v_hat) + eps) with the bias correction of step t (0 before step 1)
            sgdm: d = b (the momentum buffer)
        g_hat = grad_fn(w_hat)                         (the gradient at the predicted weights)
        direction = the base direction from g_hat (optax.scale_by_adam / optax.trace)

    The incoming ``updates`` are not used: ``update`` needs the extra argument ``grad_fn``
    (``params -> grads`` on the current batch), so a step costs one gradient at ``w_hat`` (the training
    loop's gradient at ``w`` is wasted unless the loop skips it). The alias adds the decoupled decay.

    >>> import jax.numpy as jnp
    >>> tx = scale_by_xgrad(0.1, base="sgdm", momentum=0.5)
    >>> grad_fn = lambda w: 2 * w                     # f = ||w||^2
    >>> w = jnp.array([1.0]); s = tx.init(w)
    >>> u, s = tx.update(grad_fn(w), s, w, grad_fn=grad_fn)          # no momentum yet: g(w) = 2
    >>> w = w - 0.1 * u
    >>> u, s = tx.update(grad_fn(w), s, w, grad_fn=grad_fn)          # g(0.8 - 0.1*2) = 1.2
    >>> round(float(u[0]), 6)                                        # 1.2 + 0.5 * 2
    2.2
    """
    check_choice("base", base, _XGRAD_BASES)
    for name, b in (("b1", b1), ("b2", b2), ("momentum", momentum)):
        check_beta(name, b)
    check_nonnegative("eps", eps)
    check_nonnegative("learning_rate", learning_rate)
    check_nonnegative("steps_ahead", steps_ahead)
    inner = optax.scale_by_adam(b1, b2, eps) if base == "adam" else optax.trace(momentum)

    def frozen_direction(base_state):
        if base == "sgdm":
            return base_state.trace
        count = base_state.count
        started = count > 0  # before the first step the moments are 0 and so is the prediction

        def adam(m, v):
            bc1 = jnp.where(started, bias_correction(b1, count, m.dtype), 1).astype(m.dtype)
            bc2 = jnp.where(started, bias_correction(b2, count, v.dtype), 1).astype(v.dtype)
            return (m / bc1) / (jnp.sqrt(v / bc2) + eps)

        return jax.tree.map(adam, base_state.mu, base_state.nu)

    def init(params):
        check_float_params("xgrad", params)
        return ScaleByXGradState(jnp.zeros([], jnp.int32), inner.init(params))

    def update(updates, state, params=None, *, grad_fn=None, **extra):
        del extra
        if grad_fn is None:
            raise ValueError("xgrad needs the extra argument grad_fn (params -> grads on the current "
                             "batch) to take the gradient at the predicted weights")
        need_params("xgrad", params)

        def predict(w, d):
            lr = learning_rate_at(learning_rate, state.count, w.dtype)
            return w - jnp.asarray(steps_ahead * lr).astype(w.dtype) * d.astype(w.dtype)

        grads = grad_fn(jax.tree.map(predict, params, frozen_direction(state.base)))
        out, base_state = inner.update(grads, state.base, params)
        return optax.tree.cast_like(out, updates), ScaleByXGradState(
            optax.safe_increment(state.count), base_state)

    return optax.GradientTransformationExtraArgs(init, update)


@register("xgrad", family="adaptive", extra_args=("grad_fn",),
          paper="XGrad: Boosting Gradient-Based Optimizers With Weight Prediction, arXiv:2305.18240")
def xgrad(learning_rate: optax.ScalarOrSchedule = 1e-3, base: str = "adam", b1: float = 0.9,
          b2: float = 0.999, eps: float = 1e-8, momentum: float = 0.9, weight_decay: float = 0.0,
          steps_ahead: float = 1.0) -> optax.GradientTransformationExtraArgs:
    r"""XGrad: ``chain(scale_by_xgrad, add_decayed_weights, scale_by_learning_rate)``; reads ``grad_fn``.

    ``base="adam"`` with ``weight_decay > 0`` is the paper's AdamW variant; ``base="sgdm"`` its SGDM.

    >>> import jax.numpy as jnp
    >>> tx = xgrad(0.1)
    >>> w = jnp.array([2.0])
    >>> u, _ = tx.update(jnp.zeros(1), tx.init(w), w, grad_fn=lambda w: 2 * w)
    >>> round(float(u[0]), 4)  # first step: no prediction yet, Adam's -lr sign(g)
    -0.1
    """
    return alias(scale_by_xgrad(learning_rate, base, b1, b2, eps, momentum, steps_ahead),
                    learning_rate, weight_decay)
