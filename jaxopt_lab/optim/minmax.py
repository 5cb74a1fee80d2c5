r"""Asymmetric min-max group quantization, as Q-GaLore quantizes its projector and its weights
("Q-GaLore: Quantized GaLore with INT4 Projection and Layer-Adaptive Low-Rank Gradients",
arXiv:2407.08296; official VITA-Group/Q-GaLore ``_quantize`` / ``_quantize_stochastic_round``).

A matrix is cut into groups of ``group_size`` consecutive entries of its row-major flattening
(``group_size=-1``: one group per row). Per group, with b bits and Q = 2ᵇ − 1,

.. math::
    s = \max(\max w - \min w,\ 10^{-5}) / Q,\qquad z = \mathrm{clip}(-\mathrm{round}(\min w / s), 0, Q),

    q = \mathrm{clip}(\mathrm{round}(w / s) + z,\ 0,\ Q),\qquad \hat w = (q - z)\,s .

Stochastic rounding replaces round(w/s) by ⌈w/s⌉ with probability w/s − ⌊w/s⌋ (given uniform
noise u: ⌈w/s⌉ where u < w/s − ⌊w/s⌋, else ⌊w/s⌋), so E[ŵ] = w away from the clip. The official
code asserts that the group size divides the size; here a last partial group is padded with its
own last entry, which changes neither its minimum nor its maximum.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

from ._common import check_int

__all__ = ["MinMaxCodes", "check_bits", "group_count", "quantize_groups", "dequantize_groups",
           "minmax_encode", "minmax_decode", "fake_quantize"]


class MinMaxCodes(NamedTuple):
    """A matrix as b-bit codes (two 4-bit codes per uint8 when b <= 4), one scale and one zero
    point per group (in the matrix's floating dtype)."""
    codes: jax.Array    # uint8, packed
    scales: jax.Array   # (groups,)
    zeros: jax.Array    # (groups,)


def check_bits(name: str, bits) -> int:
    return check_int(name, bits, 1, 8)


def _group_width(shape, group_size: int) -> int:
    return shape[-1] if group_size == -1 else group_size


def group_count(shape, group_size: int) -> int:
    """Number of groups of a matrix of ``shape``."""
    size = math.prod(shape)
    return -(-size // _group_width(shape, group_size))


def _groups(x, group_size):
    width = _group_width(x.shape, group_size)
    flat = x.reshape(-1)
    pad = group_count(x.shape, group_size) * width - flat.size
    return jnp.pad(flat, (0, pad), mode="edge").reshape(-1, width)


def _ungroup(groups, shape):
    return groups.reshape(-1)[: math.prod(shape)].reshape(shape)


def quantize_groups(w, bits: int, noise=None):
    """Integer codes q (as floats), scales s and zeros z of the rows of ``w`` (groups × width);
    deterministic rounding, or stochastic rounding driven by uniform ``noise`` (w's shape)."""
    top = 2.0 ** bits - 1.0
    high = jnp.max(w, axis=1, keepdims=True)
    low = jnp.min(w, axis=1, keepdims=True)
    scales = jnp.maximum(high - low, 1e-5) / top
    zeros = jnp.clip(-jnp.round(low / scales), 0.0, top)
    ratio = w / scales
    if noise is None:
        rounded = jnp.round(ratio)
    else:
        down = jnp.floor(ratio)
        rounded = jnp.where(noise < ratio - down, jnp.ceil(ratio), down)
    return jnp.clip(rounded + zeros, 0.0, top), scales, zeros


def dequantize_groups(q, scales, zeros):
    return (q - zeros) * scales


def fake_quantize(x, bits: int, group_size: int, noise_key=None):
    """``x`` rounded onto its own b-bit min-max grid (stochastically when ``noise_key`` is given:
    u ~ U[0, 1) drawn as ``jax.random.uniform(noise_key, (groups, width), x.dtype)``)."""
    groups = _groups(x, group_size)
    noise = None if noise_key is None else jax.random.uniform(noise_key, groups.shape, x.dtype)
    return _ungroup(dequantize_groups(*quantize_groups(groups, bits, noise)), x.shape)


def minmax_encode(x, bits: int, group_size: int) -> MinMaxCodes:
    """Codes of the matrix ``x`` (deterministic rounding), packed two per byte when b <= 4."""
    q, scales, zeros = quantize_groups(_groups(x, group_size), bits)
    codes = q.reshape(-1).astype(jnp.uint8)
    if bits <= 4:
        codes = jnp.pad(codes, (0, codes.size % 2)).reshape(-1, 2)
        codes = codes[:, 0] | (codes[:, 1] << 4)
    return MinMaxCodes(codes, scales[:, 0], zeros[:, 0])


def minmax_decode(c: MinMaxCodes, shape, bits: int, group_size: int):
    """The matrix of ``shape`` that :func:`minmax_encode` encoded, (q − z)·s."""
    codes = c.codes
    if bits <= 4:
        codes = jnp.stack([codes & 15, codes >> 4], axis=1).reshape(-1)
    width = _group_width(shape, group_size)
    q = codes[: c.scales.size * width].astype(c.scales.dtype).reshape(-1, width)
    return _ungroup(dequantize_groups(q, c.scales[:, None], c.zeros[:, None]), shape)
