"""Hopfield layers: shapes, masks, attention equivalence (vs flax's MultiHeadAttention), update steps."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxopt_lab import hopfield


def _inputs(seed=0, b=2, q=5, n=7, d_in=6, d_stored=4):
    k1, k2 = jax.random.split(jax.random.PRNGKey(seed))
    return jax.random.normal(k1, (b, q, d_in)), jax.random.normal(k2, (b, n, d_stored))


@pytest.mark.slow
def test_shapes():
    state, stored = _inputs()
    layer = hopfield.Hopfield(6, stored_features=4, qkv_features=8, out_features=3, num_heads=2,
                              rngs=nnx.Rngs(0))
    assert layer(state, stored).shape == (2, 5, 3)
    assert layer(state[0], stored[0]).shape == (5, 3)  # no batch dimension
    lookup = hopfield.HopfieldLayer(6, num_patterns=11, pattern_features=4, num_heads=2, qkv_features=8,
                                    rngs=nnx.Rngs(1))
    assert lookup(state).shape == (2, 5, 6)
    pool = hopfield.HopfieldPooling(4, num_queries=3, query_features=6, out_features=5, rngs=nnx.Rngs(2))
    assert pool(stored).shape == (2, 3, 5)


@pytest.mark.slow
def test_one_step_hopfield_is_multihead_attention_with_the_same_projections():
    state, stored = _inputs(1)
    heads, hd = 2, 4
    ours = hopfield.Hopfield(6, stored_features=4, qkv_features=heads * hd, out_features=3, num_heads=heads,
                             rngs=nnx.Rngs(0))
    mha = nnx.MultiHeadAttention(num_heads=heads, in_features=6, in_kv_features=4, qkv_features=heads * hd,
                                 out_features=3, decode=False, rngs=nnx.Rngs(1))
    for name in ("query", "key", "value"):
        src, dst = getattr(ours, name), getattr(mha, name)
        dst.kernel.value = src.kernel.value.reshape(-1, heads, hd)
        dst.bias.value = src.bias.value.reshape(heads, hd)
    mha.out.kernel.value = ours.out.kernel.value.reshape(heads, hd, 3)
    mha.out.bias.value = ours.out.bias.value
    mask = jax.random.bernoulli(jax.random.PRNGKey(3), 0.6, (2, 5, 7)).at[..., 0].set(True)
    np.testing.assert_allclose(ours(state, stored), mha(state, stored, stored), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ours(state, stored, mask=mask), mha(state, stored, stored, mask=mask[:, None]),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_update_steps_match_an_explicit_iteration():
    state, stored = _inputs(2, d_in=4)
    layer = hopfield.Hopfield(4, qkv_features=4, num_heads=1, beta=0.9, update_steps=3, update_steps_eps=0.0,
                              rngs=nnx.Rngs(0))
    q, k, v = layer.query(state), layer.key(stored), layer.value(stored)
    for _ in range(3):
        q = jax.nn.softmax(0.9 * q @ jnp.swapaxes(k, -1, -2)) @ k
    expected = layer.out(jax.nn.softmax(0.9 * q @ jnp.swapaxes(k, -1, -2)) @ v)
    np.testing.assert_allclose(layer(state, stored), expected, rtol=1e-5, atol=1e-5)
    # with update steps the output differs from plain attention
    plain = hopfield.Hopfield(4, qkv_features=4, beta=0.9, rngs=nnx.Rngs(0))
    assert float(jnp.max(jnp.abs(plain(state, stored) - expected))) > 1e-3


@pytest.mark.slow
def test_pooling_mask_equals_dropping_the_masked_instances():
    _, stored = _inputs(3, b=3, n=9, d_stored=5)
    pool = hopfield.HopfieldPooling(5, num_queries=2, num_heads=1, update_steps=2, rngs=nnx.Rngs(0))
    mask = jnp.arange(9) < 6
    np.testing.assert_allclose(pool(stored, mask=jnp.broadcast_to(mask, (3, 9))), pool(stored[:, :6]),
                               rtol=1e-5, atol=1e-5)
    assert float(jnp.max(jnp.abs(pool(stored) - pool(stored[:, :6])))) > 1e-4


@pytest.mark.slow
def test_gradients_flow_through_update_steps():
    state, _ = _inputs(4)
    layer = hopfield.HopfieldLayer(6, num_patterns=8, update_steps=3, rngs=nnx.Rngs(0))

    def loss(model):
        return jnp.sum(model(state) ** 2)

    grads = nnx.grad(loss)(layer)
    g = grads["patterns"].value
    assert g.shape == (8, 6) and np.all(np.isfinite(g)) and float(jnp.abs(g).max()) > 0


def test_bad_input():
    state, stored = _inputs()
    with pytest.raises(ValueError, match="beta must be > 0"):
        hopfield.Hopfield(6, beta=0.0, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="multiple of num_heads"):
        hopfield.Hopfield(6, qkv_features=7, num_heads=2, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="update_steps must be"):
        hopfield.Hopfield(6, update_steps=-1, rngs=nnx.Rngs(0))
    layer = hopfield.Hopfield(6, stored_features=4, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="stored_features=4"):
        layer(state, state)
    with pytest.raises(ValueError, match="empty memory"):
        layer(state, stored[:, :0])
    with pytest.raises(ValueError, match="num_patterns must be"):
        hopfield.HopfieldLayer(6, num_patterns=0, rngs=nnx.Rngs(0))
