r"""The pieces every optimizer family shares: hyperparameter checks, the alias builder, moments.

**Hyperparameter checks.** One rule set, one message format. A check looks only at concrete numbers
(Python numbers, NumPy scalars, concrete 0-d arrays); traced values and schedules pass unchecked, so
``optax.inject_hyperparams``, ``jit`` and ``vmap`` work and nothing ever branches on a tracer. A bad
value raises ``ValueError("<name> must be in [low, high), got <name>=<value>")`` (or "must be one of
..." / "must be an int ..."), before any work. Parameters whose dtype an optimizer cannot handle
(complex, integer) raise one ``TypeError`` at ``init`` naming the leaf.

**The alias.** ``<name>(learning_rate, ..., weight_decay)`` is always
``chain(direction, decayed_weights(weight_decay), scale_by_learning_rate(learning_rate))``;
:func:`decayed_weights` keeps one state structure whether ``weight_decay`` is a literal 0 or a traced
array (as ``optax.inject_hyperparams`` passes it), so an injected schedule never changes the state's
pytree structure.

**Moments and bias corrections.** Exponential moving averages go through ``optax.tree.update_moment``
and keep the moment's dtype; ``1 - b^t`` is computed in the parameters' dtype (float64 under
``jax_enable_x64``, at least float32), so ``1 - 0.999`` is not rounded to float32.

**Non-finite gradients.** The rule for the whole registry: a gradient with a NaN or inf entry gives
an update with a non-finite entry (never a silent finite step), so ``optax.apply_if_finite`` can
refuse the step and keep the state it had.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Iterable, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax

__all__ = [
    "concrete_number", "check_range", "check_beta", "check_nonnegative", "check_positive",
    "check_int", "check_choice", "need_params", "check_float_params",
    "decayed_weights", "alias",
    "learning_rate_at", "bias_correction", "debias", "moment", "adam_direction", "global_sum",
]

# ------------------------------------------------------------------------------------------------
# Hyperparameter checks


def concrete_number(value: Any) -> Optional[float]:
    """``value`` as a float when it is a concrete real scalar; ``None`` for tracers, schedules,
    ``None`` and non-numbers (those are never checked)."""
    if value is None or isinstance(value, (bool, jax.core.Tracer)) or callable(value):
        return None
    if isinstance(value, (jax.Array, np.ndarray, np.generic)):
        if np.ndim(value) != 0 or not np.issubdtype(np.asarray(value).dtype, np.number):
            return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _interval(low: float, high: float, open_low: bool, open_high: bool) -> str:
    return f"{'(' if open_low else '['}{low:g}, {high:g}{')' if open_high else ']'}"


def check_range(name: str, value: Any, low: float = -math.inf, high: float = math.inf, *,
                open_low: bool = False, open_high: bool = False) -> None:
    """``ValueError`` if the concrete number ``value`` lies outside the interval (NaN always does).

    An infinite bound is always open: ``check_range("eps", x, 0)`` allows ``[0, inf)``, finite only.

    >>> check_range("b1", 1.0, 0, 1, open_high=True)
    Traceback (most recent call last):
    ...
    ValueError: b1 must be in [0, 1), got b1=1.0
    """
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a number in "
                         f"{_interval(low, high, open_low or low == -math.inf, open_high or high == math.inf)}"
                         f", got {name}={value!r}")
    v = concrete_number(value)
    if v is None:
        return
    open_low, open_high = open_low or low == -math.inf, open_high or high == math.inf
    above = v > low if open_low else v >= low
    below = v < high if open_high else v <= high
    if not (above and below):  # False for NaN
        raise ValueError(f"{name} must be in {_interval(low, high, open_low, open_high)}, "
                         f"got {name}={value!r}")


def check_beta(name: str, value: Any) -> None:
    """A decay rate: ``[0, 1)``."""
    check_range(name, value, 0.0, 1.0, open_high=True)


def check_nonnegative(name: str, value: Any) -> None:
    """``[0, inf)`` (finite)."""
    check_range(name, value, 0.0)


def check_positive(name: str, value: Any) -> None:
    """``(0, inf)`` (finite)."""
    check_range(name, value, 0.0, open_low=True)


def check_int(name: str, value: Any, low: int = 1, high: Optional[int] = None) -> int:
    """``value`` as a Python int in ``[low, high]``: a structural hyperparameter (a rank, an interval,
    a shape) that must be static. A traced value raises, saying how to keep it static."""
    if isinstance(value, jax.core.Tracer):
        raise ValueError(f"{name} fixes shapes or loop lengths and must be a static Python int, got a "
                         f"traced value (with optax.inject_hyperparams pass static_args=({name!r},))")
    if isinstance(value, (jax.Array, np.ndarray, np.generic)) and np.ndim(value) == 0 \
            and np.issubdtype(np.asarray(value).dtype, np.integer):
        value = int(value)
    in_range = (isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= low
                and (high is None or value <= high))
    if not in_range:
        bounds = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"{name} must be an int {bounds}, got {name}={value!r}")
    return int(value)


def check_choice(name: str, value: Any, choices: Iterable[str]) -> None:
    """``value`` is one of ``choices``.

    >>> check_choice("base", "rmsprop", ("adam", "sgdm"))
    Traceback (most recent call last):
    ...
    ValueError: base must be one of 'adam', 'sgdm', got base='rmsprop'
    """
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, "
                         f"got {name}={value!r}")


def need_params(method: str, params: Any) -> None:
    if params is None:
        raise ValueError(f"{method} needs params: call tx.update(grads, state, params)")


def check_float_params(method: str, params: Any) -> None:
    """``TypeError`` naming the first leaf of ``params`` that is not a real floating-point array.

    Called by ``init``: the methods compute signs, maxima, square roots of second moments and
    Polyak-type ratios of real numbers, which have no conjugate-aware meaning for complex parameters
    (``optax.contrib.split_real_and_imaginary`` optimizes their real and imaginary parts as reals);
    integer parameters have no gradient.
    """
    for path, leaf in jax.tree_util.tree_leaves_with_path(params):
        dtype = jnp.result_type(leaf)
        if not jnp.issubdtype(dtype, jnp.floating):
            hint = (" (wrap the optimizer in optax.contrib.split_real_and_imaginary to optimize the "
                    "real and imaginary parts)" if jnp.issubdtype(dtype, jnp.complexfloating) else "")
            raise TypeError(f"{method}: params{jax.tree_util.keystr(path)} has dtype {dtype}; "
                            f"allowed: real floating-point arrays{hint}")


# ------------------------------------------------------------------------------------------------
# The alias builder


def _is_literal_zero(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and value == 0


def decayed_weights(weight_decay: Any = 0.0, mask: Any = None) -> optax.GradientTransformation:
    """``optax.add_decayed_weights(weight_decay, mask)`` whose state has the same structure for a
    literal ``0`` and for any other (traced) value; a literal ``0`` leaves the updates unchanged and,
    like ``optax.adam``, needs no ``params``."""
    decay = optax.add_decayed_weights(weight_decay, mask)
    if not _is_literal_zero(weight_decay):
        return decay
    return optax.GradientTransformation(decay.init, lambda updates, state, params=None: (updates, state))


def alias(direction: optax.GradientTransformation, learning_rate: optax.ScalarOrSchedule,
          weight_decay: Any = 0.0, mask: Any = None) -> optax.GradientTransformationExtraArgs:
    """``chain(direction, decayed_weights(weight_decay, mask), scale_by_learning_rate(learning_rate))``.

    ``weight_decay=None``: the direction applies its own decay (AdamP scales it by ``wd_ratio``,
    FAdam preconditions it), so no decay stage is added.
    """
    check_nonnegative("learning_rate", learning_rate)
    stages = [direction]
    if weight_decay is not None:
        check_nonnegative("weight_decay", weight_decay)
        stages.append(decayed_weights(weight_decay, mask))
    return optax.chain(*stages, optax.scale_by_learning_rate(learning_rate))


# ------------------------------------------------------------------------------------------------
# Schedules, moments and bias corrections


def learning_rate_at(learning_rate: optax.ScalarOrSchedule, count: jax.Array,
                     dtype: Any = jnp.float32) -> jax.Array:
    """The learning rate at step ``count`` as a ``dtype`` array, for a constant or a schedule (a
    schedule may return a Python float, e.g. ``optax.constant_schedule``)."""
    value = learning_rate(count) if callable(learning_rate) else learning_rate
    return jnp.asarray(value).astype(dtype)


def _accumulation_dtype(dtype: Any) -> Any:
    """The dtype a scalar correction is computed in: the parameters', at least float32."""
    return jnp.promote_types(dtype, jnp.float32)


def bias_correction(decay: Any, count: jax.Array, dtype: Any = jnp.float32) -> jax.Array:
    """``1 - decay**count`` in ``dtype`` (at least float32), accurate to rounding of the result.

    ``count`` is the step number (0 gives 0); ``dtype`` the parameters' (float64 under x64). Written
    as ``-expm1(count * log(decay))`` with ``log(decay)`` taken in double precision for a Python
    ``decay``: ``1 - 0.999`` is not rounded through float32's 0.99900001 (as ``1 - decay**count`` in
    float32 would be), and for an array ``decay`` (``optax.inject_hyperparams``) ``log1p(decay - 1)``
    is exact to rounding, so the correction agrees with the ``(1 - decay)`` of the moment it corrects.
    """
    dtype = _accumulation_dtype(dtype)
    count = jnp.asarray(count).astype(dtype)
    if isinstance(decay, numbers.Real) and not isinstance(decay, bool):
        log_decay = math.log(decay) if decay > 0 else -math.inf
    else:
        log_decay = jnp.log1p(jnp.asarray(decay).astype(dtype) - 1)
    return jnp.where(count == 0, 0, -jnp.expm1(count * log_decay)).astype(dtype)


def debias(moments: Any, decay: Any, count: jax.Array) -> Any:
    """``m / (1 - decay**count)`` leaf by leaf, the correction in each leaf's dtype."""
    return jax.tree.map(lambda m: m / bias_correction(decay, count, m.dtype).astype(m.dtype), moments)


def moment(updates: Any, moments: Any, decay: Any, order: int = 1) -> Any:
    """``decay m + (1 - decay) g**order`` (``optax.tree.update_moment``), keeping the moments' dtypes
    when ``decay`` is a float32 array (``optax.inject_hyperparams``) and the moments are bfloat16."""
    return optax.tree.cast_like(optax.tree.update_moment(updates, moments, decay, order), moments)


def adam_direction(mu: Any, nu: Any, b1: Any, b2: Any, count: jax.Array, eps: Any) -> Any:
    """``m_hat / (sqrt(v_hat) + eps)`` with ``m_hat = m / (1 - b1^t)``, ``v_hat = v / (1 - b2^t)``."""
    return jax.tree.map(lambda m, v: m / (jnp.sqrt(v) + eps),
                        debias(mu, b1, count), debias(nu, b2, count))


def global_sum(tree: Any) -> jax.Array:
    """The sum of all entries of ``tree``, accumulated in float32 or wider (0 for an empty tree)."""
    leaves = jax.tree.leaves(tree)
    dtype = _accumulation_dtype(jnp.result_type(*leaves)) if leaves else jnp.float32
    return sum((jnp.sum(x.astype(dtype)) for x in leaves), jnp.zeros((), dtype))
