"""Hopfield layers in flax nnx, in the spirit of ``hflayers`` (github.com/ml-jku/hopfield-layers).

"Hopfield Networks is All You Need" (Ramsauer et al. 2020, arXiv:2008.02217). Per head, with projected
state (query) patterns ``Q = R W_Q``, stored (key) patterns ``K = Y W_K`` and pattern projections
(values) ``V = Y W_V``::

    xi <- softmax(beta xi K^T) K     repeated up to ``update_steps`` times (stop once |step| < eps),
    Z   = softmax(beta xi K^T) V,    output  Z W_O.

With ``update_steps=0`` a layer is exactly multi-head attention with the same projections. The state
updates run on :class:`jaxopt_lab.hopfield.HopfieldRetrieval` (``differentiation="unroll"``, so the layer
backpropagates through the steps taken, as hflayers does).

Three layers, as in hflayers:

* :class:`Hopfield`: association of a state with stored patterns, both inputs (``layer(state, stored)``).
* :class:`HopfieldLayer`: the stored patterns are trainable parameters (a learned lookup table).
* :class:`HopfieldPooling`: the state patterns are trainable queries (pools a set into
  ``num_queries`` vectors, e.g. multiple-instance learning).

Differences from hflayers' defaults, on purpose (with them on, plain retrieval fails;
github.com/ml-jku/hopfield-layers/issues/12): no input
normalisation unless ``normalize=True``, no dropout, and ``mask`` is True where attention *is* allowed
(JAX's convention; PyTorch's ``key_padding_mask`` is the opposite).
"""

from __future__ import annotations

import math
from typing import Optional

import jax
import jax.numpy as jnp
from flax import nnx
from jaxtyping import Array, Bool, Float

from .energies import check_beta
from .retrieval import HopfieldRetrieval, hopfield_update

__all__ = ["Hopfield", "HopfieldLayer", "HopfieldPooling"]


def _check_positive_int(value, name, allow_zero=False):
    low = 0 if allow_zero else 1
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")


class Hopfield(nnx.Module):
    """Multi-head Hopfield association ``layer(state, stored, values=None, mask=None)``.

    Args:
      in_features: size of the state (query) patterns.
      stored_features: size of the stored patterns (default ``in_features``).
      qkv_features: size of the projected association space over all heads (default ``in_features``);
        each head uses ``qkv_features // num_heads``.
      out_features: output size (default ``in_features``).
      num_heads: number of heads.
      beta: inverse temperature; ``None`` means ``1 / sqrt(head_dim)`` (attention's scaling).
      update_steps: state updates before the read-out; 0 is plain attention.
      update_steps_eps: stop updating a query once its step ``|xi_{t+1} - xi_t|_2 < eps``.
      normalize: LayerNorm on the state and stored inputs (hflayers' default; off here).
      use_bias: biases in the projections.
    """

    def __init__(self, in_features: int, *, stored_features: Optional[int] = None,
                 qkv_features: Optional[int] = None, out_features: Optional[int] = None,
                 num_heads: int = 1, beta: Optional[float] = None, update_steps: int = 0,
                 update_steps_eps: float = 1e-4, normalize: bool = False, use_bias: bool = True,
                 rngs: nnx.Rngs):
        stored_features = in_features if stored_features is None else stored_features
        qkv_features = in_features if qkv_features is None else qkv_features
        out_features = in_features if out_features is None else out_features
        for name, value in (("in_features", in_features), ("stored_features", stored_features),
                            ("qkv_features", qkv_features), ("out_features", out_features),
                            ("num_heads", num_heads)):
            _check_positive_int(value, name)
        _check_positive_int(update_steps, "update_steps", allow_zero=True)
        if qkv_features % num_heads:
            raise ValueError(f"qkv_features ({qkv_features}) must be a multiple of num_heads ({num_heads})")
        if beta is not None:
            check_beta(beta)
        if not update_steps_eps >= 0:
            raise ValueError(f"update_steps_eps must be >= 0, got {update_steps_eps!r}")
        self.num_heads = num_heads
        self.head_dim = qkv_features // num_heads
        self.beta = 1.0 / math.sqrt(self.head_dim) if beta is None else float(beta)
        self.update_steps = update_steps
        self.update_steps_eps = update_steps_eps
        self.query = nnx.Linear(in_features, qkv_features, use_bias=use_bias, rngs=rngs)
        self.key = nnx.Linear(stored_features, qkv_features, use_bias=use_bias, rngs=rngs)
        self.value = nnx.Linear(stored_features, qkv_features, use_bias=use_bias, rngs=rngs)
        self.out = nnx.Linear(qkv_features, out_features, use_bias=use_bias, rngs=rngs)
        self.state_norm = nnx.LayerNorm(in_features, rngs=rngs) if normalize else None
        self.stored_norm = nnx.LayerNorm(stored_features, rngs=rngs) if normalize else None

    def _heads(self, x):  # ... x L x (H hd) -> ... x H x L x hd
        x = x.reshape(*x.shape[:-1], self.num_heads, self.head_dim)
        return jnp.moveaxis(x, -2, -3)

    def __call__(self, state: Float[Array, "... q d_in"], stored: Float[Array, "... n d_stored"],
                 values: Optional[Float[Array, "... n d_stored"]] = None,
                 mask: Optional[Bool[Array, "... q n"]] = None) -> Float[Array, "... q d_out"]:
        """``state``: ``... x q x in_features``; ``stored`` (and ``values``, default ``stored``):
        ``... x n x stored_features``; ``mask`` broadcastable to ``... x q x n`` (True = attend)."""
        if stored.shape[-2] == 0:
            raise ValueError(f"stored is an empty memory (shape {stored.shape}); store at least one pattern")
        if stored.shape[-1] != self.key.in_features:
            raise ValueError(f"stored has {stored.shape[-1]} features per pattern, expected "
                             f"stored_features={self.key.in_features}")
        if state.shape[-1] != self.query.in_features:
            raise ValueError(f"state has {state.shape[-1]} features, expected in_features="
                             f"{self.query.in_features}")
        values = stored if values is None else values
        if self.state_norm is not None:
            state, stored, values = self.state_norm(state), self.stored_norm(stored), self.stored_norm(values)
        q, k, v = self._heads(self.query(state)), self._heads(self.key(stored)), self._heads(self.value(values))
        if mask is not None:
            mask = jnp.asarray(mask, bool)[..., None, :, :]  # one mask for every head
        if self.update_steps > 0:
            q = self._retrieve(q, k, mask)
        z = hopfield_update(q, k, v, beta=self.beta, mask=mask)
        z = jnp.moveaxis(z, -3, -2)
        return self.out(z.reshape(*z.shape[:-2], self.num_heads * self.head_dim))

    def _retrieve(self, q, k, mask):
        solver = HopfieldRetrieval(beta=self.beta, threshold=self.update_steps_eps,
                                   max_iterations=self.update_steps, differentiation="unroll",
                                   track_energy=False)
        batch = jnp.broadcast_shapes(q.shape[:-2], k.shape[:-2])
        q = jnp.broadcast_to(q, (*batch, *q.shape[-2:])).reshape(-1, *q.shape[-2:])
        k = jnp.broadcast_to(k, (*batch, *k.shape[-2:])).reshape(-1, *k.shape[-2:])
        if mask is None:
            states = jax.vmap(lambda qi, ki: solver(qi, ki).state)(q, k)
        else:
            m = jnp.broadcast_to(mask, (*batch, q.shape[-2], k.shape[-2])).reshape(-1, q.shape[-2], k.shape[-2])
            states = jax.vmap(lambda qi, ki, mi: solver(qi, ki, mi).state)(q, k, m)
        return states.reshape(*batch, *states.shape[-2:])


class HopfieldLayer(nnx.Module):
    """Hopfield association with ``num_patterns`` trainable stored patterns (a learned lookup).

    ``layer(state, mask=None)`` with ``state`` ``... x q x in_features``; ``mask`` broadcastable to
    ``... x q x num_patterns``. Remaining keyword arguments go to :class:`Hopfield`.
    """

    def __init__(self, in_features: int, num_patterns: int, *, pattern_features: Optional[int] = None,
                 rngs: nnx.Rngs, **kwargs):
        _check_positive_int(num_patterns, "num_patterns")
        pattern_features = in_features if pattern_features is None else pattern_features
        _check_positive_int(pattern_features, "pattern_features")
        self.patterns = nnx.Param(jax.random.normal(rngs.params(), (num_patterns, pattern_features))
                                  / math.sqrt(pattern_features))
        self.hopfield = Hopfield(in_features, stored_features=pattern_features, rngs=rngs, **kwargs)

    def __call__(self, state: Float[Array, "... q d"], mask: Optional[Bool[Array, "... q n"]] = None
                 ) -> Float[Array, "... q d_out"]:
        stored = jnp.broadcast_to(self.patterns.value, (*state.shape[:-2], *self.patterns.value.shape))
        return self.hopfield(state, stored, mask=mask)


class HopfieldPooling(nnx.Module):
    """Pool a set of patterns with ``num_queries`` trainable state patterns (queries).

    ``layer(stored, mask=None) -> ... x num_queries x out_features`` with ``stored`` ``... x n x
    in_features`` and ``mask`` ``... x n`` (True = the instance is present; for padded bags).
    Remaining keyword arguments go to :class:`Hopfield`.
    """

    def __init__(self, in_features: int, *, num_queries: int = 1, query_features: Optional[int] = None,
                 rngs: nnx.Rngs, **kwargs):
        _check_positive_int(num_queries, "num_queries")
        query_features = in_features if query_features is None else query_features
        _check_positive_int(query_features, "query_features")
        self.queries = nnx.Param(jax.random.normal(rngs.params(), (num_queries, query_features))
                                 / math.sqrt(query_features))
        self.hopfield = Hopfield(query_features, stored_features=in_features, rngs=rngs, **kwargs)

    def __call__(self, stored: Float[Array, "... n d"], mask: Optional[Bool[Array, "... n"]] = None
                 ) -> Float[Array, "... k d_out"]:
        state = jnp.broadcast_to(self.queries.value, (*stored.shape[:-2], *self.queries.value.shape))
        if mask is not None:
            mask = jnp.asarray(mask, bool)[..., None, :]  # the same instances for every query
        return self.hopfield(state, stored, mask=mask)
