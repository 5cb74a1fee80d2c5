r"""Subset-Norm adaptive step sizes with Subspace-Momentum ("Efficient Adaptive Optimization via
Subset-Norm and Subspace-Momentum: Fast, Memory-Reduced Training with Convergence Guarantees",
arXiv:2411.07120; official code timmytonga/sn-sm)."""

from __future__ import annotations

from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp
import optax

from ._common import (alias, check_beta, check_choice, check_float_params, check_int,
                      check_nonnegative)
from .lowrank import _compute_dtype, _static_int, adam_bias_correction
from .memory import most_square
from .projectors import PROJECTORS, Projector
from .registry import register

__all__ = ["SubsetNormState", "scale_by_subset_norm", "subset_norm"]

_SNSM = ("Efficient Adaptive Optimization via Subset-Norm and Subspace-Momentum: Fast, "
         "Memory-Reduced Training with Convergence Guarantees, arXiv:2411.07120")



class SubsetNormState(NamedTuple):
    count: jax.Array
    key: jax.Array
    projectors: Any  # per projected matrix: projector state; else optax.MaskedNode()
    momentum: Any    # projected: (r, M) subspace momentum; else the full momentum
    nu: Any          # one second-moment value per subset


def _sn_layout(shape, rank, min_dim):
    """('projected' | 'matrix' | 'flat', transpose, subset size) for a leaf."""
    if len(shape) == 2:
        m, n = shape
        short = min(m, n)
        projected = rank is not None and (short > rank if min_dim is None else short >= min_dim)
        if projected and rank > short:
            raise ValueError(f"rank={rank} is larger than the short side {short} of a leaf of "
                             f"shape {shape}")
        return ("projected" if projected else "matrix"), m > n  # transpose: short side first
    return "flat", False


def scale_by_subset_norm(rank: Optional[int] = None, update_proj_gap: int = 200,
                         b1: float = 0.9, b2: float = 0.999, eps: float = 1e-6, *,
                         projector: str = "svd", reduce: str = "sum",
                         min_dim: Optional[int] = None, seed: int = 0):
    r"""Subset-Norm (SN) step sizes with Subspace-Momentum (SM) (arXiv:2411.07120).

    SN: one second moment per coordinate subset S, v_S ← β₂ v_S + (1−β₂) Σ_{i∈S} g_i² (``reduce=
    'mean'`` divides by |S|). A matrix's subsets are its short-side slices (one v per long-side
    index, M floats); a flat tensor of size d uses subsets of the largest divisor of d <= √d.

    SM (matrices whose short side is > ``rank``): P (short side × r; ``projector``) refreshed every
    T steps with the momentum reset; m ← β₁ m + (1−β₁) Pᵀg; numerator = P m + (g − P Pᵀ g). Other
    leaves keep the full momentum. Update: √(1−β₂ᵗ)/(1−β₁ᵗ) · numerator / (√v_S + ε), the
    official step size (timmytonga/sn-sm, ``GenericOptim.py``: ``lr·√(bias_correction2) /
    bias_correction1``), computed in the leaf's dtype. ``rank=None`` gives SN with full momentum
    everywhere. Complex leaves are a TypeError at ``init``.
    """
    rank = _static_int("rank", rank, None)
    min_dim = _static_int("min_dim", min_dim, None)
    check_choice("projector", projector, PROJECTORS)
    check_choice("reduce", reduce, ("sum", "mean"))
    check_beta("b1", b1)
    check_beta("b2", b2)
    check_nonnegative("eps", eps)
    if not isinstance(update_proj_gap, jax.core.Tracer):  # it only enters count % gap
        check_int("update_proj_gap", update_proj_gap)

    def canonical(g, transpose):
        g = g.astype(_compute_dtype(g))
        return g.T if transpose else g

    def leaf_init(p):
        kind, transpose = _sn_layout(p.shape, rank, min_dim)
        dtype = _compute_dtype(p)
        if kind == "flat":
            k, _ = most_square(max(p.size, 1))
            return (optax.MaskedNode(), jnp.zeros(p.shape, dtype),
                    jnp.zeros((max(p.size, 1) // k,), dtype))
        d, big = min(p.shape), max(p.shape)
        if kind == "matrix":
            return optax.MaskedNode(), jnp.zeros((d, big), dtype), jnp.zeros((big,), dtype)
        proj = Projector(projector, rank).init(d, 1, dtype)
        return proj, jnp.zeros((rank, big), dtype), jnp.zeros((big,), dtype)

    def init_fn(params):
        leaves, treedef = jax.tree.flatten(params)
        check_float_params("subset_norm", params)
        triples = [leaf_init(p) for p in leaves]
        return SubsetNormState(jnp.zeros([], jnp.int32), jax.random.PRNGKey(seed),
                               *(treedef.unflatten([t[i] for t in triples]) for i in range(3)))

    def update_fn(updates, state, params=None, **extra):
        del params, extra
        leaves, treedef = jax.tree.flatten(updates)
        count = state.count
        out, projs, moms, nus = [], [], [], []
        for i, (g, ps, m, v) in enumerate(zip(leaves, treedef.flatten_up_to(state.projectors),
                                                treedef.flatten_up_to(state.momentum),
                                                treedef.flatten_up_to(state.nu))):
            kind, transpose = _sn_layout(g.shape, rank, min_dim)
            dtype = _compute_dtype(g)
            if kind == "flat":
                gm = g.astype(dtype).reshape(v.shape[0], -1)   # (subsets, subset size)
            else:
                gm = canonical(g, transpose)                          # (short, long)
            sq = jnp.sum(gm * gm, axis=1 if kind == "flat" else 0)
            if reduce == "mean":
                sq = sq / (gm.shape[1] if kind == "flat" else gm.shape[0])
            v = b2 * v + (1.0 - b2) * sq
            if kind == "projected":
                proj = Projector(projector, rank)
                key = jax.random.fold_in(jax.random.fold_in(state.key, i), count)
                ps, changed = proj.update(ps, gm, count, update_proj_gap, key)
                basis = proj.basis(ps, gm.shape[0])
                low = basis.T @ gm
                m = jnp.where(changed, jnp.zeros_like(m), m)
                m = b1 * m + (1.0 - b1) * low
                numerator = basis @ m + (gm - basis @ low)
            elif kind == "flat":
                m = b1 * m + (1.0 - b1) * g.astype(dtype).reshape(m.shape)
                numerator = m.reshape(gm.shape)
            else:
                m = b1 * m + (1.0 - b1) * gm
                numerator = m
            denom = jnp.sqrt(v)[:, None] if kind == "flat" else jnp.sqrt(v)[None, :]
            # the reference's step size: lr √(1 − β₂ᵗ)/(1 − β₁ᵗ), in the leaf's compute dtype
            direction = adam_bias_correction(b1, b2)(count + 1, dtype) * numerator / (denom + eps)
            if kind != "flat" and transpose:
                direction = direction.T
            out.append(direction.reshape(g.shape).astype(g.dtype))
            projs.append(ps)
            moms.append(m)
            nus.append(v)
        return treedef.unflatten(out), SubsetNormState(
            optax.safe_int32_increment(count), state.key, treedef.unflatten(projs),
            treedef.unflatten(moms), treedef.unflatten(nus))

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


@register("subset_norm", family="factored", paper=_SNSM)
def subset_norm(learning_rate: optax.ScalarOrSchedule = 1e-3, rank: Optional[int] = None,
                update_proj_gap: int = 200, b1: float = 0.9, b2: float = 0.999,
                eps: float = 1e-6, *, projector: str = "svd", reduce: str = "sum",
                weight_decay: float = 0.0, weight_decay_mask: Any = None,
                min_dim: Optional[int] = None, seed: int = 0):
    """SN + SM (Nguyen et al., arXiv:2411.07120), see :func:`scale_by_subset_norm`; ``rank``
    defaults to 128 (None); decoupled weight decay. State per projected matrix 4(M + rM + rN)."""
    return alias(
        scale_by_subset_norm(_static_int("rank", rank, 128), update_proj_gap, b1, b2, eps,
                             projector=projector, reduce=reduce, min_dim=min_dim, seed=seed),
        learning_rate, weight_decay, weight_decay_mask)
