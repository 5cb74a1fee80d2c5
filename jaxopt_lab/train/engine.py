"""The engine: a loss, an optimizer and a sampler made into jitted, sharded chunks of training steps.

``Engine.run(state, data_key, start, length)`` is one jitted ``lax.scan`` over ``length`` steps whose
batches are ``sampler.fetch(data, sampler.plan(data_key, start + arange(length)))``; it returns the new
state and the per-step metrics (leading axis ``length``). With a mesh, jit gets explicit shardings: the
state by the FSDP rule of :mod:`jaxopt_lab.train.sharding`, the batch split over data x fsdp, the data set
and metrics replicated. Without one (``mesh=None``) the same pure functions are used unsharded; they can
be vmapped (sweeps: ``Engine.pure_run``).
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from . import sharding
from .batches import Sampler
from .state import TrainState
from .step import make_step

__all__ = ["Engine"]


class Engine:
    """Training of ``loss_fn`` with ``tx`` on ``data`` drawn by ``sampler`` (see :func:`make_step` for
    ``has_aux``, ``stateful`` and ``num_chunks``)."""

    def __init__(self, loss_fn: Callable[..., Any], tx, sampler: Sampler, data: Any, *,
                 mesh: Optional[Mesh] = None, has_aux: bool = False, stateful: bool = False,
                 num_chunks: int = 1):
        self.tx, self.sampler, self.data, self.mesh = tx, sampler, data, mesh
        if mesh is not None:
            sharding.check_batch_size(mesh, sampler.batch_size)
            constrain = functools.partial(self._constrain_batch, mesh)
        else:
            constrain = None
        self.step_fn = make_step(loss_fn, tx, has_aux=has_aux, stateful=stateful, num_chunks=num_chunks,
                                 constrain_batch=constrain, mesh=mesh)
        self._runs: dict[int, Callable] = {}
        self._init = None
        self._data = None  # the data set on the devices (run)

    @staticmethod
    def _constrain_batch(mesh, batch):
        return jax.lax.with_sharding_constraint(batch, sharding.batch_spec(mesh, batch))

    # -- pure functions (vmappable) ----------------------------------------------------------------
    def pure_init(self, params, model_state=()) -> TrainState:
        return TrainState.create(params, self.tx, model_state)

    def pure_run(self, state: TrainState, data_key, start, length: int, data=None):
        """``(state, metrics)`` after ``length`` steps from step ``start``; ``data`` defaults to the
        engine's (pass it to vmap over data sets)."""
        data = self.data if data is None else data
        plans = self.sampler.plan(data_key, jnp.asarray(start, jnp.int32) + jnp.arange(length, dtype=jnp.int32))

        def body(state, plan):
            return self.step_fn(state, self.sampler.fetch(data, plan))

        return jax.lax.scan(body, state, plans)

    # -- jitted, sharded ----------------------------------------------------------------------------
    def state_shardings(self, state_or_shapes) -> Any:
        return sharding.tree_shardings(self.mesh, state_or_shapes)

    def init(self, params, model_state=()) -> TrainState:
        """The initial :class:`TrainState`, laid out on the mesh (jitted)."""
        if self._init is None:
            out = None
            if self.mesh is not None:
                out = self.state_shardings(jax.eval_shape(self.pure_init, params, model_state))
            self._init = jax.jit(self.pure_init, out_shardings=out)
        return self._init(params, model_state)

    def place(self, state: TrainState) -> TrainState:
        """``state`` (e.g. restored, or from another mesh) laid out on this engine's mesh."""
        if self.mesh is None:
            return state
        return jax.device_put(state, self.state_shardings(state))

    def run(self, state: TrainState, data_key, start, length: int):
        """Jitted :meth:`pure_run` on the engine's data (one compile per distinct ``length``). The data
        set is an argument of the compiled program, placed on the devices once: closed over, XLA would
        fold it into the program as a constant, which made small models' steps up to 2.4x slower."""
        if self._data is None:
            self._data = self.data if self.mesh is None else jax.device_put(
                self.data, NamedSharding(self.mesh, P()))
        if length not in self._runs:
            def fn(state, data_key, start, data):
                return self.pure_run(state, data_key, start, length, data)

            if self.mesh is None:
                self._runs[length] = jax.jit(fn, donate_argnums=0)
            else:
                replicated = NamedSharding(self.mesh, P())
                shardings = self.state_shardings(jax.eval_shape(lambda s: s, state))
                self._runs[length] = jax.jit(
                    fn, in_shardings=(shardings, replicated, replicated, replicated),
                    out_shardings=(shardings, replicated), donate_argnums=0)
        return self._runs[length](state, data_key, jnp.asarray(start, jnp.int32), self._data)
