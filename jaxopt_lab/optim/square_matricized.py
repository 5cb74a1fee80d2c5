r"""SMMF: Square-Matricized Momentum Factorization ("SMMF: Square-Matricized Momentum Factorization
for Memory-Efficient Optimization", arXiv:2412.08894): rank-1 non-negative factors of m and v for
every tensor reshaped to its most-square matrix, plus a 1-bit sign of m."""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from ._common import alias, check_beta, check_float_params, check_nonnegative, check_range
from .memory import most_square
from .registry import register

__all__ = ["SMMFState", "SMMFLeaf", "scale_by_smmf", "smmf"]

_SMMF = ("SMMF: Square-Matricized Momentum Factorization for Memory-Efficient Optimization, "
         "arXiv:2412.08894")



class SMMFLeaf(NamedTuple):
    """Compressed moments of one tensor seen as an m̂ × n̂ matrix."""
    m_row: jax.Array   # (m̂,)  row sums of |m|
    m_col: jax.Array   # (n̂,)  column sums of |m| / total
    m_sign: jax.Array  # (⌈m̂n̂/8⌉,) uint8: packed bits of m > 0
    v_row: jax.Array
    v_col: jax.Array


class SMMFState(NamedTuple):
    count: jax.Array
    moments: Any       # params-shaped tree of SMMFLeaf


def _rank1(a):
    """Non-negative rank-1 factors of a >= 0: a ≈ r cᵀ with r = row sums, c = column sums / total
    (exact when a is rank 1; Adafactor's and SMMF's NNMF)."""
    row = jnp.sum(a, axis=1)
    col = jnp.sum(a, axis=0)
    total = jnp.sum(row)
    return row, col / jnp.where(total > 0, total, 1.0)


def scale_by_smmf(beta: float = 0.9, eps: float = 1e-8, decay_rate: float = -0.5,
                  growth_rate: float = 0.999) -> optax.GradientTransformationExtraArgs:
    r"""SMMF's direction. Every tensor is reshaped (row-major) to its most-square m̂ × n̂
    matrix, m̂ >= n̂ (n̂ the largest divisor of its size <= √size, as the official code,
    KwangryeolPark/Official.SMMF); per step t:

    .. math::
        \beta_{m,t} = \beta\,\gamma^{t-1},\quad \beta_{v,t} = 1 - t^{c},\quad
        M = \beta_{m,t}\,\mathrm{sign}\odot r_m c_m^\top + (1-\beta_{m,t})G,\quad
        V = \beta_{v,t}\,r_v c_v^\top + (1-\beta_{v,t})G^2,\quad
        \Delta = M/(\sqrt V + \epsilon)

    (no bias correction), then M and V are re-compressed to rank-1 factors and the sign of M to
    one bit per entry. γ = ``growth_rate``, c = ``decay_rate`` (-0.5; -0.8 for Transformers).
    """
    check_beta("beta", beta)
    check_nonnegative("eps", eps)
    check_range("decay_rate", decay_rate, high=0.0)
    check_range("growth_rate", growth_rate, 0.0, 1.0)

    def leaf_init(p):
        # the reference's _get_effective_shape: (numel // i, i), i the largest divisor <= √numel
        nh, mh = most_square(max(p.size, 1))
        dtype = jnp.promote_types(p.dtype, jnp.float32)  # float64 leaves keep float64 factors
        zeros = lambda n: jnp.zeros((n,), dtype)  # noqa: E731
        return SMMFLeaf(zeros(mh), zeros(nh), jnp.zeros((math.ceil(mh * nh / 8),), jnp.uint8),
                        zeros(mh), zeros(nh))

    def init_fn(params):
        check_float_params("smmf", params)  # signs and squares of real numbers
        return SMMFState(jnp.zeros([], jnp.int32), jax.tree.map(leaf_init, params))

    def update_fn(updates, state, params=None, **extra):
        del params, extra
        def leaf(g, s):
            mh, nh = s.m_row.shape[0], s.v_col.shape[0]
            dtype = s.m_row.dtype
            t = (state.count + 1).astype(dtype)
            beta_m = jnp.asarray(beta, dtype) * jnp.asarray(growth_rate, dtype) ** (t - 1.0)
            beta_v = 1.0 - t ** jnp.asarray(decay_rate, dtype)
            gm = g.astype(dtype).reshape(mh, nh)
            sign = jnp.unpackbits(s.m_sign, count=mh * nh).reshape(mh, nh)
            m_prev = jnp.where(sign > 0, 1.0, -1.0).astype(dtype) * jnp.outer(s.m_row, s.m_col)
            v_prev = jnp.outer(s.v_row, s.v_col)
            m = beta_m * m_prev + (1.0 - beta_m) * gm
            v = beta_v * v_prev + (1.0 - beta_v) * gm * gm
            direction = (m / (jnp.sqrt(v) + eps)).reshape(g.shape).astype(g.dtype)
            m_row, m_col = _rank1(jnp.abs(m))
            v_row, v_col = _rank1(v)
            packed = jnp.packbits((m > 0).reshape(-1).astype(jnp.uint8))
            return direction, SMMFLeaf(m_row, m_col, packed, v_row, v_col)

        treedef = jax.tree.structure(updates)
        pairs = [leaf(g, s) for g, s in zip(jax.tree.leaves(updates),
                                            treedef.flatten_up_to(state.moments))]
        return (treedef.unflatten([p[0] for p in pairs]),
                SMMFState(optax.safe_int32_increment(state.count),
                          treedef.unflatten([p[1] for p in pairs])))

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


@register("smmf", family="factored", paper=_SMMF)
def smmf(learning_rate: optax.ScalarOrSchedule = 1e-3, beta: float = 0.9, eps: float = 1e-8,
         decay_rate: float = -0.5, growth_rate: float = 0.999, weight_decay: float = 0.0,
         weight_decay_mask: Any = None):
    """SMMF (Park & Choi et al., arXiv:2412.08894): see :func:`scale_by_smmf`. State per tensor
    8(m̂ + n̂) + ⌈m̂n̂/8⌉ bytes (the reference stores the sign as bool, 8x more)."""
    return alias(scale_by_smmf(beta, eps, decay_rate, growth_rate), learning_rate, weight_decay,
                 weight_decay_mask)
