"""Every registry optimizer takes steps through the engine on the digits MLP (the shared suite)."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxopt_lab import data, models, optim, train

# Hyperparameters an optimizer needs beyond its defaults to run on this 64-32-10 MLP.
NEEDS = {"m_sam": {"num_chunks": 2}}


@functools.lru_cache(maxsize=None)
def _problem():
    ds = data.digits(seed=0)
    apply_fn, init_fn = models.functional_init(lambda rngs: models.MLP(64, (32,), 10, rngs=rngs))

    def loss_fn(params, batch):
        return models.cross_entropy(apply_fn(params, batch[0]), batch[1])

    batches = (jnp.asarray(ds.x_train), jnp.asarray(ds.y_train))
    return loss_fn, init_fn(jax.random.key(0)), batches, len(ds.y_train)


@pytest.mark.slow
@pytest.mark.parametrize("name", optim.names())
def test_one_engine_chunk(name):
    loss_fn, params, batches, n = _problem()
    kw = NEEDS.get(name, {})
    tx = optim.get(name, learning_rate=1e-3, **kw)
    eng = train.Engine(loss_fn, tx, train.batches.epochs(n, 32), batches, num_chunks=kw.get("num_chunks", 1))
    state, metrics = eng.run(eng.init(params), jax.random.key(1), 0, 2)
    assert int(state.step) == 2
    assert np.all(np.isfinite(metrics["loss"])), name
    leaves = jax.tree.leaves(state.params)
    assert all(np.all(np.isfinite(x)) for x in leaves), name
    assert any(not np.array_equal(a, b) for a, b in zip(leaves, jax.tree.leaves(params))), name
