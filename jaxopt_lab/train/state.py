"""The state a training run carries from step to step."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax.numpy as jnp

__all__ = ["TrainState"]


class TrainState(NamedTuple):
    """Everything a run needs to continue: a pytree, so it jits, shards and checkpoints as one.

    Attributes:
      params: the trained parameters.
      opt_state: the optimizer's state.
      step: number of steps taken (int32 scalar).
      model_state: non-trained model state (e.g. BatchNorm statistics); ``()`` when the model has none.
        It is updated once per step, by the first loss evaluation: an optimizer that evaluates more
        gradients (SAM, ``grad_fn``) sees the state as it was before the step and does not update it.
    """

    params: Any
    opt_state: Any
    step: Any
    model_state: Any = ()

    @classmethod
    def create(cls, params, tx, model_state=()) -> "TrainState":
        return cls(params, tx.init(params), jnp.zeros([], jnp.int32), model_state)
