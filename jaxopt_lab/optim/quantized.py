r"""Blockwise int8 optimizer state ("8-bit Optimizers via Block-wise Quantization",
arXiv:2110.02861): :func:`quantize_state` wraps any optax transform so its state is stored as
int8 codes with one absmax scale per block; :func:`adam_8bit` and :func:`q_galore` ("Q-GaLore:
Quantized GaLore with INT4 Projection and Layer-Adaptive Low-Rank Gradients", arXiv:2407.08296:
GaLore with int8 moments, an int4 projector, an adaptive refresh gap and int8 weights with
stochastic rounding, :func:`round_weights`) are its registered uses."""

from __future__ import annotations

import math
from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp
import optax

from ._common import alias, check_float_params, check_int, need_params
from .lowrank import _adam, _plans, _resolve_mask, _static_int, scale_by_galore
from .minmax import check_bits, fake_quantize
from .registry import register

__all__ = ["Quantized", "quantize_state", "adam_8bit", "WeightRoundingState", "round_weights",
           "q_galore"]

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


class WeightRoundingState(NamedTuple):
    """State of :func:`round_weights`: steps taken and the key of the rounding noise."""
    count: jax.Array
    key: jax.Array


def round_weights(bits: int = 8, group_size: int = 256, *, stochastic: bool = True,
                  seed: int = 0, mask: Any = None) -> optax.GradientTransformation:
    r"""Low-bit weights as an optax stage (Q-GaLore's int8 weights with stochastic rounding,
    arXiv:2407.08296; official ``q_galore_adamw8bit_simulate.py``, ``_quantize_stochastic_round``).

    Placed last in a chain, it turns the incoming update u into ŵ − w, where ŵ is w + u rounded
    onto its own ``bits``-bit min-max grid (:mod:`jaxopt_lab.optim.minmax`; groups of
    ``group_size`` consecutive entries of the leaf's row-major flattening, -1: one group per
    row), so that ``optax.apply_updates`` leaves the parameters on that grid, (q − z)·s with
    integer codes q (to the rounding of the one addition w + (ŵ − w), an ulp). The grid is that
    of w + u: rounding ŵ again need not be the identity, as the extreme entries of a group may
    have been rounded past the codes' range and clipped. With ``stochastic`` the rounding is unbiased: leaf i
    at step t draws u ~ U[0, 1) as ``jax.random.uniform(fold_in(fold_in(PRNGKey(seed), i), t),
    (groups, width), dtype)`` (i over the flattened params, t from 0) and rounds w/s up where
    u < w/s − ⌊w/s⌋. ``mask`` (pytree or function of params, default all) selects the leaves;
    the others pass their update through. Needs ``params``.

    The official code keeps the rounded weights in float ("simulation" mode) as here; its
    ``QLinear`` forward pass rounds them once more, deterministically, for the matmul -- a
    model-side step not included.
    """
    bits = check_bits("weight_bits", bits)
    if group_size != -1:
        check_int("weight_group_size", group_size)

    def init_fn(params):
        check_float_params("round_weights", params)
        return WeightRoundingState(jnp.zeros([], jnp.int32), jax.random.PRNGKey(seed))

    def update_fn(updates, state, params=None):
        need_params("round_weights", params)
        leaves, treedef = jax.tree.flatten(updates)
        weights = treedef.flatten_up_to(params)
        out = []
        for i, (u, w, selected) in enumerate(zip(leaves, weights,
                                                 _resolve_mask(mask, params, treedef))):
            if not selected:
                out.append(u)
                continue
            key = (jax.random.fold_in(jax.random.fold_in(state.key, i), state.count)
                   if stochastic else None)
            target = w + u.astype(w.dtype)
            out.append((fake_quantize(target, bits, group_size, key) - w).astype(u.dtype))
        return (treedef.unflatten(out),
                WeightRoundingState(optax.safe_int32_increment(state.count), state.key))

    return optax.GradientTransformation(init_fn, update_fn)


def _projected(rank, min_dim, side, mask):
    """The mask of the leaves GaLore projects (Q-GaLore's int8 layers are its GaLore layers)."""
    def fn(params):
        leaves, treedef = jax.tree.flatten(params)
        plans = _plans(leaves, treedef, params, rank, None, min_dim, side, mask)
        return treedef.unflatten([p.projected for p in plans])
    return fn


@register("q_galore", family="factored", paper=_QGALORE)
def q_galore(learning_rate: optax.ScalarOrSchedule = 1e-3, rank: Optional[int] = None,
             update_proj_gap: int = 200, scale: float = 0.25, *, b1: float = 0.9,
             b2: float = 0.999, eps: float = 1e-8, projector_bits: Optional[int] = 4,
             projector_group_size: int = 256, cos_threshold: Optional[float] = 0.4,
             gap_growth: float = 2.0, cos_window: int = 5, weight_bits: Optional[int] = 8,
             weight_group_size: int = 256, stochastic_round: bool = True,
             block_size: Optional[int] = None, min_size: Optional[int] = None,
             weight_decay: float = 0.0, weight_decay_mask: Any = None, side: str = "reference",
             projector: str = "svd", min_dim: Optional[int] = None, mask: Any = None,
             seed: int = 0):
    r"""Q-GaLore ("Q-GaLore: Quantized GaLore with INT4 Projection and Layer-Adaptive Low-Rank
    Gradients", arXiv:2407.08296), as its official code (VITA-Group/Q-GaLore,
    ``q_galore_torch/q_galore_adamw8bit_simulate.py`` with ``q_galore_projector_simulate.py``):

    - GaLore's projection (rank r, refresh gap T, scale α) around bitsandbytes' 8-bit Adam: the
      moments of Pᵀ G stored blockwise int8 (:func:`quantize_state`) and the step
      η α P m̂/(√v̂ + ε), ε inside the bias correction as bitsandbytes' ``kOptimizer32bit2State``
      (ε = 1e-8, its default; GaLore's own AdamW puts ε outside);
    - the projector stored as ``projector_bits``-bit (default 4) min-max codes in groups of
      ``projector_group_size`` (256) entries, both projections with the decoded basis;
    - the layer-adaptive refresh gap: once the mean cosine of a layer's last ``cos_window`` (5)
      refreshed first singular vectors is >= ``cos_threshold`` (0.4), its gap grows by
      ``gap_growth`` (2) (None: a fixed gap);
    - ``weight_bits``-bit (8) weights of the projected layers, rounded stochastically
      (``stochastic_round``) onto their min-max grid after every step in groups of
      ``weight_group_size`` (256) entries (:func:`round_weights`; None: float weights).

    Defaults are the official scripts' (``scripts/pretrain_c4``: 4-bit projector, group 256,
    8-bit weights with stochastic rounding, threshold 0.4, growth 2, window 5, α = 0.25, T =
    200). Differences from the official code: bitsandbytes' 8-bit moments use its dynamic
    quantile map, ours signed square-root companding (both keep arrays below ``min_size`` =
    4096 entries in float32, where the two agree exactly); the weight decay is applied to the
    current weights before the step, the official code's to the updated ones (a difference of
    order η²λ); unprojected leaves get the same Adam with float weights, as the official code's
    separate bitsandbytes group.
    """
    rank = _static_int("rank", rank, 128)
    direction = scale_by_galore(
        rank, update_proj_gap, scale, inner=_adam(b1, b2, eps), side=side, projector=projector,
        min_dim=min_dim, mask=mask, projector_bits=projector_bits,
        projector_group_size=projector_group_size, cos_threshold=cos_threshold,
        gap_growth=gap_growth, cos_window=cos_window, seed=seed, name="q_galore")
    tx = alias(quantize_state(direction, block_size, min_size), learning_rate, weight_decay,
               weight_decay_mask)
    if weight_bits is None:
        return tx
    return optax.chain(tx, round_weights(weight_bits, weight_group_size,
                                         stochastic=stochastic_round, seed=seed,
                                         mask=_projected(rank, min_dim, side, mask)))
