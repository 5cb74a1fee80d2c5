r"""Blockwise int8 optimizer state ("8-bit Optimizers via Block-wise Quantization",
arXiv:2110.02861): :func:`quantize_state` wraps any optax transform so its state is stored as
int8 codes with one absmax scale per block; :func:`adam_8bit` and :func:`q_galore` (GaLore with
int8 moments and an int8 projector, after "Q-GaLore: Quantized GaLore with INT4 Projection and
Layer-Adaptive Low-Rank Gradients", arXiv:2407.08296) are its registered uses."""

from __future__ import annotations

import math
from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp
import optax

from ._common import alias, check_float_params
from .lowrank import _static_int, scale_by_galore
from .registry import register

__all__ = ["Quantized", "quantize_state", "adam_8bit", "q_galore"]

_8BIT = "8-bit Optimizers via Block-wise Quantization, arXiv:2110.02861"
_QGALORE = ("Q-GaLore: Quantized GaLore with INT4 Projection and Layer-Adaptive Low-Rank "
            "Gradients, arXiv:2407.08296")



class Quantized(NamedTuple):
    """Blockwise int8 codes of one state array and one float32 absmax scale per block."""
    codes: jax.Array   # (blocks, block_size) int8
    scale: jax.Array   # (blocks,) float32


def _encode(x, block_size, companded):
    flat = x.reshape(-1).astype(jnp.float32)
    blocks = -(-flat.size // block_size)
    flat = jnp.pad(flat, (0, blocks * block_size - flat.size)).reshape(blocks, block_size)
    scale = jnp.max(jnp.abs(flat), axis=1)
    unit = flat / jnp.where(scale > 0, scale, 1.0)[:, None]
    if companded:  # signed square-root companding: ~127² dynamic range for moments spanning decades
        unit = jnp.sign(unit) * jnp.sqrt(jnp.abs(unit))
    return Quantized(jnp.round(unit * 127.0).astype(jnp.int8), scale)


def _decode(q, like, companded):
    unit = q.codes.astype(jnp.float32) / 127.0
    if companded:
        unit = jnp.sign(unit) * unit * unit
    flat = (unit * q.scale[:, None]).reshape(-1)[: math.prod(like.shape)]
    return flat.reshape(like.shape).astype(like.dtype)


def _under_projectors(path):
    return any(getattr(k, "name", None) == "projectors" for k in path)


def quantize_state(inner: optax.GradientTransformation, block_size: Optional[int] = None,
                   min_size: Optional[int] = None, *, quantize_projector: bool = False
                   ) -> optax.GradientTransformationExtraArgs:
    r"""Store ``inner``'s state in blockwise int8 (Dettmers et al., arXiv:2110.02861).

    Every floating state array with at least ``min_size`` (default 4096, as bitsandbytes) entries
    is split into blocks of B = ``block_size`` (default 256) entries and stored as
    q = round(127 · c(x / absmax_block)), one float32 absmax per block; c is signed square-root
    companding for moments (resolution where optimizer moments live, across decades) and the
    identity for projector bases. Each update decodes, runs ``inner``, and re-encodes. Projector
    bases of a projected optimizer (the ``projectors`` field of its state) stay float32 unless
    ``quantize_projector`` (Q-GaLore's low-bit projection, here int8). Bytes: 2·(⌈s/B⌉B + 4⌈s/B⌉)
    for Adam's two moments of s entries.
    """
    block_size = _static_int("block_size", block_size, 256)
    min_size = _static_int("min_size", min_size, 4096)
    inner = optax.with_extra_args_support(inner)

    def plan(template):
        """Per template leaf: None (kept) or whether it is companded."""
        with_path, treedef = jax.tree_util.tree_flatten_with_path(template)
        out = []
        for path, leaf in with_path:
            floating = jnp.issubdtype(leaf.dtype, jnp.floating)
            in_proj = _under_projectors(path)
            if not floating or math.prod(leaf.shape) < min_size or (in_proj
                                                                     and not quantize_projector):
                out.append(None)
            else:
                out.append(not in_proj)
        return out, treedef

    def encode(state, template):
        kinds, treedef = plan(template)
        leaves = treedef.flatten_up_to(state)
        return treedef.unflatten([x if c is None else _encode(x, block_size, c)
                                  for x, c in zip(leaves, kinds)])

    def decode(qstate, template):
        kinds, treedef = plan(template)
        leaves = treedef.flatten_up_to(qstate)
        like = treedef.flatten_up_to(template)
        return treedef.unflatten([x if c is None else _decode(x, t, c)
                                  for x, t, c in zip(leaves, like, kinds)])

    def init_fn(params):
        check_float_params("quantize_state", params)  # the int8 codes are of real numbers
        state = inner.init(params)
        return encode(state, state)

    def update_fn(updates, state, params=None, **extra):
        template = jax.eval_shape(inner.init, updates)
        full = decode(state, template)
        new_updates, full = inner.update(updates, full, params, **extra)
        return new_updates, encode(full, template)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


@register("adam_8bit", family="factored", paper=_8BIT)
def adam_8bit(learning_rate: optax.ScalarOrSchedule = 1e-3, b1: float = 0.9, b2: float = 0.999,
              eps: float = 1e-8, weight_decay: float = 0.0, weight_decay_mask: Any = None,
              block_size: Optional[int] = None, min_size: Optional[int] = None):
    """Adam(W) with blockwise-int8 moments (:func:`quantize_state` over ``optax.scale_by_adam``)."""
    return alias(quantize_state(optax.scale_by_adam(b1=b1, b2=b2, eps=eps), block_size, min_size),
                 learning_rate, weight_decay, weight_decay_mask)


@register("q_galore", family="factored", paper=_QGALORE)
def q_galore(learning_rate: optax.ScalarOrSchedule = 1e-3, rank: Optional[int] = None,
             update_proj_gap: int = 200, scale: float = 0.25, *, b1: float = 0.9,
             b2: float = 0.999, eps: float = 1e-6, quantize_projector: bool = True,
             block_size: Optional[int] = None, min_size: Optional[int] = None,
             weight_decay: float = 0.0, weight_decay_mask: Any = None, side: str = "reference",
             projector: str = "svd", min_dim: Optional[int] = None, mask: Any = None):
    """8-bit GaLore after Q-GaLore (arXiv:2407.08296): GaLore whose Adam moments -- and, with
    ``quantize_projector``, its projector (int8 here; the paper uses int4) -- are stored blockwise
    int8 by :func:`quantize_state`. Not included: Q-GaLore's layer-adaptive refresh gap and int8
    weights with stochastic rounding."""
    inner = scale_by_galore(rank, update_proj_gap, scale, b1=b1, b2=b2, eps=eps, side=side,
                            projector=projector, min_dim=min_dim, mask=mask, name="q_galore")
    return alias(quantize_state(inner, block_size, min_size, quantize_projector=quantize_projector),
                 learning_rate, weight_decay, weight_decay_mask)
