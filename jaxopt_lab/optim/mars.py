r"""MARS-AdamW: Adam on a variance-reduced, clipped gradient estimate.

"MARS: Unleashing the Power of Variance Reduction for Training Large Models" (Yuan et al., 2024),
arXiv:2411.10438; the rule of the authors' code (AGI-Arena/MARS ``MARS/optimizers/mars.py``).
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import optax

from ._common import (adam_direction, alias, check_beta, check_float_params, check_nonnegative,
                      decayed_weights, moment, need_params)
from .registry import register

__all__ = ["scale_by_mars", "mars"]


class ScaleByMarsState(NamedTuple):
    count: jax.Array
    mu: optax.Updates
    nu: optax.Updates
    previous: optax.Updates  # approximate: the last step's gradient; exact: the last step's params


def _uses_mars(x: jax.Array, optimize_1d: bool) -> bool:
    """The reference applies MARS to 2-D tensors (``len(grad.shape) == 2``), AdamW to the rest."""
    return optimize_1d or jnp.ndim(x) == 2


def scale_by_mars(b1: float = 0.95, b2: float = 0.99, eps: float = 1e-8, gamma: float = 0.025,
                  exact: bool = False, optimize_1d: bool = False, b1_1d: float = 0.9,
                  b2_1d: float = 0.95,
                  lr_1d_factor: float = 1.0) -> optax.GradientTransformationExtraArgs:
    r"""MARS-AdamW's direction, as the authors' code computes it for 2-D tensors::

        c = g(x_t) + gamma * b1/(1-b1) * (g(x_t) - g_prev)
        c <- c / max(1, ||c||_2)                      (per tensor)
        m <- b1 m + (1-b1) c;   v <- b2 v + (1-b2) c^2;   u = m_hat / (sqrt(v_hat) + eps)

    ``g_prev`` is, with ``exact=False`` (the paper's MARS-approx, one gradient per step), the stored
    gradient of the previous step (zero at the first step, as in the reference); with ``exact=True``,
    ``grad_fn(x_{t-1})``, the gradient at the previous parameters on the *current* batch (two gradients
    per step; ``update`` then needs the extra argument ``grad_fn``; the previous parameters are kept in
    the state and start at the initial ones, so the first step has ``c = g``). Other tensors (1-D, or
    ndim > 2) use Adam with ``(b1_1d, b2_1d)`` on the raw gradient, scaled by ``lr_1d_factor``, unless
    ``optimize_1d``. With ``gamma = 0`` MARS is Adam on per-tensor clipped gradients.

    >>> import jax.numpy as jnp
    >>> tx = scale_by_mars(gamma=0.0)
    >>> u, _ = tx.update({"w": jnp.full((2, 2), 3.0)}, tx.init({"w": jnp.zeros((2, 2))}))
    >>> [round(float(x), 5) for x in u["w"].ravel()]  # first step: Adam's sign(g)
    [1.0, 1.0, 1.0, 1.0]
    """
    for name, b in (("b1", b1), ("b2", b2), ("b1_1d", b1_1d), ("b2_1d", b2_1d)):
        check_beta(name, b)
    check_nonnegative("eps", eps)
    check_nonnegative("gamma", gamma)
    check_nonnegative("lr_1d_factor", lr_1d_factor)

    def init(params):
        check_float_params("mars", params)
        zeros = optax.tree.zeros_like(params)
        previous = jax.tree.map(jnp.asarray, params) if exact else zeros
        return ScaleByMarsState(jnp.zeros([], jnp.int32), zeros, zeros, previous)

    def correction(g, g_prev):
        """The clipped variance-reduced estimate c of one MARS tensor (the raw g for the others)."""
        if not _uses_mars(g, optimize_1d):
            return g
        c = g + gamma * b1 / (1 - b1) * (g - g_prev)
        norm = jnp.linalg.norm(c.astype(jnp.promote_types(c.dtype, jnp.float32)))
        return c / jnp.maximum(1.0, norm).astype(c.dtype)

    def update(updates, state, params=None, *, grad_fn=None, **extra):
        del extra
        if exact:
            if grad_fn is None:
                raise ValueError("mars with exact=True needs the extra argument grad_fn (params -> "
                                 "grads on the current batch): tx.update(g, s, params, grad_fn=...)")
            need_params("mars (exact=True)", params)
            g_prev = grad_fn(state.previous)
        else:
            g_prev = state.previous
        count = optax.safe_increment(state.count)
        c = jax.tree.map(correction, updates, g_prev)

        def per_kind(fn):
            """``fn(b1, b2)`` on each tensor kind's leaves, as one tree (rates differ by kind)."""
            return jax.tree.map(lambda x, a, b: a if _uses_mars(x, optimize_1d) else b, updates,
                                fn(b1, b2), fn(b1_1d, b2_1d))

        mu = per_kind(lambda d1, d2: moment(c, state.mu, d1, 1))
        nu = per_kind(lambda d1, d2: moment(c, state.nu, d2, 2))
        direction = per_kind(lambda d1, d2: adam_direction(mu, nu, d1, d2, count, eps))
        out = jax.tree.map(lambda g, u: u if _uses_mars(g, optimize_1d) else lr_1d_factor * u,
                           updates, direction)
        previous = jax.tree.map(jnp.asarray, params) if exact else updates
        return optax.tree.cast_like(out, updates), ScaleByMarsState(count, mu, nu, previous)

    return optax.GradientTransformationExtraArgs(init, update)


@register("mars", family="adaptive", extra_args=("grad_fn",),
          paper="MARS: Unleashing the Power of Variance Reduction for Training Large Models, "
                "arXiv:2411.10438")
def mars(learning_rate: optax.ScalarOrSchedule = 3e-3, b1: float = 0.95, b2: float = 0.99,
         eps: float = 1e-8, gamma: float = 0.025, weight_decay: float = 0.0, exact: bool = False,
         optimize_1d: bool = False, b1_1d: float = 0.9, b2_1d: float = 0.95,
         weight_decay_1d: Optional[float] = None,
         lr_1d_factor: float = 1.0) -> optax.GradientTransformationExtraArgs:
    r"""MARS-AdamW: ``chain(scale_by_mars, decay (per tensor kind), scale_by_learning_rate)``.

    ``grad_fn`` is read only with ``exact=True``. The tensors MARS treats get ``weight_decay``; the others
    (Adam path) get ``weight_decay_1d * lr_1d_factor`` as in the reference. The reference defaults
    ``weight_decay_1d`` to 0.1 even when ``weight_decay = 0``; here ``None`` means "same as
    ``weight_decay``" so that the default optimizer has no hidden decay.

    >>> import jax.numpy as jnp
    >>> tx = mars(0.1)
    >>> u, _ = tx.update(jnp.array([2.0, -3.0]), tx.init(jnp.zeros(2)))  # 1-D: AdamW path
    >>> [round(float(x), 4) for x in u]
    [-0.1, 0.1]
    """
    if weight_decay_1d is None:
        weight_decay_1d = weight_decay
    check_nonnegative("weight_decay", weight_decay)
    check_nonnegative("weight_decay_1d", weight_decay_1d)
    check_nonnegative("lr_1d_factor", lr_1d_factor)
    mars_mask = lambda p: jax.tree.map(lambda x: _uses_mars(x, optimize_1d), p)  # noqa: E731
    other_mask = lambda p: jax.tree.map(lambda x: not _uses_mars(x, optimize_1d), p)  # noqa: E731
    direction = optax.chain(
        scale_by_mars(b1, b2, eps, gamma, exact, optimize_1d, b1_1d, b2_1d, lr_1d_factor),
        decayed_weights(weight_decay_1d * lr_1d_factor, other_mask))
    return alias(direction, learning_rate, weight_decay, mars_mask)
