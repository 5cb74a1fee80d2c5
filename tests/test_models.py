"""Tests for jaxopt_lab.models: classifiers, the LLaMA-style decoder, RoPE, functional view, losses.

XLA compiles are the cost of these tests, so models are built once per module and every forward
pass of a model uses one input shape.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from jaxopt_lab import models

# A decoder small enough to compile in a moment but with every part (2 blocks, 4 heads of size 8).
SMALL = models.LlamaConfig(dim=32, n_layers=2, n_heads=4, hidden_dim=64, max_seq_len=16)


def param_paths(params):
    """'a/0/b'-style paths of a parameter tree's leaves."""
    flat = jax.tree_util.tree_flatten_with_path(params)[0]
    return ["/".join(str(getattr(k, "key", k)) for k in path) for path, _ in flat]


def make_mlp(rngs, **kwargs):
    return models.MLP(8, (16,), 3, rngs=rngs, **kwargs)


@pytest.fixture(scope="module")
def mlp():
    return make_mlp(nnx.Rngs(0))


@pytest.fixture(scope="module")
def cnn():
    apply_fn, init_fn = models.functional_init(lambda rngs: models.CNN(10, rngs=rngs))
    return jax.jit(apply_fn), init_fn(jax.random.key(0))


@pytest.fixture(scope="module")
def llama():
    """(apply_fn, params, jitted apply_fn); every forward pass below takes (2, 12) tokens."""
    apply_fn, init_fn = models.functional_init(lambda rngs: models.Llama(SMALL, rngs=rngs))
    return apply_fn, init_fn(jax.random.key(0)), jax.jit(apply_fn)


def tokens_2x12(seed):
    return jax.random.randint(jax.random.key(seed), (2, 12), 0, 256)


# --------------------------------------------------------------------------------------------------
# classifiers


def test_mlp_shapes_params_and_functional_apply(mlp):
    x = jax.random.normal(jax.random.key(1), (5, 8))
    logits = mlp(x)
    assert logits.shape == (5, 3)
    assert models.count_params(mlp) == 8 * 16 + 16 + 16 * 3 + 3
    deeper = nnx.eval_shape(lambda: models.MLP(8, (16, 32), 3, rngs=nnx.Rngs(0)))
    assert models.count_params(deeper) == 8 * 16 + 16 + 16 * 32 + 32 + 32 * 3 + 3
    apply_fn, params = models.functional(mlp)
    assert isinstance(params, dict) and models.count_params(params) == models.count_params(mlp)
    np.testing.assert_allclose(apply_fn(params, x), logits, rtol=1e-6)
    # apply_fn computes with the params it is given, not the module's own.
    doubled = jax.tree.map(lambda p: 2 * p, params)
    assert not np.allclose(apply_fn(doubled, x), logits)
    tanh = make_mlp(nnx.Rngs(0), activation=jnp.tanh)  # same weights, other activation
    assert not np.allclose(tanh(x), logits)
    with pytest.raises(ValueError, match="hidden"):
        models.MLP(8, (0,), 3, rngs=nnx.Rngs(0))


def test_mlp_layer_norm_makes_weights_scale_invariant():
    normed = make_mlp(nnx.Rngs(0), normalize=True)
    apply_fn, params = models.functional(normed)
    assert {p for p in param_paths(params) if "norm" in p} == {"norms/0/scale", "norms/0/bias"}
    assert models.count_params(params) == 8 * 16 + 16 + 16 * 3 + 3 + 2 * 16
    # Rescaling a LayerNorm-preceded layer changes nothing (the AdamP setting); the head is not.
    x = jax.random.normal(jax.random.key(1), (5, 8))
    scaled = jax.tree.map(lambda p: p, params)
    scaled["layers"][0] = jax.tree.map(lambda p: 3.0 * p, params["layers"][0])
    np.testing.assert_allclose(apply_fn(scaled, x), apply_fn(params, x), rtol=1e-4, atol=1e-5)
    scaled["head"] = jax.tree.map(lambda p: 3.0 * p, params["head"])
    assert not np.allclose(apply_fn(scaled, x), apply_fn(params, x))


@pytest.mark.slow
def test_cnn_shapes_and_norm_params(cnn):
    forward, params = cnn
    norm_paths = [p for p in param_paths(params) if "norm" in p]
    assert sorted(norm_paths) == ["norms/0/bias", "norms/0/scale", "norms/1/bias", "norms/1/scale"]
    # conv 3x3: (9*1*16 + 16) + (9*16*32 + 32); norms 2*(16+32); head 2*2*32*10 + 10
    assert models.count_params(params) == 160 + 4640 + 96 + 1290
    x = jax.random.uniform(jax.random.key(0), (3, 8, 8, 1))
    logits = forward(params, x)
    assert logits.shape == (3, 10) and np.all(np.isfinite(logits))
    # Examples are processed independently (no batch statistics): other rows do not matter ...
    np.testing.assert_allclose(forward(params, x.at[1:].set(0.0))[0], logits[0], rtol=1e-5, atol=1e-6)
    # ... but the image does, pixel positions included (a flipped image gives other logits).
    assert not np.allclose(forward(params, x[:, ::-1])[0], logits[0], atol=1e-4)
    deeper = nnx.eval_shape(lambda: models.CNN(4, channels=(8, 8, 8), rngs=nnx.Rngs(0)))
    assert deeper.head.kernel.value.shape == (1 * 1 * 8, 4)  # 8 -> 4 -> 2 -> 1 pixels
    with pytest.raises(ValueError, match="channels"):
        models.CNN(10, channels=(8, 8, 8, 8), rngs=nnx.Rngs(0))


# --------------------------------------------------------------------------------------------------
# LLaMA-style decoder


@pytest.mark.slow
def test_llama_output_shape_and_initial_loss(llama):
    apply_fn, params, forward = llama
    tokens = tokens_2x12(0)
    logits = forward(params, tokens)
    assert logits.shape == (2, 12, 256) and logits.dtype == jnp.float32
    # Near-uniform predictions at initialisation: the loss is close to log(256) ~ 5.55.
    assert abs(float(models.cross_entropy(logits, tokens)) - np.log(256)) < 1.5
    # apply_fn computes with the params it is given (all-zero weights give all-zero logits).
    np.testing.assert_allclose(forward(jax.tree.map(jnp.zeros_like, params), tokens), 0.0)
    with pytest.raises(ValueError, match="max_seq_len"):
        jax.eval_shape(apply_fn, params, jnp.zeros((1, SMALL.max_seq_len + 1), jnp.int32))


@pytest.mark.parametrize(
    "preset, low, high",
    [("tiny", 80e3, 150e3), ("mini", 0.7e6, 1.4e6), ("base", 4e6, 6e6), ("small", 15e6, 25e6)],
)
def test_llama_preset_parameter_counts(preset, low, high):
    config = getattr(models.LlamaConfig, preset)()
    abstract = nnx.eval_shape(lambda: models.Llama(config, rngs=nnx.Rngs(0)))  # no allocation
    count = models.count_params(abstract)
    assert low <= count <= high
    assert count == config.num_params()


def test_llama_config_overrides_tying_and_validation():
    assert models.LlamaConfig.tiny(max_seq_len=256).max_seq_len == 256
    untied, tied = models.LlamaConfig.tiny(), models.LlamaConfig.tiny(tie_embeddings=True)
    assert untied.num_params() - tied.num_params() == 256 * untied.dim
    apply_fn, init_fn = models.functional_init(lambda rngs: models.Llama(tied, rngs=rngs))
    params = jax.eval_shape(init_fn, jax.random.key(0))  # shapes only: nothing is computed
    assert models.count_params(params) == tied.num_params() and "output" not in params
    assert jax.eval_shape(apply_fn, params, jnp.zeros((1, 4), jnp.int32)).shape == (1, 4, 256)
    with pytest.raises(ValueError, match="n_heads"):
        models.LlamaConfig(dim=30, n_heads=4)
    with pytest.raises(ValueError, match="n_heads"):
        models.LlamaConfig(dim=12, n_heads=4)  # odd head dimension: no rotary pairs
    with pytest.raises(ValueError, match="n_layers"):
        models.LlamaConfig(n_layers=0)


@pytest.mark.slow
def test_llama_is_causal(llama):
    _, params, forward = llama
    tokens, t = tokens_2x12(1), 6
    tokens = tokens.at[1].set(tokens[0].at[t + 1].set((tokens[0, t + 1] + 1) % 256))
    logits = forward(params, tokens)  # row 1 differs from row 0 only in token t + 1
    np.testing.assert_allclose(logits[0, : t + 1], logits[1, : t + 1], rtol=1e-5, atol=1e-5)
    assert not np.allclose(logits[0, t + 1 :], logits[1, t + 1 :], atol=1e-4)  # the future does react


@pytest.mark.slow
def test_attention_sees_order_through_rope(llama):
    # Without positional information a causal attention output at the last position is a weighted
    # average over the *set* of past tokens, so swapping two earlier tokens could not change it.
    apply_fn, _ = models.functional_init(lambda rngs: models.CausalSelfAttention(SMALL, rngs=rngs))
    params = llama[1]["blocks"][0]["attention"]  # the decoder's first attention layer
    x = jax.random.normal(jax.random.key(0), (8, SMALL.dim))
    swapped = x.at[0].set(x[1]).at[1].set(x[0])
    out = jax.jit(apply_fn)(params, jnp.stack([x, swapped]))
    assert not np.allclose(out[0, -1], out[1, -1], atol=1e-4)


def test_rotary_embedding_norms_and_relative_positions():
    key_q, key_k = jax.random.split(jax.random.key(0))
    q, k = jax.random.normal(key_q, (16,)), jax.random.normal(key_k, (16,))
    positions = jnp.array([0, 1, 7, 100, 3, 5, 10, 12, 9, 20, 29])

    @jax.jit
    def rope(vector):  # the vector at every position of `positions`, as one (t, 1 head, d) batch
        stacked = jnp.broadcast_to(vector, (len(positions), 1, 16))
        return models.rotary_embedding(stacked, positions)[:, 0]

    rq, rk = rope(q), rope(k)
    at = {int(p): i for i, p in enumerate(positions)}
    np.testing.assert_allclose(rq[at[0]], q, rtol=1e-6)  # position 0 is the identity
    np.testing.assert_allclose(jnp.linalg.norm(rq, axis=-1), jnp.linalg.norm(q), rtol=1e-5)
    assert not np.allclose(rq[at[1]], q, atol=1e-3)
    # <R_m q, R_n k> depends only on n - m ...
    score = lambda m, n: float(rq[at[m]] @ rk[at[n]])
    np.testing.assert_allclose(score(3, 5), score(10, 12), rtol=1e-4)
    np.testing.assert_allclose(score(0, 9), score(20, 29), rtol=1e-4)
    # ... and does depend on it.
    assert abs(score(3, 5) - score(3, 12)) > 1e-2
    with pytest.raises(ValueError, match="even"):
        models.rotary_embedding(jnp.ones((2, 1, 5)), jnp.arange(2))


@pytest.mark.slow
def test_llama_trains_functionally(llama):
    # A few Adam steps on one batch must reduce the loss, with a gradient for every parameter.
    apply_fn, params, _ = llama
    assert isinstance(params, dict) and models.count_params(params) == SMALL.num_params()
    paths = set(param_paths(params))
    assert {"final_norm/scale", "blocks/0/attention_norm/scale", "blocks/1/mlp_norm/scale"} <= paths
    tokens = jax.random.randint(jax.random.key(2), (4, 13), 0, 256)
    tx = optax.adam(3e-3)

    def loss_fn(p):
        return models.cross_entropy(apply_fn(p, tokens[:, :-1]), tokens[:, 1:])

    @jax.jit
    def step(p, state):
        loss, grads = jax.value_and_grad(loss_fn)(p)
        updates, state = tx.update(grads, state, p)
        return optax.apply_updates(p, updates), state, loss, grads

    state = tx.init(params)
    new_params, state, first, grads = step(params, state)
    assert jax.tree.structure(grads) == jax.tree.structure(params)
    assert all(float(jnp.abs(g).max()) > 0 for g in jax.tree.leaves(grads))
    for _ in range(20):
        new_params, state, loss, _ = step(new_params, state)
    assert float(loss) < float(first) - 0.5


# --------------------------------------------------------------------------------------------------
# functional view


@pytest.mark.slow
def test_functional_init_deterministic_and_vmappable(mlp):
    apply_fn, init_fn = models.functional_init(make_mlp)
    first = init_fn(jax.random.key(0))
    for a, b in zip(jax.tree.leaves(first), jax.tree.leaves(init_fn(jax.random.key(0)))):
        np.testing.assert_array_equal(a, b)
    # The same parameters as the module built eagerly from the same key (nnx.Rngs(0) == key 0).
    for a, b in zip(jax.tree.leaves(first), jax.tree.leaves(models.functional(mlp)[1])):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    # An integer seed or a legacy uint32 key names the same typed key.
    for seed in (0, jax.random.PRNGKey(0)):
        np.testing.assert_array_equal(init_fn(seed)["head"]["kernel"], first["head"]["kernel"])
    keys = jax.random.split(jax.random.key(1), 3)
    batch = jax.vmap(init_fn)(keys)
    for i in range(3):
        for a, b in zip(jax.tree.leaves(batch), jax.tree.leaves(init_fn(keys[i]))):
            np.testing.assert_allclose(a[i], b, rtol=1e-6, atol=1e-7)
    kernels = batch["layers"][0]["kernel"]
    assert not np.allclose(kernels[0], kernels[1])  # different keys, different models
    x = jax.random.normal(jax.random.key(1), (5, 8))
    logits = jax.jit(jax.vmap(apply_fn, in_axes=(0, None)))(batch, x)
    assert logits.shape == (3, 5, 3)
    np.testing.assert_allclose(logits[2], apply_fn(init_fn(keys[2]), x), rtol=1e-5, atol=1e-6)


def test_functional_init_rejects_stateful_models():
    class WithBatchNorm(nnx.Module):
        def __init__(self, rngs):
            self.linear = nnx.Linear(2, 2, rngs=rngs)
            self.norm = nnx.BatchNorm(2, rngs=rngs)

        def __call__(self, x):
            return self.norm(self.linear(x))

    with pytest.raises(ValueError, match="nnx.Param"):
        models.functional_init(WithBatchNorm)


# --------------------------------------------------------------------------------------------------
# losses and metrics


def test_cross_entropy_and_accuracy():
    logits = np.array([[2.0, 0.0, -1.0], [0.0, 0.0, 0.0], [0.0, 5.0, 0.0]], np.float32)
    labels = np.array([0, 2, 0], np.int32)
    log_probs = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    expected = -log_probs[np.arange(3), labels].mean()
    np.testing.assert_allclose(models.cross_entropy(logits, labels), expected, rtol=1e-6)
    # Means over all leading axes (batch and sequence): uniform logits give log(K).
    uniform = models.cross_entropy(jnp.zeros((4, 7, 10)), jnp.zeros((4, 7), jnp.int32))
    np.testing.assert_allclose(uniform, np.log(10), rtol=1e-6)
    # Row 0 is right; row 1 is a tie, which argmax resolves to class 0 (label 2); row 2 predicts 1.
    np.testing.assert_allclose(models.accuracy(logits, labels), 1 / 3)
    np.testing.assert_allclose(models.accuracy(logits, np.array([0, 0, 1], np.int32)), 1.0)
