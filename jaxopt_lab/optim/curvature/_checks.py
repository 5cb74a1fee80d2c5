"""Checks of concrete hyperparameters: a one-line ``ValueError`` naming the argument, its value and the
allowed range. Traced values (``optax.inject_hyperparams``) are never checked or branched on."""

from __future__ import annotations

import math
from typing import Any, Optional

import jax
import optax


def concrete(value: Any) -> Optional[float]:
    """``value`` as a float when it is a concrete Python/NumPy number, else ``None``."""
    if isinstance(value, (jax.core.Tracer, bool)) or callable(value):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def check_int(owner: str, name: str, value: Any, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{owner}: {name} must be an int >= {minimum}, got {name}={value!r}")


def check_range(owner: str, name: str, value: Any, low: float, high: float, *,
                low_open: bool = False, high_open: bool = True) -> None:
    v = concrete(value)
    if v is None:
        return
    ok = (v > low if low_open else v >= low) and (v < high if high_open else v <= high)
    if not (ok and math.isfinite(v)):
        interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        raise ValueError(f"{owner}: {name} must be in {interval}, got {name}={value!r}")


def check_nonnegative(owner: str, name: str, value: Any) -> None:
    check_range(owner, name, value, 0.0, math.inf)


def check_positive(owner: str, name: str, value: Any) -> None:
    check_range(owner, name, value, 0.0, math.inf, low_open=True)


def check_choice(owner: str, name: str, value: Any, choices: tuple) -> None:
    if value not in choices:
        raise ValueError(f"{owner}: {name} must be one of {choices}, got {name}={value!r}")


def with_learning_rate(owner: str, direction, learning_rate: optax.ScalarOrSchedule,
                       weight_decay: Any = 0.0, mask: Any = None):
    """The alias ``chain(direction, add_decayed_weights(weight_decay), scale_by_learning_rate)``."""
    if not callable(learning_rate):
        check_nonnegative(owner, "learning_rate", learning_rate)
    check_nonnegative(owner, "weight_decay", weight_decay)
    if isinstance(weight_decay, (int, float)) and weight_decay == 0:
        return optax.chain(direction, optax.scale_by_learning_rate(learning_rate))
    return optax.chain(direction, optax.add_decayed_weights(weight_decay, mask),
                       optax.scale_by_learning_rate(learning_rate))


def need(owner: str, name: str, value: Any) -> None:
    if value is None:
        raise ValueError(f"{owner} needs the extra argument {name} "
                         f"(call tx.update(grads, state, params, {name}=...))")
