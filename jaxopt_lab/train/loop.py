"""The chunked driver: jitted chunks of ``log_every`` steps, the host in between.

Between chunks the host logs (``ctx.log``: a non-finite value stops the run as ``diverged``),
evaluates, checkpoints (``ctx.save_state``) and shows progress; nothing else leaves the device. A run
resumed from a checkpoint (``ctx.restore_state``) continues at its step with the same batches, so it ends
bit-identical to an uninterrupted one on the same mesh.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Mapping, Optional

import jax
import jax.numpy as jnp

from .engine import Engine
from .state import TrainState

__all__ = ["fit", "chunk_means"]


def chunk_means(metrics: Mapping[str, Any], prefix: str = "train_") -> dict:
    """Each per-step metric of a chunk averaged over the chunk, named ``prefix + name``."""
    return {prefix + k: jnp.mean(v) for k, v in metrics.items()}


def fit(engine: Engine, state: TrainState, ctx, *, steps: int, log_every: int, data_key,
        checkpoint_every: int = 0, evaluate: Optional[Callable[[TrainState], Mapping[str, Any]]] = None,
        scalars: Callable[[Mapping[str, Any]], Mapping[str, Any]] = chunk_means,
        log_offset: int = 0, progress: bool = True, timings: Optional[list] = None) -> TrainState:
    """Train ``state`` to ``steps`` steps with ``engine``, logging every ``log_every`` steps.

    Args:
      ctx: the run's ``Context`` (``log``, ``progress``, ``save_state``, ``restore_state``).
      checkpoint_every: save the state every that many steps (a multiple of ``log_every``; 0: never).
        With checkpoints the run first restores the latest one (resume).
      evaluate: ``state -> {name: scalar}`` logged with the chunk's metrics (e.g. a test loss).
      scalars: chunk metrics (per-step arrays) -> logged scalars; default ``train_<name>`` means.
      log_offset: added to the logged step (several trainings logged in one run, one after another).
      timings: if a list, the wall time of each chunk after the first (which includes the compile) is
        appended, in seconds.
    """
    start = 0
    if checkpoint_every:
        restored = ctx.restore_state(state)
        if restored is not None:
            start, state = restored[0], engine.place(restored[1])
    if progress:
        ctx.progress(steps, start)
    first = True
    while start < steps:
        length = min(log_every, steps - start)
        t0 = time.perf_counter()
        state, metrics = engine.run(state, data_key, start, length)
        logged = {k: v for k, v in scalars(metrics).items()}
        jax.block_until_ready(logged)
        if timings is not None and not first:
            timings.append(time.perf_counter() - t0)
        first = False
        start += length
        if evaluate is not None:
            logged.update(evaluate(state))
        ctx.log(log_offset + start, **logged)
        if checkpoint_every and start % checkpoint_every == 0:
            ctx.save_state(start, state)
    return state
