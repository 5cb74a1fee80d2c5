"""One training step that can drive every registry optimizer.

The step offers the optimizer every extra argument of the registry's contract, all on the step's own
batch: ``value`` (the loss), ``grad_fn(params) -> grads`` (two-gradient methods: SAM, GAM, MARS, Sophia,
...) and ``chunk_grad_fn(params, c) -> grads`` of micro-batch ``c`` of ``num_chunks`` (m-sharpness,
"Sharpness-Aware Minimization for Efficiently Improving Generalization", arXiv:2010.01412, Section 4).
:func:`check_feedable` refuses, at config time, an optimizer that reads an argument an experiment cannot
supply (e.g. a loss with no ``grad_fn`` because its gradient is not a function of the parameters alone).

A loss is ``loss_fn(params, batch) -> loss`` or, with ``has_aux``, ``-> (loss, metrics dict)``; a model with
non-trained state (BatchNorm statistics) uses ``stateful=True`` and
``loss_fn(params, model_state, batch) -> (loss, (metrics, new_model_state))``. The new model state comes
from the first evaluation only; ``grad_fn`` and ``chunk_grad_fn`` evaluate with the state the step began
with and discard theirs, so a two-gradient optimizer does not update the statistics twice.

**m-sharpness per shard.** With a mesh whose ``data`` size equals ``num_chunks``, chunk ``c`` is exactly
the batch rows data shard ``c`` holds, so ``chunk_grad_fn`` vmapped over the chunks (as ``m_sam`` calls it)
runs under ``shard_map``: each data shard takes the gradient of its own rows at its own (perturbed)
parameters, and no shard sees another's examples. Any other mesh (``data`` != ``num_chunks``: a chunk
spans several shards or a shard holds several chunks) computes the same chunks under GSPMD. The per-shard
path requires the vmapped indices to be the chunks in order (``0 .. num_chunks - 1``); other indices give
NaN gradients rather than silently wrong ones.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Optional

import jax
import jax.numpy as jnp
import optax
from jax.sharding import Mesh, PartitionSpec as P

from jaxopt_lab import optim
from jaxopt_lab.lab.config import ConfigError
from jaxopt_lab.optim.sharpness import chunked_grad_fn

from .state import TrainState

__all__ = ["EXTRA_ARGS", "check_feedable", "wrap_optimizer", "make_step"]

#: The extra ``update`` arguments the engine's step supplies.
EXTRA_ARGS = ("value", "grad_fn", "chunk_grad_fn")


def check_feedable(name: str, supplies: Iterable[str] = EXTRA_ARGS, key: str = "optimizer.name") -> None:
    """``ConfigError`` (one line) if optimizer ``name`` reads an extra argument not in ``supplies``."""
    missing = [a for a in optim.info(name).extra_args if a not in tuple(supplies)]
    if missing:
        raise ConfigError(f"config key {key!r} = {name!r}: reads the extra argument(s) {missing} which this "
                          f"experiment cannot supply (it supplies {sorted(supplies)}); choose an optimizer "
                          f"that needs none of them")


def wrap_optimizer(tx, *, accumulate: int = 1, skip_nonfinite: int = 0):
    """``tx`` with optional gradient accumulation over ``accumulate`` steps (``optax.MultiSteps``: an
    update every ``accumulate`` steps from the mean gradient; extra arguments are those of the last
    micro-batch) and, if ``skip_nonfinite > 0``, ``optax.apply_if_finite`` (a step with a non-finite update
    is skipped, at most ``skip_nonfinite`` in a row)."""
    for name, value, low in (("accumulate", accumulate, 1), ("skip_nonfinite", skip_nonfinite, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    if skip_nonfinite:
        tx = optax.apply_if_finite(tx, skip_nonfinite)
    if accumulate > 1:
        tx = optax.MultiSteps(tx, every_k_schedule=accumulate).gradient_transformation()
    return tx


def make_step(loss_fn: Callable[..., Any], tx, *, has_aux: bool = False, stateful: bool = False,
              num_chunks: int = 1, constrain_batch: Optional[Callable[[Any], Any]] = None,
              mesh: Optional[Mesh] = None):
    """``step(state: TrainState, batch) -> (state, metrics)``, pure; ``metrics["loss"]`` is the loss.

    ``num_chunks``: how many micro-batches ``chunk_grad_fn`` splits the batch into (the optimizer's own
    ``num_chunks`` for ``m_sam``; the batch size must be divisible by it). ``constrain_batch``: applied
    to the batch first (the engine's sharding constraint). ``mesh``: the engine's mesh; if its ``data``
    size is ``num_chunks`` (> 1), chunk gradients run per data shard (module docstring).
    """

    def evaluate(params, model_state, batch):
        if stateful:
            loss, (metrics, new_model_state) = loss_fn(params, model_state, batch)
        elif has_aux:
            (loss, metrics), new_model_state = loss_fn(params, batch), model_state
        else:
            loss, metrics, new_model_state = loss_fn(params, batch), {}, model_state
        return loss, (dict(metrics), new_model_state)

    per_shard = mesh is not None and num_chunks > 1 and mesh.shape["data"] == num_chunks
    if per_shard:
        shard_chunk_grad = _per_shard_chunk_grad(evaluate, mesh, num_chunks)

    def step(state: TrainState, batch):
        if constrain_batch is not None:
            batch = constrain_batch(batch)
        (loss, (metrics, model_state)), grads = jax.value_and_grad(evaluate, has_aux=True)(
            state.params, state.model_state, batch)

        def loss_on(params, b):  # the step's model state, its update discarded
            return evaluate(params, state.model_state, b)[0]

        if per_shard:
            chunk_grad = lambda p, c: shard_chunk_grad(p, c, state.model_state, batch)  # noqa: E731
        else:  # built only when called: a batch that cannot be chunked is fine for other optimizers
            chunk_grad = lambda p, c: chunked_grad_fn(loss_on, batch, num_chunks)(p, c)  # noqa: E731
        updates, opt_state = tx.update(
            grads, state.opt_state, state.params, value=loss,
            grad_fn=lambda p: jax.grad(loss_on)(p, batch), chunk_grad_fn=chunk_grad)
        params = optax.apply_updates(state.params, updates)
        return TrainState(params, opt_state, state.step + 1, model_state), {"loss": loss, **metrics}

    return step


def _per_shard_chunk_grad(evaluate, mesh: Mesh, num_chunks: int):
    """``f(params, c, model_state, batch)``: the gradient on chunk ``c``; vmapped over ``c`` (and
    possibly ``params``) it is a ``shard_map`` over ``data`` where shard ``i`` differentiates on its own
    rows (chunk ``i``) at its own parameters."""

    def chunk_loss(params, model_state, rows):
        return evaluate(params, model_state, rows)[0]

    @jax.custom_batching.custom_vmap
    def f(params, c, model_state, batch):
        return chunked_grad_fn(lambda p, b: chunk_loss(p, model_state, b), batch, num_chunks)(params, c)

    @f.def_vmap
    def rule(axis_size, in_batched, params, c, model_state, batch):
        p_batched, c_batched, s_batched, b_batched = in_batched
        if axis_size != num_chunks or not c_batched or any(jax.tree.leaves((s_batched, b_batched))):
            # not the chunks of one batch: the plain (GSPMD) vmap
            axes = jax.tree.map(lambda b: 0 if b else None, tuple(in_batched))
            out = jax.vmap(f.fun, in_axes=axes)(params, c, model_state, batch)
            return out, jax.tree.map(lambda _: True, out)
        # every chunk gets its own copy of the parameters (sharded over data: no copy is gathered)
        params = jax.tree.map(lambda x, b: x if b else jnp.broadcast_to(x, (num_chunks, *x.shape)),
                              params, p_batched)

        def per_shard(params, model_state, rows):  # params (1, ...), rows: this shard's chunk
            grads = jax.grad(chunk_loss)(jax.tree.map(lambda x: x[0], params), model_state, rows)
            return jax.tree.map(lambda g: g[None], grads)

        grads = jax.shard_map(per_shard, mesh=mesh, in_specs=(P("data"), P(), P("data")),
                              out_specs=P("data"), axis_names={"data"})(params, model_state, batch)
        in_order = jnp.all(c == jnp.arange(num_chunks))  # shard i holds chunk i only
        grads = jax.tree.map(lambda g: jnp.where(in_order, g, jnp.nan), grads)
        return grads, jax.tree.map(lambda _: True, grads)

    return f
