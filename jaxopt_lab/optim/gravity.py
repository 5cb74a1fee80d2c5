r"""Gravity: a running average of a bounded, kinematics-inspired gradient map.

"Gravity Optimizer: a Kinematic Approach on Optimization in Deep Learning" (Bahrami & Zadeh, 2021),
arXiv:2101.09192; the authors' code is dariush-bahrami/gravity.optimizer.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from ._common import alias, check_beta, check_float_params, check_nonnegative, concrete_number
from .registry import register

__all__ = ["scale_by_gravity", "gravity"]


class ScaleByGravityState(NamedTuple):
    count: jax.Array
    velocity: optax.Updates


def scale_by_gravity(beta: float = 0.9, velocity_std: float = 0.1,
                     seed: int = 0) -> optax.GradientTransformationExtraArgs:
    r"""Gravity's direction: a running average of a bounded, kinematics-inspired gradient map.

    "Gravity Optimizer: a Kinematic Approach on Optimization in Deep Learning" (Bahrami & Zadeh, 2021),
    arXiv:2101.09192. The abstract does not give the rule; implemented exactly as the authors' code
    (dariush-bahrami/gravity.optimizer), per tensor, ``t`` from 1::

        M = max |g|;   zeta = g / (1 + (g M)^2)        (the reference's g / (1 + (g / (1/M))^2))
        beta_hat_t = (beta t + 1) / (t + 2);   v <- beta_hat_t v + (1 - beta_hat_t) zeta
        direction = v,      v_0 ~ N(0, velocity_std^2)

    Writing ``g / (1/M)`` as ``g M`` avoids the reference's division by zero when ``g = 0``. The alias
    sets ``velocity_std = alpha / learning_rate`` as the reference does; the key comes from ``seed``.

    The map is bounded by design (the authors' "Gravity Optimizer Math", Eqs. 18-20): ``|zeta| <=
    1 / (2 M)`` for every entry, and the entry with the largest gradient gets ``M / (1 + M^4) ~ M^-3``.
    Where gradients are large (``M >> 1``, e.g. an unscaled quadratic far from its minimum) the
    steepest coordinates therefore barely move and Gravity stalls until ``M`` falls below ~1; it
    behaves like momentum SGD once ``|g| M << 1``, the regime of network gradients it is meant for.

    >>> import jax.numpy as jnp
    >>> tx = scale_by_gravity(velocity_std=0.0)
    >>> u, _ = tx.update(jnp.array([1.0, 0.5]), tx.init(jnp.zeros(2)))
    >>> [round(float(x), 4) for x in u]  # (1 - beta_hat_1) zeta, beta_hat_1 = 1.9/3, zeta = [1/2, 0.4]
    [0.1833, 0.1467]
    """
    check_beta("beta", beta)
    check_nonnegative("velocity_std", velocity_std)

    def init(params):
        check_float_params("gravity", params)
        leaves, treedef = jax.tree.flatten(params)
        keys = jax.random.split(jax.random.PRNGKey(seed), max(len(leaves), 1))
        velocity = [velocity_std * jax.random.normal(k, jnp.shape(p), jnp.result_type(p))
                    for k, p in zip(keys, leaves)]
        return ScaleByGravityState(jnp.zeros([], jnp.int32), treedef.unflatten(velocity))

    def update(updates, state, params=None, **extra):
        del params, extra
        count = optax.safe_increment(state.count)

        def leaf(g, v):
            t = count.astype(jnp.promote_types(v.dtype, jnp.float32))  # in the parameters' dtype
            b = ((beta * t + 1) / (t + 2)).astype(v.dtype)
            zeta = g / (1 + jnp.square(g * jnp.max(jnp.abs(g))))
            return b * v + (1 - b) * zeta

        velocity = jax.tree.map(leaf, updates, state.velocity)
        return optax.tree.cast_like(velocity, updates), ScaleByGravityState(count, velocity)

    return optax.GradientTransformationExtraArgs(init, update)


@register("gravity", family="adaptive", extra_args=(),
          paper="Gravity Optimizer: a Kinematic Approach on Optimization in Deep Learning, "
                "arXiv:2101.09192")
def gravity(learning_rate: optax.ScalarOrSchedule = 0.1, alpha: float = 0.01, beta: float = 0.9,
            weight_decay: float = 0.0, seed: int = 0) -> optax.GradientTransformationExtraArgs:
    r"""Gravity: ``chain(scale_by_gravity(beta, alpha / lr, seed), add_decayed_weights, scale_by_lr)``.

    The initial velocity has standard deviation ``alpha / learning_rate`` (the reference's), so the first
    displacement ``lr * v_0`` has standard deviation ``alpha``; for a schedule its value at step 0 is used.

    >>> import jax.numpy as jnp
    >>> tx = gravity(0.1, alpha=0.0)
    >>> u, _ = tx.update(jnp.array([1.0]), tx.init(jnp.zeros(1)))
    >>> round(float(u[0]), 4)  # -lr (1 - beta_hat_1) * 1/2
    -0.0183
    """
    check_nonnegative("alpha", alpha)
    check_nonnegative("learning_rate", learning_rate)
    lr0 = learning_rate(0) if callable(learning_rate) else learning_rate
    lr0_value = concrete_number(lr0)
    if lr0_value is not None and lr0_value == 0.0:
        raise ValueError("gravity needs learning_rate > 0 (its initial velocity has standard deviation "
                         f"alpha / learning_rate), got learning_rate={learning_rate!r}")
    return alias(scale_by_gravity(beta, alpha / lr0, seed), learning_rate, weight_decay)
