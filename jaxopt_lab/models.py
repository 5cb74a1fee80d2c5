"""Small flax nnx models for the experiments, and a functional view of them for pure training code.

* :class:`MLP` and :class:`CNN` for the digits / blob classification experiments;
* :class:`Llama`, a small LLaMA-style decoder (Touvron et al. 2023, "LLaMA: Open and Efficient
  Foundation Language Models", arXiv:2302.13971) for the byte-level language-model experiments,
  sized by :class:`LlamaConfig` presets from ~100k to ~20M parameters;
* :func:`functional` / :func:`functional_init`: ``apply_fn(params, x)`` with ``params`` a plain nested
  dict of arrays, and ``init_fn(key) -> params``, so that training steps are pure functions that
  ``jit``, ``grad`` and ``vmap`` (``lab.sweep`` vmaps ``init_fn`` over seeds);
* :func:`cross_entropy`, :func:`accuracy`, :func:`count_params`.

Normalization modules are named ``*norm*`` (``norms``, ``attention_norm``, ``mlp_norm``,
``final_norm``), so a mask such as SAM-ON's (perturb only normalization parameters) can select them
by their parameter path. No model keeps mutable state (no batch statistics, no dropout RNG): the
parameters are the whole state.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import optax
from flax import nnx
from jaxtyping import Array, Float, Int, PRNGKeyArray

from .llama_config import LlamaConfig  # noqa: F401 -- sizes, kept jax-free for the config rules

__all__ = [
    "MLP",
    "CNN",
    "LlamaConfig",
    "Llama",
    "CausalSelfAttention",
    "SwiGLU",
    "rotary_embedding",
    "count_params",
    "functional",
    "functional_init",
    "cross_entropy",
    "accuracy",
]

Params = Any  # a nested dict of arrays


# --------------------------------------------------------------------------------------------------
# classifiers


class MLP(nnx.Module):
    """Multi-layer perceptron ``Linear -> [LayerNorm] -> activation`` per hidden layer, then a linear
    read-out to ``num_classes`` logits.

    ``normalize=True`` puts a LayerNorm after every hidden Linear, which makes that Linear's weight
    scale-invariant (the setting of AdamP, arXiv:2006.08217) and gives SAM-ON normalization
    parameters to perturb.

    >>> model = MLP(64, (32,), 10, rngs=nnx.Rngs(0))
    >>> model(jnp.zeros((5, 64))).shape
    (5, 10)
    """

    def __init__(
        self,
        in_features: int,
        hidden: Sequence[int] = (64,),
        num_classes: int = 10,
        *,
        rngs: nnx.Rngs,
        activation: Callable[[Array], Array] = nnx.relu,
        normalize: bool = False,
    ):
        hidden = tuple(hidden)
        if in_features < 1 or num_classes < 1 or any(h < 1 for h in hidden):
            raise ValueError(
                "in_features, hidden sizes and num_classes must be >= 1, got "
                f"in_features={in_features}, hidden={hidden}, num_classes={num_classes}"
            )
        sizes = (in_features, *hidden)
        self.layers = nnx.List([nnx.Linear(a, b, rngs=rngs) for a, b in zip(sizes, sizes[1:])])
        self.norms = nnx.List([nnx.LayerNorm(h, rngs=rngs) for h in hidden] if normalize else [])
        self.head = nnx.Linear(sizes[-1], num_classes, rngs=rngs)
        self.activation = activation

    def __call__(self, x: Float[Array, "... d"]) -> Float[Array, "... k"]:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if len(self.norms):
                x = self.norms[i](x)
            x = self.activation(x)
        return self.head(x)


class CNN(nnx.Module):
    """A small convolutional classifier for NHWC images (default 8x8x1 digits).

    Each block is ``3x3 conv -> LayerNorm over channels -> ReLU -> 2x2 max-pool``, then a linear
    read-out of the flattened features. LayerNorm instead of BatchNorm keeps the model a pure
    function of its parameters (no batch statistics), while still giving the per-channel affine
    normalization parameters (``norms/i/scale``, ``norms/i/bias``) that SAM-ON
    (arXiv:2306.04226) perturbs.

    >>> model = CNN(10, rngs=nnx.Rngs(0))
    >>> model(jnp.zeros((5, 8, 8, 1))).shape
    (5, 10)
    """

    def __init__(
        self,
        num_classes: int = 10,
        channels: Sequence[int] = (16, 32),
        *,
        rngs: nnx.Rngs,
        input_shape: tuple[int, int, int] = (8, 8, 1),
    ):
        channels = tuple(channels)
        height, width, in_channels = input_shape
        # Each block halves the spatial size (floor), and every block must see at least 2x2.
        if not channels or min(height, width) < 2 ** len(channels):
            raise ValueError(
                f"channels must have between 1 and log2(min(H, W)) = "
                f"{int(math.log2(min(height, width)))} entries for input_shape={input_shape}, "
                f"got {channels}"
            )
        sizes = (in_channels, *channels)
        self.convs = nnx.List(
            [nnx.Conv(a, b, (3, 3), padding="SAME", rngs=rngs) for a, b in zip(sizes, sizes[1:])]
        )
        self.norms = nnx.List([nnx.LayerNorm(c, rngs=rngs) for c in channels])
        pooled = (height >> len(channels)) * (width >> len(channels))  # each 2x2 pool floors H/2, W/2
        self.head = nnx.Linear(pooled * channels[-1], num_classes, rngs=rngs)

    def __call__(self, x: Float[Array, "n h w c"]) -> Float[Array, "n k"]:
        for conv, norm in zip(self.convs, self.norms):
            x = nnx.relu(norm(conv(x)))
            x = nnx.max_pool(x, window_shape=(2, 2), strides=(2, 2))
        return self.head(x.reshape(*x.shape[:-3], -1))


# --------------------------------------------------------------------------------------------------
# LLaMA-style decoder


def rotary_embedding(
    x: Float[Array, "... t h d"], positions: Int[Array, " t"], theta: float = 10000.0
) -> Float[Array, "... t h d"]:
    """Rotary position embedding (RoPE; Su et al. 2021, "RoFormer", arXiv:2104.09864).

    Coordinate pairs ``(x_i, x_{i + d/2})`` of the vector at position ``m`` are rotated by the angle
    ``m * theta^(-2i/d)``, i = 0..d/2-1 (the "rotate-half" pairing of GPT-NeoX / Hugging Face LLaMA;
    Meta's LLaMA pairs adjacent coordinates, which is the same map up to a fixed permutation).
    Rotations preserve norms, and ``<R_m q, R_n k> = <q, R_{n-m} k>`` depends on positions only
    through ``n - m``, which is what makes attention scores relative-position aware.
    """
    d = x.shape[-1]
    if d % 2:
        raise ValueError(f"rotary_embedding needs an even last dimension, got {d}")
    half = d // 2
    frequencies = theta ** (-jnp.arange(half, dtype=jnp.float32) / half)
    angles = positions.astype(jnp.float32)[:, None] * frequencies  # (t, d/2)
    cos, sin = jnp.cos(angles)[:, None, :], jnp.sin(angles)[:, None, :]  # broadcast over heads
    x1, x2 = x[..., :half].astype(jnp.float32), x[..., half:].astype(jnp.float32)
    rotated = jnp.concatenate([x1 * cos - x2 * sin, x1 * sin + x2 * cos], axis=-1)
    return rotated.astype(x.dtype)


class CausalSelfAttention(nnx.Module):
    """Multi-head causal self-attention with rotary embeddings on queries and keys.

    ``softmax(q k^T / sqrt(d_head) + M) v`` per head, with ``M_ts = -inf`` for ``s > t`` (a token
    attends only to itself and the past). No biases, as in LLaMA.
    """

    def __init__(self, config: LlamaConfig, *, rngs: nnx.Rngs):
        d = config.dim
        self.n_heads, self.head_dim = config.n_heads, config.head_dim
        self.rope_theta = config.rope_theta
        self.q_proj = nnx.Linear(d, d, use_bias=False, rngs=rngs)
        self.k_proj = nnx.Linear(d, d, use_bias=False, rngs=rngs)
        self.v_proj = nnx.Linear(d, d, use_bias=False, rngs=rngs)
        self.o_proj = nnx.Linear(d, d, use_bias=False, rngs=rngs)

    def __call__(self, x: Float[Array, "... t d"]) -> Float[Array, "... t d"]:
        t = x.shape[-2]
        heads = lambda y: y.reshape(*y.shape[:-1], self.n_heads, self.head_dim)
        positions = jnp.arange(t)
        q = rotary_embedding(heads(self.q_proj(x)), positions, self.rope_theta)
        k = rotary_embedding(heads(self.k_proj(x)), positions, self.rope_theta)
        v = heads(self.v_proj(x))
        scores = jnp.einsum("...thd,...shd->...hts", q, k) / math.sqrt(self.head_dim)
        causal = jnp.tril(jnp.ones((t, t), dtype=bool))
        # The most negative finite number rather than -inf: exp underflows to exactly 0 either way,
        # and a finite value cannot produce inf - inf = NaN in any derivative.
        scores = jnp.where(causal, scores.astype(jnp.float32), jnp.finfo(jnp.float32).min)
        weights = jax.nn.softmax(scores, axis=-1).astype(v.dtype)
        mixed = jnp.einsum("...hts,...shd->...thd", weights, v)
        return self.o_proj(mixed.reshape(*mixed.shape[:-2], -1))


class SwiGLU(nnx.Module):
    """LLaMA's gated MLP, ``down_proj(silu(gate_proj(x)) * up_proj(x))``.

    SwiGLU from Shazeer 2020, "GLU Variants Improve Transformer", arXiv:2002.05202.
    """

    def __init__(self, dim: int, hidden_dim: int, *, rngs: nnx.Rngs):
        self.gate_proj = nnx.Linear(dim, hidden_dim, use_bias=False, rngs=rngs)
        self.up_proj = nnx.Linear(dim, hidden_dim, use_bias=False, rngs=rngs)
        self.down_proj = nnx.Linear(hidden_dim, dim, use_bias=False, rngs=rngs)

    def __call__(self, x: Float[Array, "... d"]) -> Float[Array, "... d"]:
        return self.down_proj(nnx.silu(self.gate_proj(x)) * self.up_proj(x))


class _Block(nnx.Module):
    """Pre-norm residual block: ``x + attn(norm(x))``, then ``x + mlp(norm(x))``."""

    def __init__(self, config: LlamaConfig, *, rngs: nnx.Rngs):
        self.attention_norm = nnx.RMSNorm(config.dim, epsilon=config.norm_eps, rngs=rngs)
        self.attention = CausalSelfAttention(config, rngs=rngs)
        self.mlp_norm = nnx.RMSNorm(config.dim, epsilon=config.norm_eps, rngs=rngs)
        self.mlp = SwiGLU(config.dim, config.hidden_dim, rngs=rngs)

    def __call__(self, x: Float[Array, "... t d"]) -> Float[Array, "... t d"]:
        x = x + self.attention(self.attention_norm(x))
        return x + self.mlp(self.mlp_norm(x))


class Llama(nnx.Module):
    """A small LLaMA-style decoder-only transformer over byte tokens.

    ``tokens -> embedding -> n_layers x [RMSNorm -> causal MHA with RoPE -> +residual,
    RMSNorm -> SwiGLU -> +residual] -> RMSNorm -> linear -> logits`` (arXiv:2302.13971). RMSNorm is
    ``x / sqrt(mean(x^2) + eps) * scale`` (Zhang & Sennrich 2019, arXiv:1910.07467), flax's
    ``nnx.RMSNorm``. With ``tie_embeddings`` the output projection is the transposed embedding.

    >>> model = Llama(LlamaConfig.tiny(), rngs=nnx.Rngs(0))
    >>> model(jnp.zeros((2, 16), jnp.int32)).shape
    (2, 16, 256)
    """

    def __init__(self, config: LlamaConfig, *, rngs: nnx.Rngs):
        self.config = config
        # GPT-2's 0.02 embedding scale: every block reads the stream through an RMSNorm, so only the
        # ratio of the embedding to the block outputs matters, and a small embedding keeps the tied
        # read-out's initial logits near zero (initial loss ~ log(vocab_size)).
        self.embedding = nnx.Embed(
            config.vocab_size, config.dim, embedding_init=nnx.initializers.normal(0.02), rngs=rngs
        )
        self.blocks = nnx.List([_Block(config, rngs=rngs) for _ in range(config.n_layers)])
        self.final_norm = nnx.RMSNorm(config.dim, epsilon=config.norm_eps, rngs=rngs)
        self.output = (
            None
            if config.tie_embeddings
            else nnx.Linear(config.dim, config.vocab_size, use_bias=False, rngs=rngs)
        )

    def __call__(self, tokens: Int[Array, "... t"]) -> Float[Array, "... t v"]:
        if tokens.shape[-1] > self.config.max_seq_len:
            raise ValueError(
                f"sequence length {tokens.shape[-1]} exceeds max_seq_len={self.config.max_seq_len}"
            )
        x = self.embedding(tokens)
        for block in self.blocks:
            x = block(x)
        x = self.final_norm(x)
        return self.embedding.attend(x) if self.output is None else self.output(x)


# --------------------------------------------------------------------------------------------------
# functional view


def count_params(model_or_params) -> int:
    """Number of scalar parameters of an nnx Module (its ``nnx.Param`` variables) or of a pytree of
    arrays. Abstract models and trees (``nnx.eval_shape``, ``jax.eval_shape``) work too, so large
    presets can be counted without allocating them."""
    tree = (
        nnx.state(model_or_params, nnx.Param)
        if isinstance(model_or_params, nnx.Module)
        else model_or_params
    )
    return sum(math.prod(getattr(leaf, "shape", ())) for leaf in jax.tree.leaves(tree))


def functional(model: nnx.Module) -> tuple[Callable[..., Any], Params]:
    """Split a module into a pure ``apply_fn(params, x, **kwargs)`` and its ``params``.

    ``params`` is a plain nested dict of arrays (``nnx.split(model, nnx.Param, ...)`` then
    ``to_pure_dict``), keyed by the module's attribute path (``{"layers": {0: {"kernel": ...}}}``),
    so optax, ``jax.grad``, ``vmap`` and path-based masks work on it directly. Any non-parameter
    state is closed over as a constant. ``apply_fn(params, x) == model(x)``.
    """
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)

    def apply_fn(params: Params, *args, **kwargs):
        return nnx.merge(graphdef, nnx.State(params), rest)(*args, **kwargs)

    return apply_fn, params.to_pure_dict()


def _typed_key(key) -> PRNGKeyArray:
    # nnx.Rngs wants a typed key; also accept an integer seed or a legacy uint32[2] PRNGKey.
    key = jnp.asarray(key)
    if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        return key
    return jax.random.key(key) if key.ndim == 0 else jax.random.wrap_key_data(key)


def functional_init(
    make_model: Callable[[nnx.Rngs], nnx.Module],
) -> tuple[Callable[..., Any], Callable[[PRNGKeyArray], Params]]:
    """``(apply_fn, init_fn)`` for a model builder ``make_model(rngs) -> Module``.

    ``init_fn(key) -> params`` (``key`` a typed or legacy PRNG key, or an integer seed) builds the
    module from ``nnx.Rngs(key)`` and returns its parameters as in :func:`functional`: the values
    of ``functional(make_model(nnx.Rngs(key)))[1]``. It is a pure, jitted function of the key, so ``jax.vmap(init_fn)(keys)`` gives a batch of independently
    initialised models (one per seed). Jitting it compiles the whole initialisation once, instead of
    one small program per parameter shape as eager module construction does. The module structure
    for ``apply_fn`` is traced abstractly (``nnx.eval_shape``), without allocating weights.

    Only models whose whole state is ``nnx.Param`` qualify (no batch statistics, no stored RNG
    streams), since any other state could not be shared across keys.

    >>> apply_fn, init_fn = functional_init(lambda rngs: MLP(4, (8,), 3, rngs=rngs))
    >>> apply_fn(init_fn(jax.random.key(0)), jnp.ones((2, 4))).shape
    (2, 3)
    """
    abstract = nnx.eval_shape(lambda: make_model(nnx.Rngs(0)))
    graphdef, _, rest = nnx.split(abstract, nnx.Param, ...)
    if jax.tree.leaves(rest):
        raise ValueError(
            "make_model must build a module whose only state is nnx.Param; found other state: "
            f"{jax.tree.map(lambda leaf: leaf.shape, rest)}"
        )

    @jax.jit
    def init_fn(key: PRNGKeyArray) -> Params:
        return nnx.state(make_model(nnx.Rngs(_typed_key(key))), nnx.Param).to_pure_dict()

    def apply_fn(params: Params, *args, **kwargs):
        return nnx.merge(graphdef, nnx.State(params), rest)(*args, **kwargs)

    return apply_fn, init_fn


# --------------------------------------------------------------------------------------------------
# losses and metrics


@jax.jit  # one small program instead of a compile per eager op; inlined when called under jit
def cross_entropy(logits: Float[Array, "... k"], labels: Int[Array, "..."]) -> Float[Array, ""]:
    """Mean softmax cross-entropy ``mean(logsumexp(z) - z_y)`` over all leading axes (examples, or
    examples and positions for a language model)."""
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


@jax.jit
def accuracy(logits: Float[Array, "... k"], labels: Int[Array, "..."]) -> Float[Array, ""]:
    """Fraction of positions where ``argmax(logits) == label``."""
    return jnp.mean(jnp.argmax(logits, axis=-1) == labels)
