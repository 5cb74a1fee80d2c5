r"""AdamP and SGDP: momentum optimizers that remove the radial part of the step on scale-invariant weights.

"AdamP: Slowing Down the Slowdown for Momentum Optimizers on Scale-invariant Weights" (Heo et al., 2020),
arXiv:2006.08217; the rules of the authors' code (clovaai/AdamP, ``adamp/adamp.py`` and ``adamp/sgdp.py``).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp
import optax

from ._common import (adam_direction, alias, check_beta, check_float_params, check_nonnegative,
                      moment, need_params)
from .registry import register

__all__ = ["scale_by_adamp", "adamp", "scale_by_sgdp", "sgdp"]

_PAPER = ("AdamP: Slowing Down the Slowdown for Momentum Optimizers on Scale-invariant Weights, "
          "arXiv:2006.08217")


class ScaleByAdamPState(NamedTuple):
    count: jax.Array  # int32 number of steps taken
    mu: optax.Updates
    nu: optax.Updates


class ScaleBySGDPState(NamedTuple):
    count: jax.Array
    momentum: optax.Updates


def _remove_radial(param: jax.Array, grad: jax.Array, direction: jax.Array, delta: Any, eps: Any,
                   channel_axis: int) -> tuple[jax.Array, jax.Array]:
    """AdamP's projection of one weight tensor; returns ``(direction, projected)``.

    The tensor is seen as ``channels x rest`` (channel view) and as one vector (layer view). For the first
    view whose largest ``|cos(g, w)|`` is below ``delta / sqrt(view dim)`` (the weight looks
    scale-invariant: its gradient is nearly orthogonal to it), the radial part ``w_n <w_n, u>`` of the
    direction is removed in that view. Both candidates are computed and selected with ``where``: no
    branching on values, static shapes.
    """
    if param.ndim < 2:  # 1-D weights (biases, norm gains) are never projected
        return direction, jnp.zeros((), bool)

    def channels(x):
        return jnp.moveaxis(x, channel_axis, 0).reshape(x.shape[channel_axis], -1)

    w, g, u = channels(param), channels(grad), channels(direction)

    def abs_cos(a, b, axis):
        dot = jnp.sum(a * b, axis=axis)
        norms = jnp.linalg.norm(a, axis=axis) * jnp.linalg.norm(b, axis=axis)
        return jnp.abs(dot) / jnp.maximum(norms, eps)

    def project(axis):
        w_n = w / (jnp.linalg.norm(w, axis=axis, keepdims=True) + eps)
        return u - w_n * jnp.sum(w_n * u, axis=axis, keepdims=True)

    channel_hit = jnp.max(abs_cos(g, w, 1)) < delta / math.sqrt(w.shape[1])
    layer_hit = abs_cos(g, w, None) < delta / math.sqrt(w.size)
    out = jnp.where(channel_hit, project(1), jnp.where(layer_hit, project(None), u))
    moved_shape = (param.shape[channel_axis],) + tuple(
        s for i, s in enumerate(param.shape) if i != channel_axis % param.ndim)
    out = jnp.moveaxis(out.reshape(moved_shape), 0, channel_axis)
    return out, channel_hit | layer_hit


def _check_projection_args(delta, wd_ratio, eps, weight_decay):
    for name, value in (("delta", delta), ("wd_ratio", wd_ratio), ("eps", eps),
                        ("weight_decay", weight_decay)):
        check_nonnegative(name, value)


def scale_by_adamp(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8, delta: float = 0.1,
                   wd_ratio: float = 0.1, nesterov: bool = False, weight_decay: float = 0.0,
                   channel_axis: int = -1) -> optax.GradientTransformationExtraArgs:
    r"""AdamP's direction: Adam with the radial component removed on scale-invariant weights.

    The rule of the authors' code (clovaai/AdamP ``adamp/adamp.py``)::

        m <- b1 m + (1-b1) g;   v <- b2 v + (1-b2) g^2;   u = m_hat / (sqrt(v_hat) + eps)
        (nesterov: u = (b1 m + (1-b1) g)/bc1 / (sqrt(v_hat) + eps))
        for a tensor with ndim > 1, for the channel view, then the layer view:
            if max |cos(g, w)| < delta / sqrt(view dim):   u <- u - w_n <w_n, u>,  w_n = w / (|w| + eps)
                                                        and the decay is scaled by wd_ratio; stop
        direction = u + weight_decay * ratio * w        (ratio = wd_ratio if projected else 1)

    The test uses the raw gradient, not the update. ``channel_axis`` is the output-channel axis: -1 for
    flax kernels (``(in, out)``, ``(h, w, in, out)``); PyTorch's reference uses axis 0.

    >>> import jax.numpy as jnp
    >>> tx = scale_by_adamp()
    >>> w = {"w": jnp.array([[1.0, 0.0], [0.0, 1.0]])}
    >>> u, _ = tx.update({"w": jnp.array([[0.0, 1.0], [-1.0, 0.0]])}, tx.init(w), w)
    >>> float(jnp.sum(u["w"] * w["w"]))  # the radial part is gone: u is orthogonal to w
    0.0
    """
    check_beta("b1", b1)
    check_beta("b2", b2)
    _check_projection_args(delta, wd_ratio, eps, weight_decay)

    def init(params):
        check_float_params("adamp", params)
        zeros = optax.tree.zeros_like(params)
        return ScaleByAdamPState(jnp.zeros([], jnp.int32), zeros, zeros)

    def update(updates, state, params=None, **extra):
        del extra
        need_params("adamp", params)
        count = optax.safe_increment(state.count)
        mu = moment(updates, state.mu, b1, 1)
        nu = moment(updates, state.nu, b2, 2)
        first = moment(updates, mu, b1, 1) if nesterov else mu
        directions = adam_direction(first, nu, b1, b2, count, eps)

        def leaf(g, u, w):
            u, projected = _remove_radial(w, g, u, delta, eps, channel_axis)
            ratio = jnp.where(projected, wd_ratio, 1.0).astype(u.dtype)
            return u + weight_decay * ratio * w

        out = jax.tree.map(leaf, updates, directions, params)
        return optax.tree.cast_like(out, updates), ScaleByAdamPState(count, mu, nu)

    return optax.GradientTransformationExtraArgs(init, update)


@register("adamp", family="adaptive", paper=_PAPER)
def adamp(learning_rate: optax.ScalarOrSchedule = 1e-3, b1: float = 0.9, b2: float = 0.999,
          eps: float = 1e-8, weight_decay: float = 0.0, delta: float = 0.1, wd_ratio: float = 0.1,
          nesterov: bool = False,
          channel_axis: Optional[int] = None) -> optax.GradientTransformationExtraArgs:
    r"""AdamP: ``chain(scale_by_adamp(..., weight_decay), scale_by_learning_rate(learning_rate))``.

    The weight decay lives in :func:`scale_by_adamp` because AdamP scales it by ``wd_ratio`` exactly on
    the tensors it projects: ``w <- w - lr (u + weight_decay * ratio * w)``. ``channel_axis=None`` is -1
    (flax's output axis); it is ``None`` rather than ``-1`` so that ``optax.inject_hyperparams`` keeps it
    static.

    >>> import jax.numpy as jnp
    >>> tx = adamp(0.1)
    >>> p = {"b": jnp.array([1.0, -2.0])}  # 1-D: plain Adam, first step -lr * sign(g)
    >>> u, _ = tx.update({"b": jnp.array([3.0, -0.5])}, tx.init(p), p)
    >>> [round(float(x), 4) for x in u["b"]]
    [-0.1, 0.1]
    """
    axis = -1 if channel_axis is None else channel_axis
    return alias(scale_by_adamp(b1, b2, eps, delta, wd_ratio, nesterov, weight_decay, axis),
                 learning_rate, weight_decay=None)


def scale_by_sgdp(momentum: float = 0.9, dampening: float = 0.0, nesterov: bool = False,
                  eps: float = 1e-8, delta: float = 0.1, wd_ratio: float = 0.1,
                  weight_decay: float = 0.0,
                  channel_axis: int = -1) -> optax.GradientTransformationExtraArgs:
    r"""SGDP's direction: momentum SGD with AdamP's radial projection (clovaai/AdamP ``adamp/sgdp.py``)::

        b <- momentum b + (1 - dampening) g;     u = g + momentum b  (nesterov)  or  b
        u <- u - w_n <w_n, u>  on scale-invariant tensors (see scale_by_adamp)
        direction = u + weight_decay * ratio / (1 - momentum) * w

    (the ``1/(1-momentum)`` factor on the decay is the reference code's).

    >>> import jax.numpy as jnp
    >>> tx = scale_by_sgdp(momentum=0.5)
    >>> p = jnp.array([1.0, 2.0])
    >>> s = tx.init(p)
    >>> u, s = tx.update(jnp.array([1.0, 1.0]), s, p)
    >>> u, s = tx.update(jnp.array([1.0, 1.0]), s, p)
    >>> u.tolist()
    [1.5, 1.5]
    """
    check_beta("momentum", momentum)
    check_nonnegative("dampening", dampening)
    _check_projection_args(delta, wd_ratio, eps, weight_decay)

    def init(params):
        check_float_params("sgdp", params)
        return ScaleBySGDPState(jnp.zeros([], jnp.int32), optax.tree.zeros_like(params))

    def update(updates, state, params=None, **extra):
        del extra
        need_params("sgdp", params)
        buf = jax.tree.map(lambda b, g: momentum * b + (1 - dampening) * g, state.momentum, updates)
        buf = optax.tree.cast_like(buf, state.momentum)

        def leaf(g, b, w):
            u = g + momentum * b if nesterov else b
            u, projected = _remove_radial(w, g, u, delta, eps, channel_axis)
            ratio = jnp.where(projected, wd_ratio, 1.0).astype(u.dtype)
            return u + weight_decay * ratio / (1 - momentum) * w

        out = jax.tree.map(leaf, updates, buf, params)
        return optax.tree.cast_like(out, updates), ScaleBySGDPState(optax.safe_increment(state.count),
                                                                    buf)

    return optax.GradientTransformationExtraArgs(init, update)


@register("sgdp", family="adaptive", paper=_PAPER)
def sgdp(learning_rate: optax.ScalarOrSchedule = 0.1, momentum: float = 0.9, dampening: float = 0.0,
         nesterov: bool = False, weight_decay: float = 0.0, eps: float = 1e-8, delta: float = 0.1,
         wd_ratio: float = 0.1,
         channel_axis: Optional[int] = None) -> optax.GradientTransformationExtraArgs:
    r"""SGDP: ``chain(scale_by_sgdp(..., weight_decay), scale_by_learning_rate(learning_rate))``.

    The decay is in the direction (scaled by ``wd_ratio`` on projected tensors, as in the paper's code).
    The default ``momentum=0.9`` is the paper's experiments' (the reference class defaults to 0).

    >>> import jax.numpy as jnp
    >>> tx = sgdp(0.1, momentum=0.0)
    >>> u, _ = tx.update(jnp.array([1.0, -2.0]), tx.init(jnp.zeros(2)), jnp.zeros(2))
    >>> [round(float(x), 4) for x in u]
    [-0.1, 0.2]
    """
    axis = -1 if channel_axis is None else channel_axis  # None: static under inject_hyperparams
    return alias(scale_by_sgdp(momentum, dampening, nesterov, eps, delta, wd_ratio, weight_decay,
                               axis), learning_rate, weight_decay=None)
