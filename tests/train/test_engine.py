"""The training engine on one device: samplers, the step's extra arguments, model state, wrappers, the
driver's resume, config-time refusals."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxopt_lab import data, optim, train
from jaxopt_lab.lab import ConfigError


@pytest.mark.slow
def test_epoch_sampler_matches_batch_indices_and_is_chunk_invariant():
    key, n, b = jax.random.key(3), 50, 8
    sampler = train.batches.epochs(n, b)
    steps = jnp.arange(5, 23, dtype=jnp.int32)          # crosses three epochs (6 steps each)
    chunk = np.asarray(sampler.plan(key, steps))
    for i, s in enumerate(np.asarray(steps)):
        np.testing.assert_array_equal(chunk[i], data.batch_indices(key, int(s), n, b))
        np.testing.assert_array_equal(chunk[i], sampler.plan(key, jnp.asarray([s]))[0])
    epoch = np.concatenate([data.batch_indices(key, s, n, b) for s in range(6, 12)])
    assert len(set(epoch.tolist())) == 48                # without replacement within an epoch


@pytest.mark.slow
def test_token_windows_match_sample_lm_batch():
    tokens = jnp.arange(300, dtype=jnp.int32)
    key = jax.random.key(1)
    sampler = train.batches.token_windows(300, 4, 10)
    for step in (0, 7):
        x, y = sampler.batch(tokens, key, step)
        rx, ry = data.sample_lm_batch(jax.random.fold_in(key, step), tokens, 4, 10)
        np.testing.assert_array_equal(x, rx)
        np.testing.assert_array_equal(y, ry)
        np.testing.assert_array_equal(y, x + 1)


def _quadratic_engine(tx, **kw):
    target = jnp.array([1.0, -2.0, 3.0, 0.5])

    def loss_fn(params, batch):
        return jnp.mean((batch * params["w"] - target) ** 2)

    return train.Engine(loss_fn, tx, train.batches.full_batch(), jnp.ones((4, 4)), **kw)


@pytest.mark.parametrize("name,kw", [("sam", {"rho": 0.1}), ("m_sam", {"rho": 0.1, "num_chunks": 2}),
                                     ("momo", {}), ("sophia", {})])
def test_step_feeds_extra_arguments(name, kw):
    # value, grad_fn and chunk_grad_fn on the step's own batch: a two-gradient step is not the plain one
    eng = _quadratic_engine(optim.get(name, learning_rate=0.1, **kw), num_chunks=kw.get("num_chunks", 1))
    state, metrics = eng.run(eng.init({"w": jnp.zeros(4)}), jax.random.key(0), 0, 3)
    assert np.all(np.isfinite(metrics["loss"])) and metrics["loss"][-1] < metrics["loss"][0]


def test_sam_step_matches_hand_written_sam():
    rho, lr = 0.1, 0.1
    eng = _quadratic_engine(optim.get("sam", learning_rate=lr, rho=rho))
    w = jnp.array([0.3, -0.1, 0.2, 0.0])
    state, _ = eng.run(eng.init({"w": w}), jax.random.key(0), 0, 1)
    target = jnp.array([1.0, -2.0, 3.0, 0.5])
    f = lambda w: jnp.mean((w - target) ** 2)  # noqa: E731  (the batch is all ones)
    g = jax.grad(f)(w)
    expected = w - lr * jax.grad(f)(w + rho * g / jnp.linalg.norm(g))
    np.testing.assert_allclose(state.params["w"], expected, rtol=1e-6)


def test_model_state_updated_once_per_step_by_two_gradient_optimizers():
    def loss_fn(params, count, batch):  # the model state counts forward passes that update it
        return jnp.sum((params - batch) ** 2), ({"count": count}, count + 1)

    eng = train.Engine(loss_fn, optim.get("sam", learning_rate=0.1), train.batches.full_batch(),
                       jnp.ones(3), stateful=True)
    state, metrics = eng.run(eng.init(jnp.zeros(3), jnp.int32(0)), jax.random.key(0), 0, 4)
    assert int(state.model_state) == 4 and int(state.step) == 4
    np.testing.assert_array_equal(metrics["count"], [0, 1, 2, 3])


def test_wrap_optimizer_accumulates_and_skips_nonfinite():
    acc = train.wrap_optimizer(optax.sgd(1.0), accumulate=2)
    eng = _quadratic_engine(acc)
    state, _ = eng.run(eng.init({"w": jnp.zeros(4)}), jax.random.key(0), 0, 1)
    np.testing.assert_array_equal(state.params["w"], 0.0)           # no update before 2 micro-steps
    skip = train.wrap_optimizer(optax.sgd(1.0), skip_nonfinite=3)
    bad = train.Engine(lambda p, b: jnp.sum(p * b), skip, train.batches.full_batch(), jnp.array([jnp.nan]))
    state, _ = bad.run(bad.init(jnp.ones(1)), jax.random.key(0), 0, 2)
    np.testing.assert_array_equal(state.params, 1.0)
    with pytest.raises(ValueError, match="accumulate"):
        train.wrap_optimizer(optax.sgd(1.0), accumulate=0)


def test_check_feedable():
    train.check_feedable("m_sam")
    with pytest.raises(ConfigError, match="'opt.name' = 'sam'.*grad_fn"):
        train.check_feedable("sam", supplies=("value",), key="opt.name")


def test_mesh_errors_and_sharding_rule():
    n = len(jax.devices())
    with pytest.raises(ConfigError, match="mesh.data"):
        train.make_mesh(n + 1, 1)
    with pytest.raises(ConfigError, match="mesh.fsdp"):
        train.make_mesh(0, n + 1)
    eight = jax.sharding.AbstractMesh((2, 4), train.sharding.AXES)
    train.sharding.check_batch_size(eight, 16)
    with pytest.raises(ConfigError, match="'train.batch_size' = 12: must be divisible by .* 8"):
        train.sharding.check_batch_size(eight, 12)
    P = jax.sharding.PartitionSpec
    assert train.sharding.leaf_spec((64, 256), 4) == P(None, "fsdp")     # the largest dividing axis
    assert train.sharding.leaf_spec((6, 10), 4) == P()                     # none divides: replicated
    assert train.sharding.leaf_spec((), 4) == P()
    assert train.sharding.leaf_spec((8, 8), 4) == P("fsdp")               # ties: the first


@pytest.mark.slow
def test_fit_resume_ends_identical(tmp_path):
    import ml_collections

    from jaxopt_lab.lab.run import Context

    cfg = ml_collections.ConfigDict({"seed": 0})
    x = jax.random.normal(jax.random.key(0), (40, 3))
    y = x @ jnp.array([1.0, -1.0, 2.0])

    def loss_fn(w, batch):
        return jnp.mean((batch[0] @ w - batch[1]) ** 2)

    eng = train.Engine(loss_fn, optax.adam(0.05), train.batches.epochs(40, 8), (x, y))

    def fit(run_dir, steps):
        ctx = Context(run_dir, cfg)
        try:
            return train.fit(eng, eng.init(jnp.zeros(3)), ctx, steps=steps, log_every=5, data_key=ctx.key,
                             checkpoint_every=5, progress=False)
        finally:
            ctx.close()

    straight = fit(tmp_path / "a", 20)
    fit(tmp_path / "b", 10)                         # stopped after its step-10 checkpoint
    resumed = fit(tmp_path / "b", 20)
    np.testing.assert_array_equal(straight.params, resumed.params)
    assert int(resumed.step) == 20


def test_step_keys_sampler_is_a_key_per_step():
    key = jax.random.key(2)
    sampler = train.batches.step_keys(10)
    keys = jax.random.split(key, 10)
    for step in (0, 9):
        assert jnp.array_equal(jax.random.key_data(sampler.batch(None, key, step)),
                               jax.random.key_data(keys[step]))
