"""Shared fixture of the reference tests: our optimizer and a numpy transcription of the official
update, run side by side."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest


def _side_by_side(tx, init, loss, reference_step, *, steps=30, grad_fn=False):
    """Run ``tx`` and ``reference_step`` ``steps`` steps from ``init`` (a dict of numpy arrays).

    Ours runs in float64 (``jax_enable_x64``) with gradients ``jax.grad(loss)`` at its own
    iterate (handed over as ``grad_fn`` too when ``grad_fn``); ``reference_step(ref, t)`` returns
    the reference's next iterate from its current one (computing its own gradients), t from 0.

    Returns the largest ||ours − ref|| / ||ref|| over steps and leaves, and our final state.
    """
    with jax.enable_x64(True):
        params = {k: jnp.asarray(v, jnp.float64) for k, v in init.items()}
        grad = jax.grad(loss)
        extra = {"grad_fn": grad} if grad_fn else {}
        state = tx.init(params)

        @jax.jit
        def step(params, state):
            updates, state = tx.update(grad(params), state, params, **extra)
            return optax.apply_updates(params, updates), state

        ref, worst = {k: np.array(v, np.float64) for k, v in init.items()}, 0.0
        for t in range(steps):
            params, state = step(params, state)
            ref = reference_step(ref, t)
            for k in ref:
                assert params[k].dtype == jnp.float64
                diff = np.linalg.norm(np.asarray(params[k]) - ref[k]) / np.linalg.norm(ref[k])
                worst = max(worst, float(diff))
    return worst, state


@pytest.fixture
def side_by_side():
    """:func:`_side_by_side`: (tx, init, loss, reference_step, steps=30, grad_fn=False) ->
    (max relative difference, our final state)."""
    return _side_by_side
