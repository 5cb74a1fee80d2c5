r"""Low-rank projected optimizers: one mechanism, the GaLore family as configurations of it.

The mechanism (:func:`scale_by_projected`). For every 2-D leaf ``G`` (m × n) that is projected, write
it in canonical orientation ``Gc`` (d × k, d the projected side) and keep a rank-r projector P (d × r,
see :mod:`jaxopt_lab.optim.projectors`), refreshed every ``update_proj_gap`` steps under
``lax.cond`` (static shapes):

.. math::
    R = P^\top G_c,\qquad N = \mathrm{inner}(R),\qquad
    \Delta = \alpha\, P N + \mathrm{residual}(G_c - P R)

``inner`` is any optax transform (default Adam) running on the tree of low-rank coordinates (and on
the unprojected leaves -- biases, norms, small or masked matrices -- as they are). Two small rules
complete a method, as ``perturb``/``combine`` complete a sharpness method: the residual rule
(:class:`ResidualRule`: :func:`no_residual` for GaLore, :func:`fira_residual` -- norm-scaled
residual with a growth limiter --, :func:`sign_residual` for FRUGAL, :func:`sgd_residual`) and the
refresh rule (:class:`RefreshRule`): on a subspace change the inner moments are kept
(:func:`keep_moments`, GaLore), re-initialised (:func:`reset_moments`, FRUGAL) or rotated into the
new basis (:func:`rotate_moments`: m ← T m, v ← (T∘T) v with T = P_newᵀ P_old).

The GaLore family's default inner direction is the reference code's AdamW (jiaweizzhao/GaLore,
xichen-fy/Fira): N = m/(√v + ε) without bias correction, the correction √(1 − β₂ᵗ)/(1 − β₁ᵗ)
applied as a step size to the whole direction (:func:`scale_by_moment_ratio`,
:func:`adam_bias_correction`); reference tests check GaLore and Fira step for step against float64
transcriptions of the official code.

Side convention (``side``). The GaLore reference projects the **shorter** side (m ≥ n: P = V_r,
R = G P, moments m × r) -- ``side='reference'``, the default; optax.contrib.galore projects the
**longer** side (m ≥ n: P = U_r, R = Pᵀ G, moments r × n) -- ``side='memory_min'``. State per m × n
matrix (M = max, N = min): 4(2rM + rN) vs 4(2rN + rM) bytes. At a refresh both back-projections
of the SVD projector equal the rank-r truncation of G; between refreshes they keep different
components of the new gradient, Adam normalises in other coordinates, and the defaults differ
(reference eps 1e-6, scale 0.25; optax eps 1e-8, scale 1). The low-rank coordinates keep the
leaf's orientation: Pᵀ G (r × n) when rows are projected, G P (m × r, as the reference) when
columns are (the formulas below are written for the canonical Gc, d × k). With
``side='memory_min'``, ``scale=1`` and ``inner=optax.scale_by_adam()`` :func:`galore` equals
``optax.contrib.galore`` (tested); optax clamps ``rank`` to the short side where we raise.

Which leaves are projected (the rank rule): 2-D leaves selected by ``mask`` (default all) whose
short side is ``> rank`` (default ``min_dim=None``: projecting onto the full short side saves
nothing; the others run unprojected through ``inner`` and ``init`` warns once, naming them) or
``>= min_dim`` when given -- then a ``rank`` above a projected leaf's short side is a
``ValueError``. Float64 leaves are computed in float64; complex leaves are a ``TypeError``.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any, Callable, NamedTuple, Optional, Union

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .memory import *  # noqa: F401,F403  (re-exported: optim/__init__ star-imports this module)
from .memory import __all__ as _memory_all
from .projectors import *  # noqa: F401,F403
from .projectors import ORTHONORMAL_PROJECTORS, PROJECTORS, Projector
from .projectors import __all__ as _projectors_all
from ._common import (alias, bias_correction, check_beta, check_choice, check_float_params,
                      check_int, check_nonnegative, check_positive, check_range)
from .registry import register

__all__ = [
    "ProjectedState", "scale_by_projected", "projection_plan",
    "ResidualInput", "ResidualRule", "no_residual", "sign_residual", "sgd_residual",
    "fira_residual", "FIRA_COMPLEMENTS", "RefreshEvent", "RefreshRule", "keep_moments",
    "reset_moments", "rotate_moments", "scale_by_moment_ratio", "adam_bias_correction",
    "scale_by_galore", "galore", "fira", "online_subspace_descent", "natural_galore",
    "dct_galore", "frugal", "gradnorm_lorp", "weight_norm_split", "weight_norm_merge",
    "RESIDUALS", "ON_REFRESH", "SIDES",
] + list(_projectors_all) + list(_memory_all)

SIDES = ("reference", "memory_min")

_GALORE = "GaLore: Memory-Efficient LLM Training by Gradient Low-Rank Projection, arXiv:2403.03507"
_FIRA = ("Fira: Can We Achieve Full-rank Training of LLMs Under Low-rank Constraint?, "
         "arXiv:2410.01623")
_OSD = "Memory-Efficient LLM Training with Online Subspace Descent, arXiv:2408.12857"
_NATURAL = ("Natural GaLore: Accelerating GaLore for memory-efficient LLM Training and "
            "Fine-tuning, arXiv:2410.16029")
_DCT = ("SVD-Free Low-Rank Adaptive Gradient Optimization for Large Language Models, "
        "arXiv:2505.17967")
_FRUGAL = ("FRUGAL: Memory-Efficient Optimization by Reducing State Overhead for Scalable "
           "Training, arXiv:2411.07837")
_GRADNORM = ("Gradient Weight-normalized Low-rank Projection for Efficient LLM Training, "
             "arXiv:2412.19616")


# ------------------------------------------------------------------------------------------------
# Validation of concrete hyperparameters (never of traced ones: optax.inject_hyperparams turns every
# numeric argument into an array, traced inside a jitted update). Arguments that fix shapes (rank,
# buffer lengths) therefore default to None = "the paper's default" and must stay Python ints.

def _static_int(name: str, value, default=None, *, low: int = 1):
    """``value`` (``default`` when None) checked as a static Python int ``>= low``; None stays
    None (the method's own default applies)."""
    value = default if value is None else value
    return None if value is None else check_int(name, value, low)


def _gap(update_proj_gap):
    """update_proj_gap may be traced (it only enters ``count % gap``); check it when concrete."""
    if isinstance(update_proj_gap, jax.core.Tracer):
        return update_proj_gap
    return _static_int("update_proj_gap", update_proj_gap, 200)


# ------------------------------------------------------------------------------------------------
# The per-leaf plan: static facts derived from a leaf's shape.

@dataclasses.dataclass(frozen=True)
class _Plan:
    projected: bool
    transpose: bool = False  # canonical Gc = Gᵀ (the projected side is axis 1 of G)
    d: int = 0               # projected side
    k: int = 0               # kept side
    rank: int = 0


_UNPROJECTED = _Plan(False)


def _leaf_plan(shape, selected, *, rank, density, min_dim, side, where) -> _Plan:
    if not selected or len(shape) != 2:
        return _UNPROJECTED
    m, n = shape
    short = min(m, n)
    if density is not None:  # FRUGAL-style: rank as a fraction of the projected side
        threshold = 32 if min_dim is None else min_dim
        if short < threshold:
            return _UNPROJECTED
        leaf_rank = None
    else:
        if (short <= rank) if min_dim is None else (short < min_dim):
            return _UNPROJECTED
        if rank > short:
            raise ValueError(f"rank={rank} is larger than the short side {short} of the leaf {where} "
                             f"of shape {tuple(shape)}; use rank <= {short}, or a min_dim above "
                             f"{short} to leave that leaf unprojected")
        leaf_rank = rank
    # reference: project the short side; memory_min (optax): project the long side.
    project_rows = (m < n) if side == "reference" else (m >= n)
    d, k = (m, n) if project_rows else (n, m)
    if leaf_rank is None:
        leaf_rank = max(1, min(int(round(density * d)), short))
    return _Plan(True, not project_rows, d, k, leaf_rank)


def _resolve_mask(mask, tree, treedef):
    if mask is None:
        return [True] * treedef.num_leaves
    mask_tree = mask(tree) if callable(mask) else mask
    return [bool(x) for x in treedef.flatten_up_to(mask_tree)]


def projection_plan(params, rank: Optional[int] = 128, *, density: Optional[float] = None,
                    min_dim: Optional[int] = None, side: str = "reference", mask=None):
    """Which leaves are projected, and how: a params-shaped tree of ``(d, k, r)`` tuples (projected
    side, kept side, rank) or ``None`` (unprojected). Useful to check a model before training."""
    leaves, treedef = jax.tree.flatten(params)
    plans = _plans(leaves, treedef, params, rank, density, min_dim, side, mask)
    return treedef.unflatten([(p.d, p.k, p.rank) if p.projected else None for p in plans])


def _paths(tree):
    return [jax.tree_util.keystr(p) or "(root)"
            for p, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]


def _plans(leaves, treedef, tree, rank, density, min_dim, side, mask):
    selected = _resolve_mask(mask, tree, treedef)
    paths = _paths(tree)
    return [_leaf_plan(jnp.shape(x), s, rank=rank, density=density, min_dim=min_dim, side=side,
                       where=w) for x, s, w in zip(leaves, selected, paths)]


def _empty():
    """Placeholder for state a leaf does not have: optax's empty node (no leaves, no bytes; orbax
    cannot save 0-size arrays)."""
    return optax.MaskedNode()


# Orientation. Everything between refreshes is computed in the leaf's stored orientation, the
# low-rank coordinates included: R = Pᵀ G (r × n) when the rows are projected, R = G P (m × r)
# when the columns are (a "transposed" plan, Gc = Gᵀ; the reference's own G P). No array is
# transposed outside a refresh. Given a transposed Gc, XLA:CPU computes the gradient itself
# transposed (swapping the operands of its dot), and every elementwise use of G in stored
# orientation (Fira's residual, the parameter update) then reads it with a strided access,
# several times slower than a contiguous pass; transposed coordinates cost r × k copies and
# strided reads in the inner optimizer.

def _low_shape(plan):
    """Shape of the low-rank coordinates R of a projected leaf (stored orientation)."""
    return (plan.k, plan.rank) if plan.transpose else (plan.rank, plan.k)


def _proj_axis(plan):
    """The axis of G (and of R) along the projected side (d, resp. r); the other is the kept k."""
    return 1 if plan.transpose else 0


def _down(basis, g, plan):
    """The low-rank coordinates: Pᵀ G, or G P for a transposed plan."""
    return g @ basis if plan.transpose else basis.T @ g


def _up(basis, x, plan):
    """The back-projection in the leaf's stored orientation: P X, or X Pᵀ for a transposed plan."""
    return x @ basis.T if plan.transpose else basis @ x


def _along_kept(x, v, plan):
    """``x`` (G- or R-shaped, stored orientation) scaled by ``v`` (k,) along the kept side."""
    return x * (v[:, None] if plan.transpose else v[None, :])


def _in_new_basis(x, t, plan):
    """Coordinates ``x`` re-expressed by the r × r transition ``t`` (T x, or x Tᵀ)."""
    return x @ t.T if plan.transpose else t @ x


# ------------------------------------------------------------------------------------------------
# Residual rules: what a projected leaf's direction adds outside the subspace. Each is a small
# (init, apply) pair, as the sharpness family's perturb/combine: the mechanism never switches on
# a rule's name.

class ResidualInput(NamedTuple):
    """What a residual rule sees for one projected leaf (stored orientation, compute dtype).

    Attributes:
      g: the gradient G.
      basis: the projector P (d × r).
      r: the low-rank coordinates R = Pᵀ Gc.
      n: the inner optimizer's update N of R.
      plan: the leaf's static plan (orientation, sides, rank).
      scale: α, the scale of the back-projected inner update.
      count: the mechanism's step (int32).
      state: the rule's per-leaf state (None for a stateless rule).
      orthonormal: whether P has orthonormal columns (PᵀP = I), which norms may exploit.
    """

    g: jax.Array
    basis: jax.Array
    r: jax.Array
    n: jax.Array
    plan: Any
    scale: Any
    count: jax.Array
    state: Any
    orthonormal: bool


class ResidualRule(NamedTuple):
    """``apply(ResidualInput) -> (direction, new_state)``; ``init(dtype) -> state`` for a rule
    with per-leaf state (None: stateless). ``direction`` is the whole update of the leaf,
    α P N included."""

    apply: Callable[[ResidualInput], tuple]
    init: Optional[Callable[[Any], Any]] = None


def no_residual() -> ResidualRule:
    """GaLore: Δ = α P N (nothing outside the subspace)."""
    return ResidualRule(lambda x: (x.scale * _up(x.basis, x.n, x.plan), x.state))


def sign_residual(residual_scale: float = 1.0) -> ResidualRule:
    """FRUGAL's state-free sign descent outside the subspace: Δ = α P N + ρ sign(G − P R)."""
    check_nonnegative("residual_scale", residual_scale)

    def apply(x):
        rest = x.g - _up(x.basis, x.r, x.plan)
        return x.scale * _up(x.basis, x.n, x.plan) + residual_scale * jnp.sign(rest), x.state

    return ResidualRule(apply)


def sgd_residual(residual_scale: float = 1.0) -> ResidualRule:
    """Plain SGD outside the subspace: Δ = α P N + ρ (G − P R), computed as P (α N − ρ R) + ρ G
    (one back-projection)."""
    check_nonnegative("residual_scale", residual_scale)

    def apply(x):
        low = x.scale * x.n - residual_scale * x.r
        return _up(x.basis, low, x.plan) + residual_scale * x.g, x.state

    return ResidualRule(apply)


FIRA_COMPLEMENTS = ("scaled", "exact")


def fira_residual(growth_limit: float = 1.01, *, complement: str = "scaled") -> ResidualRule:
    r"""Fira's norm-scaled residual with its norm-growth limiter.

    .. math::
        \phi_j = \frac{\|N_{:,j}\|}{\|R_{:,j}\| + 10^{-8}},\quad
        S = (G_c - c\,P R)\,\mathrm{diag}(\phi),\quad
        \ell = \max\big(\|S\| / (\|S_{prev}\| + 10^{-8}),\ \gamma\big)/\gamma,\quad
        \Delta = \alpha P N + S/\ell

    (j over the kept side; ℓ = 1 at the first step; γ = ``growth_limit``). ``N`` is the inner
    update as the mechanism hands it over: for :func:`fira` the un-bias-corrected Adam direction
    m/(√v + ε), the bias correction entering only as a step size on the whole Δ, as the official
    code (xichen-fy/Fira, ``optimizer_torch/fira_adamw.py``).

    ``complement``: ``scaled`` (default, the official code: ``project_back`` returns α P R, and
    the residual is G − α P R, so c = α) or ``exact`` (c = 1: the component of G outside the
    subspace, as the paper's equations read; equal to ``scaled`` when α = 1).

    For an orthonormal P, column j of Gc − c P R has energy ‖Gc_j‖² − (2c − c²)‖R_j‖² (PᵀGc = R),
    so ‖S‖ needs only column sums of Gc, never S; and S = Gc φ − P (c R φ) shares the
    back-projection of α P N.
    """
    check_range("growth_limit", growth_limit, 1.0)
    check_choice("complement", complement, FIRA_COMPLEMENTS)

    def apply(x):
        axis = _proj_axis(x.plan)
        c = x.scale if complement == "scaled" else 1.0
        r_sq = jnp.sum(jnp.square(x.r), axis=axis)
        phi = jnp.linalg.norm(x.n, axis=axis) / (jnp.sqrt(r_sq) + 1e-8)
        if x.orthonormal:
            g_sq = jnp.sum(jnp.square(x.g), axis=axis)
            energy = jnp.maximum(g_sq - (2.0 * c - c * c) * r_sq, 0.0)
            s_norm = jnp.sqrt(jnp.sum(jnp.square(phi) * energy))
        else:  # OSD's basis drifts off orthonormality: measure S itself
            s_norm = jnp.linalg.norm(_along_kept(x.g - c * _up(x.basis, x.r, x.plan), phi, x.plan))
        limiter = jnp.where(x.count > 0,
                            jnp.maximum(s_norm / (x.state + 1e-8), growth_limit) / growth_limit,
                            1.0)
        phi = phi / limiter
        direction = (_up(x.basis, x.scale * x.n - c * _along_kept(x.r, phi, x.plan), x.plan)
                     + _along_kept(x.g, phi, x.plan))
        return direction, (s_norm / limiter).astype(x.state.dtype)

    return ResidualRule(apply, init=lambda dtype: jnp.zeros((), dtype))


# the string forms of ``residual``: name -> rule from (residual_scale, growth_limit)
_RESIDUAL_RULES = {
    "none": lambda rho, gamma: no_residual(),
    "fira": lambda rho, gamma: fira_residual(gamma),
    "sign": lambda rho, gamma: sign_residual(rho),
    "sgd": lambda rho, gamma: sgd_residual(rho),
}
RESIDUALS = tuple(_RESIDUAL_RULES)


# ------------------------------------------------------------------------------------------------
# Refresh rules: what happens to the inner optimizer's state when a subspace changes.

class RefreshEvent(NamedTuple):
    """What a refresh rule sees at one step (lists run over the flattened leaves).

    Attributes:
      inner: the inner optimizer (for a re-initialisation).
      template: params-shaped tree of zero low-rank coordinates (the inner optimizer's params).
      changed: per leaf, a bool scalar (the subspace changed this step) or None (unprojected).
      old_bases, new_bases: per projected leaf, P before and after this step's refresh (old
        bases only for a rule with ``needs_old_basis``; None otherwise).
      plans: per leaf, its static plan.
    """

    inner: Any
    template: Any
    changed: list
    old_bases: list
    new_bases: list
    plans: list


class RefreshRule(NamedTuple):
    """``apply(inner_state, RefreshEvent) -> inner_state``; ``needs_old_basis`` asks the
    mechanism for the previous bases (formed only for such a rule)."""

    apply: Callable[[Any, RefreshEvent], Any]
    needs_old_basis: bool = False


def keep_moments() -> RefreshRule:
    """GaLore: the inner moments survive a refresh unchanged (the reference's behaviour)."""
    return RefreshRule(lambda inner_state, event: inner_state)


def reset_moments() -> RefreshRule:
    """FRUGAL's ``reset_statistics``: re-initialise the whole inner state (its count included, so
    Adam's bias correction restarts consistently) when any subspace changed."""

    def apply(inner_state, event):
        flags = [c for c in event.changed if c is not None]
        any_change = jnp.any(jnp.stack(flags)) if flags else jnp.asarray(False)
        fresh = event.inner.init(event.template)
        return jax.tree.map(lambda a, b: jnp.where(any_change, a, b), fresh, inner_state)

    return RefreshRule(apply)


def rotate_moments() -> RefreshRule:
    """Re-express the moments in the new basis: m ← T m, v ← (T∘T) v with T = P_newᵀ P_old (v
    under any state field named ``nu``, optax's second-moment convention)."""

    def apply(inner_state, event):
        template_leaves, template_def = jax.tree.flatten(event.template)

        def rotate(xs, second):
            out = []
            for x, old, new, c, plan in zip(xs, event.old_bases, event.new_bases, event.changed,
                                            event.plans):
                if old is None or not jnp.issubdtype(x.dtype, jnp.floating):
                    out.append(x)
                    continue

                def rotated(x, old=old, new=new, plan=plan):
                    t = new.T @ old
                    return _in_new_basis(x, (t * t) if second else t, plan)

                out.append(jax.lax.cond(c, rotated, lambda x: x, x))
            return out

        return _map_param_subtrees(inner_state, template_leaves, template_def, rotate)

    return RefreshRule(apply, needs_old_basis=True)


_REFRESH_RULES = {"keep": keep_moments, "reset": reset_moments, "rotate": rotate_moments}
ON_REFRESH = tuple(_REFRESH_RULES)


def _map_param_subtrees(state, template_leaves, template_def, fn):
    """Apply ``fn(leaves, second_moment)`` to every params-shaped subtree of an optax state.

    ``second_moment`` is True under a field named ``nu`` (optax's second-moment convention), so a
    rotation can treat v differently from m."""

    def is_param_tree(node):
        if jax.tree.structure(node) != template_def:
            return False
        return all(jnp.shape(a) == jnp.shape(b) for a, b in zip(jax.tree.leaves(node),
                                                                  template_leaves))

    def walk(node, second):
        if is_param_tree(node):
            return template_def.unflatten(fn(jax.tree.leaves(node), second))
        if isinstance(node, tuple) and hasattr(node, "_fields"):
            return type(node)(*[walk(getattr(node, f), second or f == "nu") for f in node._fields])
        if isinstance(node, (tuple, list)):
            return type(node)(walk(c, second) for c in node)
        if isinstance(node, dict):
            return {k: walk(v, second) for k, v in node.items()}
        return node

    return walk(state, False)


# ------------------------------------------------------------------------------------------------
# Inner directions and step-size corrections of the official GaLore / Fira code.

def scale_by_moment_ratio(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-6
                          ) -> optax.GradientTransformation:
    """Adam's moments without bias correction: m/(√v + ε) (the ``exp_avg / denom`` of the
    transformers AdamW that the GaLore and Fira reference optimizers build on). Combined with
    :func:`adam_bias_correction` as a step size it is that AdamW exactly (ε outside the
    correction, unlike ``optax.scale_by_adam``). State: ``optax.ScaleByAdamState``."""
    check_beta("b1", b1)
    check_beta("b2", b2)
    check_nonnegative("eps", eps)

    def init_fn(params):
        return optax.ScaleByAdamState(jnp.zeros([], jnp.int32), optax.tree.zeros_like(params),
                                      optax.tree.zeros_like(params))

    def update_fn(updates, state, params=None):
        del params
        mu = optax.tree.update_moment(updates, state.mu, b1, 1)
        nu = optax.tree.update_moment_per_elem_norm(updates, state.nu, b2, 2)
        out = jax.tree.map(lambda m, v: m / (jnp.sqrt(v) + eps), mu, nu)
        return out, optax.ScaleByAdamState(optax.safe_int32_increment(state.count), mu, nu)

    return optax.GradientTransformation(init_fn, update_fn)


def adam_bias_correction(b1: float = 0.9, b2: float = 0.999) -> Callable:
    """``(t, dtype) -> √(1 − β₂ᵗ)/(1 − β₁ᵗ)``, computed in ``dtype`` (float64 params under
    ``jax_enable_x64`` get a float64 correction)."""

    def correction(t, dtype):
        return jnp.sqrt(bias_correction(b2, t, dtype)) / bias_correction(b1, t, dtype)

    return correction


# ------------------------------------------------------------------------------------------------
# The mechanism.

class ProjectedState(NamedTuple):
    """State of :func:`scale_by_projected`.

    Attributes:
      count: steps taken (int32).
      key: PRNG key for randomized projectors (taken at construction from ``seed``).
      projectors: params-shaped; the projector state of each projected leaf, else optax.MaskedNode().
      residual: params-shaped; the residual rule's state per projected leaf (Fira: the previous
        residual norm, a scalar), else optax.MaskedNode().
      history: params-shaped; Natural GaLore's ring buffer (s, r·k) of low-rank gradients.
      inner_state: state of the inner optimizer over the low-rank coordinates.
    """

    count: jax.Array
    key: jax.Array
    projectors: Any
    residual: Any
    history: Any
    inner_state: Any


def _compute_dtype(x):
    """float32, or the leaf's dtype when wider (float64 params under jax_enable_x64)."""
    return jnp.promote_types(jnp.result_type(x), jnp.float32)


def _warn_unprojected(leaves, selected, paths, rank, min_dim, density):
    """The rank rule: a selected 2-D leaf whose short side is <= rank is left unprojected (the
    inner optimizer runs on it as is). Say so once, at init, naming the leaves."""
    if density is not None or min_dim is not None:
        return
    small = [f"{w} {tuple(jnp.shape(x))}" for x, s, w in zip(leaves, selected, paths)
             if s and jnp.ndim(x) == 2 and min(jnp.shape(x)) <= rank]
    if small:
        warnings.warn(f"rank={rank} is not below the short side of {len(small)} matrix leaf/leaves "
                      f"({', '.join(small)}): they are not projected and the inner optimizer "
                      f"runs on them unprojected (no scale, no residual); lower rank, or pass "
                      f"min_dim to choose the projected leaves explicitly", UserWarning,
                      stacklevel=3)


def scale_by_projected(
    rank: Optional[int] = None,
    update_proj_gap: int = 200,
    scale: float = 1.0,
    *,
    inner: Optional[optax.GradientTransformation] = None,
    projector: str = "svd",
    side: str = "reference",
    residual: Union[str, ResidualRule] = "none",
    residual_scale: float = 1.0,
    growth_limit: float = 1.01,
    on_refresh: Union[str, RefreshRule] = "keep",
    correction: Optional[Callable] = None,
    history: Optional[int] = None,
    damping: float = 1e-2,
    density: Optional[float] = None,
    min_dim: Optional[int] = None,
    mask: Any = None,
    online_lr: Optional[float] = None,
    oversample: Optional[int] = None,
    power_iterations: Optional[int] = None,
    projector_bits: Optional[int] = None,
    projector_group_size: int = 256,
    cos_threshold: Optional[float] = None,
    gap_growth: float = 2.0,
    cos_window: int = 5,
    seed: int = 0,
    name: str = "scale_by_projected",
) -> optax.GradientTransformationExtraArgs:
    r"""Projected optimizer: inner optimizer in a rank-r gradient subspace, plus a residual rule.

    Per projected leaf (canonical orientation ``Gc``, d × k; P, d × r; see the module docstring):

    .. math::
        R = P^\top G_c,\quad \hat R = \mathrm{precond}(R),\quad N = \mathrm{inner}(\hat R),\quad
        \Delta = c_t\,\mathrm{residual}(G_c, P, R, N)

    where the residual rule returns the whole direction: α P N (:func:`no_residual`), plus
    ρ·sign(Gc − P R) (:func:`sign_residual`, FRUGAL), ρ·(Gc − P R) (:func:`sgd_residual`) or
    Fira's limited, norm-scaled residual (:func:`fira_residual`). ``c_t`` is the optional
    step-size ``correction`` (1 by default). ``precond`` is the identity, or with ``history=s``
    Natural GaLore's Woodbury inverse empirical Fisher over the last s low-rank gradients (buffer
    cleared when the subspace changes): ĝ = (r − G_s(λI + G_sᵀG_s)⁻¹G_sᵀ r)/λ.

    Args:
      rank: r (static int). Required unless ``density`` is given.
      update_proj_gap: steps between projector refreshes (T); refresh when ``count % T == 0``.
      scale: α, applied to the back-projected inner update of projected leaves only.
      inner: optax transform in the low-rank coordinates (default ``optax.scale_by_adam()``); it
        must not need ``params`` (it sees low-rank shapes).
      projector: ``svd``, ``randomized_svd``, ``dct``, ``random`` or ``online_pca``.
      side: ``reference`` (project the short side) or ``memory_min`` (optax.contrib.galore's).
      residual: a :class:`ResidualRule`, or the name of one: ``none``, ``fira`` (with γ =
        ``growth_limit``), ``sign`` or ``sgd`` (with ρ = ``residual_scale``).
      on_refresh: a :class:`RefreshRule`, or ``keep``, ``reset`` or ``rotate``
        (:func:`keep_moments`, :func:`reset_moments`, :func:`rotate_moments`).
      correction: ``(t, dtype) -> scalar`` multiplying every leaf's direction at step t = count
        + 1 (:func:`adam_bias_correction`: the reference code's bias-corrected step size).
      history, damping: Natural GaLore's buffer length s and λ.
      density: rank as a fraction of each leaf's projected side (FRUGAL), instead of ``rank``.
      min_dim: project 2-D leaves whose short side is ``>= min_dim``; None: short side ``> rank``
        (``>= 32`` with ``density``).
      mask: pytree (or function of params) of bools: which leaves may be projected (e.g. exclude
        embeddings); the others go through ``inner`` unprojected.
      online_lr: OSD's learning rate on P (None: 1/update_proj_gap).
      oversample, power_iterations: randomized SVD parameters (default 8 and 2).
      projector_bits, projector_group_size: store an explicit basis as b-bit min-max codes in
        groups of that many entries (Q-GaLore's low-bit projector); None: float.
      cos_threshold, gap_growth, cos_window: Q-GaLore's layer-adaptive refresh gap (the gap of
        a leaf grows by ``gap_growth`` once the mean cosine of its last ``cos_window`` refreshed
        first basis vectors is >= ``cos_threshold``); None: a fixed gap. See
        :class:`~jaxopt_lab.optim.projectors.Projector`.
      seed: key for the randomized projectors.
      name: the method's name, for error messages.

    The rank rule: with ``min_dim=None`` a matrix whose short side is <= ``rank`` is not
    projected (a UserWarning at ``init`` names it); with ``min_dim`` given, a projected matrix
    whose short side is below ``rank`` is a ``ValueError``. Complex leaves are a ``TypeError`` at
    ``init``. Computation runs in float32, or in the leaf's dtype when wider (float64).

    Returns:
      ``optax.GradientTransformationExtraArgs`` with a :class:`ProjectedState`.

    >>> import jax.numpy as jnp, optax
    >>> tx = scale_by_projected(rank=2, update_proj_gap=10)
    >>> params = {"w": jnp.ones((8, 4)), "b": jnp.ones(4)}
    >>> state = tx.init(params)
    >>> state.projectors["w"].basis.shape  # reference side: the short side (4) is projected
    (4, 2)
    """
    if density is None:
        rank = _static_int("rank", rank)
        if rank is None:
            raise ValueError("rank must be given (a positive int) unless density is")
    else:
        check_range("density", density, 0.0, 1.0, open_low=True)
        if isinstance(density, jax.core.Tracer):
            raise ValueError("density fixes array shapes and must be a static Python float")
        density = float(density)
    update_proj_gap = _gap(update_proj_gap)
    check_choice("projector", projector, PROJECTORS)
    check_choice("side", side, SIDES)
    if isinstance(residual, str):
        check_choice("residual", residual, RESIDUALS)
        residual = _RESIDUAL_RULES[residual](residual_scale, growth_limit)
    elif not isinstance(residual, ResidualRule):
        raise ValueError(f"residual must be a ResidualRule or one of {RESIDUALS}, got {residual!r}")
    if isinstance(on_refresh, str):
        check_choice("on_refresh", on_refresh, ON_REFRESH)
        on_refresh = _REFRESH_RULES[on_refresh]()
    elif not isinstance(on_refresh, RefreshRule):
        raise ValueError(f"on_refresh must be a RefreshRule or one of {ON_REFRESH}, got "
                         f"{on_refresh!r}")
    history = _static_int("history", history, None)
    min_dim = _static_int("min_dim", min_dim, None)
    oversample = _static_int("oversample", oversample, 8, low=0)
    power_iterations = _static_int("power_iterations", power_iterations, 2, low=0)
    check_nonnegative("scale", scale)
    check_positive("damping", damping)
    check_positive("online_lr", online_lr)
    inner = optax.scale_by_adam() if inner is None else inner
    if not hasattr(inner, "init") or not hasattr(inner, "update"):
        raise ValueError(f"inner must be an optax GradientTransformation, got {inner!r}")
    inner = optax.with_extra_args_support(inner)
    orthonormal = projector in ORTHONORMAL_PROJECTORS and projector_bits is None
    if isinstance(update_proj_gap, jax.core.Tracer) and cos_threshold is not None:
        raise ValueError("update_proj_gap must be a static Python int with cos_threshold (it "
                         "initialises the adaptive gap held in the state)")

    def make_projector(plan):
        return Projector(projector, plan.rank, oversample=oversample,
                         power_iterations=power_iterations, online_lr=online_lr,
                         transposed=plan.transpose, bits=projector_bits,
                         group_size=projector_group_size, cos_threshold=cos_threshold,
                         gap_growth=gap_growth, cos_window=cos_window)

    make_projector(_Plan(True, rank=1))  # validate the projector options before any work

    def plans_of(tree):
        leaves, treedef = jax.tree.flatten(tree)
        return leaves, treedef, _plans(leaves, treedef, tree, rank, density, min_dim, side, mask)

    def low_template(leaves, plans):
        return [jnp.zeros(_low_shape(p), _compute_dtype(x)) if p.projected else jnp.zeros_like(x)
                for x, p in zip(leaves, plans)]

    def init_fn(params):
        leaves, treedef = jax.tree.flatten(params)
        paths = _paths(params)
        check_float_params(name, params)
        if density is None:
            _warn_unprojected(leaves, _resolve_mask(mask, params, treedef), paths, rank, min_dim,
                              density)
        plans = _plans(leaves, treedef, params, rank, density, min_dim, side, mask)
        projs = [make_projector(p).init(p.d, update_proj_gap, _compute_dtype(x)) if p.projected
                 else _empty() for x, p in zip(leaves, plans)]
        resid = [residual.init(_compute_dtype(x)) if p.projected and residual.init is not None
                 else _empty() for x, p in zip(leaves, plans)]
        hist = [jnp.zeros((history, p.rank * p.k), _compute_dtype(x)) if p.projected and history
                else _empty() for x, p in zip(leaves, plans)]
        return ProjectedState(
            count=jnp.zeros([], jnp.int32),
            key=jax.random.PRNGKey(seed),
            projectors=treedef.unflatten(projs),
            residual=treedef.unflatten(resid),
            history=treedef.unflatten(hist),
            inner_state=inner.init(treedef.unflatten(low_template(leaves, plans))))

    def update_fn(updates, state, params=None, **extra):
        del params, extra
        leaves, treedef, plans = plans_of(updates)
        count = state.count
        projs = treedef.flatten_up_to(state.projectors)
        resids = treedef.flatten_up_to(state.residual)
        hists = treedef.flatten_up_to(state.history)

        low, bases, changed, old_bases, new_projs, new_hists, coords = [], [], [], [], [], [], []
        for i, (g, plan, ps, hist) in enumerate(zip(leaves, plans, projs, hists)):
            if not plan.projected:
                low.append(g)
                for lst, v in ((bases, None), (changed, None), (old_bases, None),
                               (new_projs, ps), (new_hists, hist), (coords, None)):
                    lst.append(v)
                continue
            proj = make_projector(plan)
            gw = g.astype(_compute_dtype(g))
            key = jax.random.fold_in(jax.random.fold_in(state.key, i), count)
            ps_new, did_change = proj.update(ps, gw, count, update_proj_gap, key)
            basis = proj.step_basis(ps, ps_new, count, plan.d)
            r = _down(basis, gw, plan)
            old_bases.append(proj.basis(ps, plan.d) if on_refresh.needs_old_basis else None)
            if history:
                hist = jnp.where(did_change, jnp.zeros_like(hist), hist)
                hist = hist.at[count % history].set(r.reshape(-1))
                r_in = _woodbury_natural_gradient(hist, r, damping)
            else:
                r_in = r
            low.append(r_in)
            bases.append(basis)
            changed.append(did_change)
            new_projs.append(ps_new)
            new_hists.append(hist)
            coords.append(r)

        template = treedef.unflatten(low_template(leaves, plans))
        event = RefreshEvent(inner, template, changed, old_bases, bases, plans)
        inner_state = on_refresh.apply(state.inner_state, event)
        low_updates, inner_state = inner.update(treedef.unflatten(low), inner_state, None)
        low_updates = treedef.flatten_up_to(low_updates)

        out, new_resids = [], []
        for g, plan, n, basis, r, prev in zip(leaves, plans, low_updates, bases, coords, resids):
            dtype = _compute_dtype(g)
            if not plan.projected:
                if not hasattr(n, "astype"):  # an empty node (optax.MaskedNode) passes through
                    out.append(n)
                    new_resids.append(prev)
                    continue
                direction = n.astype(dtype)
                new_resids.append(prev)
            else:
                direction, prev = residual.apply(ResidualInput(
                    g.astype(dtype), basis, r, n.astype(dtype), plan, scale, count,
                    None if isinstance(prev, optax.MaskedNode) else prev, orthonormal))
                new_resids.append(_empty() if prev is None else prev)
            if correction is not None:
                direction = direction * correction(count + 1, dtype)
            out.append(direction.astype(g.dtype))

        new_state = ProjectedState(
            count=optax.safe_int32_increment(count),
            key=state.key,
            projectors=treedef.unflatten(new_projs),
            residual=treedef.unflatten(new_resids),
            history=treedef.unflatten(new_hists),
            inner_state=inner_state)
        return treedef.unflatten(out), new_state

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def _woodbury_natural_gradient(buffer, r, damping):
    """(λI + G_s G_sᵀ)⁻¹ r by Woodbury: (r − G_s(λI_s + G_sᵀG_s)⁻¹G_sᵀ r)/λ, G_s = bufferᵀ."""
    flat = r.reshape(-1)
    gram = buffer @ buffer.T                                   # G_sᵀ G_s  (s × s)
    rhs = buffer @ flat                                        # G_sᵀ r    (s,)
    coef = jnp.linalg.solve(gram + damping * jnp.eye(gram.shape[0], dtype=gram.dtype), rhs)
    return ((flat - buffer.T @ coef) / damping).reshape(r.shape)


# ------------------------------------------------------------------------------------------------
# Aliases: the named methods as configurations.

def _adam(b1, b2, eps):
    check_beta("b1", b1)
    check_beta("b2", b2)
    check_nonnegative("eps", eps)
    return optax.scale_by_adam(b1=b1, b2=b2, eps=eps)


def scale_by_galore(rank: Optional[int] = None, update_proj_gap: int = 200, scale: float = 0.25,
                    *, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-6,
                    inner: Optional[optax.GradientTransformation] = None, **kwargs):
    """GaLore's direction (reference defaults: eps 1e-6, scale 0.25, rank 128); keyword arguments
    go to :func:`scale_by_projected`.

    With ``inner=None`` it is the reference code's AdamW (jiaweizzhao/GaLore,
    ``galore_torch/adamw.py``; also xichen-fy/Fira's): N = m/(√v + ε) in the subspace
    (:func:`scale_by_moment_ratio`) and the bias correction √(1 − β₂ᵗ)/(1 − β₁ᵗ) as a step size on
    the whole direction (:func:`adam_bias_correction`), so ε sits outside the correction and a
    residual rule sees the un-corrected N. With an explicit ``inner`` nothing is added."""
    if inner is None:
        inner = scale_by_moment_ratio(b1, b2, eps)
        kwargs.setdefault("correction", adam_bias_correction(b1, b2))
    kwargs.setdefault("name", "galore")
    return scale_by_projected(_static_int("rank", rank, 128), update_proj_gap, scale, inner=inner,
                              **kwargs)


@register("galore", family="lowrank", paper=_GALORE)
def galore(learning_rate: optax.ScalarOrSchedule = 1e-3, rank: Optional[int] = None,
           update_proj_gap: int = 200, scale: float = 0.25, *, b1: float = 0.9,
           b2: float = 0.999, eps: float = 1e-6, weight_decay: float = 0.0,
           weight_decay_mask: Any = None, side: str = "reference", projector: str = "svd",
           min_dim: Optional[int] = None, mask: Any = None,
           inner: Optional[optax.GradientTransformation] = None, seed: int = 0):
    r"""GaLore (Zhao et al., "GaLore: Memory-Efficient LLM Training by Gradient Low-Rank
    Projection", arXiv:2403.03507).

    Every T = ``update_proj_gap`` steps P ← top-r singular vectors of G (short side by default);
    between refreshes

    .. math::
        W \leftarrow W - \eta\,\Big(\frac{\sqrt{1-\beta_2^t}}{1-\beta_1^t}\,
        \alpha\,P\,\frac{m}{\sqrt v + \epsilon} + \lambda W\Big)

    with m, v Adam's moments of Pᵀ G (the reference AdamW: ε outside the bias correction; the
    reference applies the weight decay after the step, to the updated W, ours to W -- a
    difference of order η²λ). Moments are not re-projected on refresh (as the reference).
    ``rank`` defaults to 128 (None); leaves with short side <= rank are trained by that AdamW
    unprojected (``init`` warns). ``side='memory_min'`` gives optax.contrib.galore's convention
    (see the module docstring); ``inner`` replaces the AdamW direction (no bias correction
    added then).

    >>> import jax.numpy as jnp
    >>> tx = galore(1e-2, rank=4)
    >>> state = tx.init({"w": jnp.ones((16, 8))})
    """
    return alias(scale_by_galore(rank, update_proj_gap, scale, b1=b1, b2=b2, eps=eps,
                                    inner=inner, side=side, projector=projector, min_dim=min_dim,
                                    mask=mask, seed=seed),
                    learning_rate, weight_decay, weight_decay_mask)


@register("fira", family="lowrank", paper=_FIRA)
def fira(learning_rate: optax.ScalarOrSchedule = 1e-3, rank: Optional[int] = None,
         update_proj_gap: int = 200, scale: float = 0.25, *, gamma: float = 1.01, b1: float = 0.9,
         b2: float = 0.999, eps: float = 1e-6, complement: str = "scaled",
         weight_decay: float = 0.0, weight_decay_mask: Any = None, side: str = "reference",
         projector: str = "svd", min_dim: Optional[int] = None, mask: Any = None, seed: int = 0):
    r"""Fira (Chen et al., "Fira: Can We Achieve Full-rank Training of LLMs Under Low-rank
    Constraint?", arXiv:2410.01623): GaLore plus the norm-scaled residual, as the official code
    (xichen-fy/Fira, ``optimizer_torch/fira_adamw.py``):

    .. math::
        N = rac{m}{\sqrt v + \epsilon},\quad
        \phi_j = rac{\|N_{:,j}\|}{\|R_{:,j}\| + 10^{-8}},\quad
        S = (G - lpha P R)\,\mathrm{diag}(\phi),\quad
        \ell = \max(\|S\| / \|S_{prev}\|, \gamma)/\gamma,\quad
        \Delta = rac{\sqrt{1-eta_2^t}}{1-eta_1^t}\,(lpha P N + S/\ell)

    (m, v: Adam's moments of R without bias correction; j over the non-projected side; the
    limiter from the second step, γ = 1.01). ``complement='exact'`` takes S from G − P R (the
    component outside the subspace, as the paper's equations read) instead of the official
    G − α P R; both agree when α = 1. State: GaLore's + one scalar per matrix.
    """
    return alias(scale_by_galore(rank, update_proj_gap, scale, b1=b1, b2=b2, eps=eps,
                                    residual=fira_residual(gamma, complement=complement),
                                    side=side, projector=projector, min_dim=min_dim, mask=mask,
                                    seed=seed, name="fira"),
                    learning_rate, weight_decay, weight_decay_mask)


@register("online_subspace_descent", family="lowrank", paper=_OSD)
def online_subspace_descent(learning_rate: optax.ScalarOrSchedule = 1e-3,
                            rank: Optional[int] = None, update_proj_gap: int = 200,
                            scale: float = 0.25, *, projector_lr: Optional[float] = None,
                            b1: float = 0.9, b2: float = 0.999, eps: float = 1e-6,
                            weight_decay: float = 0.0, weight_decay_mask: Any = None,
                            side: str = "reference", min_dim: Optional[int] = None,
                            mask: Any = None):
    r"""Online Subspace Descent (Liang et al., "Memory-Efficient LLM Training with Online Subspace
    Descent", arXiv:2408.12857).

    P from one SVD at step 0, then every step one AdamW step (lr = ``projector_lr`` or 1/T) on the
    online-PCA objective

    .. math:: L(P) = \| P P^\top \hat G - \hat G \|_F^2,\qquad \hat G = G/\|G\|_F,

    and the GaLore-style outer step with Adam on Pᵀ G. State 4(2rM + 3rN) bytes per matrix (P and
    its two AdamW moments on the short side).
    """
    return alias(scale_by_galore(rank, update_proj_gap, scale, b1=b1, b2=b2, eps=eps,
                                    projector="online_pca", online_lr=projector_lr, side=side,
                                    min_dim=min_dim, mask=mask),
                    learning_rate, weight_decay, weight_decay_mask)


@register("natural_galore", family="lowrank", paper=_NATURAL)
def natural_galore(learning_rate: optax.ScalarOrSchedule = 1e-3, rank: Optional[int] = None,
                   update_proj_gap: int = 200, scale: float = 0.25, *,
                   history: Optional[int] = None, damping: float = 1e-2, b1: float = 0.9,
                   b2: float = 0.999, eps: float = 1e-6, weight_decay: float = 0.0,
                   weight_decay_mask: Any = None, side: str = "reference",
                   min_dim: Optional[int] = None, mask: Any = None):
    r"""Natural GaLore (arXiv:2410.16029): the low-rank gradient is preconditioned by the inverse
    empirical Fisher of the last s low-rank gradients (s = ``history``, default 10; λ =
    ``damping``; neither is given in the paper's abstract) through Woodbury's identity

    .. math:: \hat g = \tfrac{1}{\lambda}\big[r - G_s(\lambda I_s + G_s^\top G_s)^{-1}G_s^\top r\big]

    before Adam. The buffer (4·s·r·M bytes per matrix) is cleared when the subspace refreshes.
    """
    return alias(scale_by_galore(rank, update_proj_gap, scale, b1=b1, b2=b2, eps=eps,
                                    history=_static_int("history", history, 10), damping=damping,
                                    side=side, min_dim=min_dim, mask=mask),
                    learning_rate, weight_decay, weight_decay_mask)


@register("dct_galore", family="lowrank", paper=_DCT)
def dct_galore(learning_rate: optax.ScalarOrSchedule = 1e-3, rank: Optional[int] = None,
               update_proj_gap: int = 200, scale: float = 0.25, *, b1: float = 0.9,
               b2: float = 0.999, eps: float = 1e-6, weight_decay: float = 0.0,
               weight_decay_mask: Any = None, side: str = "reference",
               min_dim: Optional[int] = None, mask: Any = None):
    r"""SVD-free GaLore with a DCT projector ("SVD-Free Low-Rank Adaptive Gradient Optimization for
    Large Language Models", arXiv:2505.17967): at a refresh S = C G (orthonormal DCT-II C along the
    projected side), score_i = Σ_j |S_ij| (ℓ1), keep idx = top_r(score); P = C[idx]ᵀ is gathered
    every step from C, a compile-time constant of the compiled update (the same for every leaf
    with that side; not optimizer state), so only the int32 indices are stored: 8rM + 4r bytes
    per matrix.
    """
    return alias(scale_by_galore(rank, update_proj_gap, scale, b1=b1, b2=b2, eps=eps,
                                    projector="dct", side=side, min_dim=min_dim, mask=mask),
                    learning_rate, weight_decay, weight_decay_mask)


@register("frugal", family="lowrank", paper=_FRUGAL)
def frugal(learning_rate: optax.ScalarOrSchedule = 1e-3, density: Optional[float] = None,
           update_proj_gap: int = 200, *, rank: Optional[int] = None,
           inactive_update_rule: str = "sign_sgd", inactive_lr_scale: float = 1.0,
           proj_params_lr_scale: float = 1.0, projector: str = "svd",
           reset_statistics: bool = True, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
           weight_decay: float = 0.0, weight_decay_mask: Any = None, side: str = "reference",
           min_dim: Optional[int] = None, mask: Any = None, seed: int = 0):
    r"""FRUGAL (Zmushko et al., "FRUGAL: Memory-Efficient Optimization by Reducing State Overhead for
    Scalable Training", arXiv:2411.07837): Adam in the projected subspace, a state-free rule on the
    rest,

    .. math:: \Delta = \alpha\,\big(P\,\mathrm{Adam}(P^\top G)
              + \rho\,\mathrm{sign}(G - P P^\top G)\big)

    (α = ``proj_params_lr_scale``, ρ = ``inactive_lr_scale``; ``inactive_update_rule``:
    ``sign_sgd``, ``sgd`` or ``no``), as the official code (``frugal/proj_optimizer_templates.py``,
    ``GaloreOptimizer._proj_params_update``: the state-free step's learning rate is lr·α·ρ) with
    its AdamW (``frugal/adamw.py``: ε added after the bias correction of √v). Rank = ``density``
    (default 0.25) × the projected side (rounded), or a fixed ``rank``; ``reset_statistics``
    re-initialises Adam at each refresh (the reference default). One difference: the official
    code resets only the projected matrices' Adam (its other parameters are a separate AdamW
    group); here the inner Adam's state -- one step count for the whole tree -- is reset for
    every leaf, unprojected ones included.
    """
    check_choice("inactive_update_rule", inactive_update_rule, ("sign_sgd", "sgd", "no"))
    check_nonnegative("proj_params_lr_scale", proj_params_lr_scale)
    check_nonnegative("inactive_lr_scale", inactive_lr_scale)
    if rank is None:
        density = 0.25 if density is None else density
    elif density is not None:
        raise ValueError("give either density or rank to frugal, not both")
    direction = scale_by_projected(
        rank, update_proj_gap, proj_params_lr_scale, inner=_adam(b1, b2, eps),
        projector=projector, side=side,
        residual={"sign_sgd": "sign", "sgd": "sgd", "no": "none"}[inactive_update_rule],
        residual_scale=proj_params_lr_scale * inactive_lr_scale,
        on_refresh="reset" if reset_statistics else "keep",
        density=density, min_dim=min_dim, mask=mask, seed=seed)
    return alias(direction, learning_rate, weight_decay, weight_decay_mask)


# ------------------------------------------------------------------------------------------------
# GradNormLoRP: weight normalization W = g ⊙ V/‖V‖_row, GaLore on V, Adam on g.

def weight_norm_split(w):
    """W (m × n) -> (V, g) with V = W and g_i = ‖W_i‖ (rows), so W = g ⊙ V/‖V‖_row."""
    return w, _row_norm(w)[:, 0]


def _row_norm(v):
    """‖V_i‖ per row (m, 1), with a finite derivative at a zero row (the norm's is 0/0 there):
    a zero row gets norm 0 and a zero gradient instead of NaN."""
    sq = jnp.sum(jnp.square(v), axis=1, keepdims=True)
    positive = sq > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, sq, 1.0)), 0.0)


def weight_norm_merge(v, g):
    """W = g ⊙ V/‖V‖_row (rows of V normalised, scaled by g ∈ ℝ^m; a zero row of V gives a zero
    row of W, with finite derivatives)."""
    norm = _row_norm(v)
    return g[:, None] * v / jnp.where(norm > 0, norm, 1.0)


class WeightNormFactors(NamedTuple):
    """The (V, g) of one weight-normalised matrix."""
    v: jax.Array
    g: jax.Array


class GradNormLoRPState(NamedTuple):
    """(V, g) copies per 2-D leaf (the reference class keeps them; 4(mn + m) bytes; other leaves
    hold optax.MaskedNode()) and the state of the GaLore-Adam optimizer over the (V, g) tree."""
    count: jax.Array
    factors: Any
    inner_state: Any


def _check_no_zero_rows(params):
    """Weight normalisation cannot move a zero row (g_i = 0 and V_i/‖V_i‖ undefined): refuse such
    a matrix when the parameters are concrete (under ``jit`` the math stays finite, the row fixed)."""
    for where, w in zip(_paths(params), jax.tree.leaves(params)):
        if jnp.ndim(w) != 2 or isinstance(w, jax.core.Tracer):
            continue
        zero = int(np.sum(~np.any(np.asarray(w) != 0, axis=1)))
        if zero:
            raise ValueError(f"gradnorm_lorp: the matrix {where} of shape {tuple(w.shape)} has "
                             f"{zero} zero row(s); W = g ⊙ V/‖V‖ cannot move a zero row "
                             f"(g = 0, V/‖V‖ undefined): initialise it non-zero")


@register("gradnorm_lorp", family="lowrank", paper=_GRADNORM)
def gradnorm_lorp(learning_rate: optax.ScalarOrSchedule = 1e-3, rank: Optional[int] = None,
                  update_proj_gap: int = 250, scale: float = 0.25, *, b1: float = 0.9,
                  b2: float = 0.999, eps: float = 1e-6, side: str = "reference",
                  min_dim: Optional[int] = None, mask: Any = None):
    r"""GradNormLoRP ("Gradient Weight-normalized Low-rank Projection for Efficient LLM Training",
    arXiv:2412.19616) on plain parameters.

    Each 2-D leaf W is reparameterized W = g ⊙ V/‖V‖_row; the exact gradients (a VJP of that map,
    where the reference drops the orthogonal term) are

    .. math::
        \partial_g = \textstyle\sum_{\mathrm{row}} G \odot V/\|V\|,\qquad
        \partial_V = \frac{g}{\|V\|}\big(G - (G\cdot u)\,u\big),\ u = V/\|V\|,

    V is updated by GaLore-Adam (rank, T, α = ``scale``), g (and every other leaf) by Adam, and W is
    rebuilt: the returned update is W_new − W (so ``learning_rate`` acts inside, on V and g). Like
    the reference class, the state keeps the (V, g) copies; for the copy-free form make (V, g) the
    model's parameters (:func:`weight_norm_split` / :func:`weight_norm_merge`) and use
    :func:`galore`. A matrix with a zero row cannot be trained this way (its row never moves):
    ``init`` raises a ValueError on concrete parameters with one.
    """
    lr = learning_rate
    tx = optax.chain(scale_by_galore(rank, update_proj_gap, scale, b1=b1, b2=b2, eps=eps,
                                     side=side, min_dim=min_dim, mask=mask,
                                     name="gradnorm_lorp"),
                     optax.scale_by_learning_rate(lr))
    check_nonnegative("learning_rate", learning_rate)

    def is_factors(x):
        return isinstance(x, WeightNormFactors)

    def split_tree(params):
        return jax.tree.map(
            lambda w: WeightNormFactors(*weight_norm_split(w.astype(_compute_dtype(w))))
            if jnp.ndim(w) == 2 else w, params)

    def init_fn(params):
        check_float_params("gradnorm_lorp", params)
        _check_no_zero_rows(params)
        template = split_tree(params)
        factors = jax.tree.map(lambda f: f if is_factors(f) else _empty(), template,
                               is_leaf=is_factors)
        return GradNormLoRPState(jnp.zeros([], jnp.int32), factors, tx.init(template))

    def update_fn(updates, state, params=None, **extra):
        del extra, params
        treedef = jax.tree.structure(updates)
        grads = treedef.flatten_up_to(updates)
        factors = treedef.flatten_up_to(state.factors)

        def factor_grads(grad, fac):
            if not is_factors(fac):
                return grad
            _, vjp = jax.vjp(weight_norm_merge, *fac)
            return WeightNormFactors(*vjp(grad.astype(fac.v.dtype)))

        steps, inner_state = tx.update(
            treedef.unflatten([factor_grads(g, f) for g, f in zip(grads, factors)]),
            state.inner_state)
        steps = treedef.flatten_up_to(steps)
        out, new_factors = [], []
        for grad, old, step in zip(grads, factors, steps):
            if not is_factors(old):
                out.append(step.astype(grad.dtype))
                new_factors.append(old)
                continue
            new = WeightNormFactors(*optax.apply_updates(tuple(old), tuple(step)))
            out.append((weight_norm_merge(*new) - weight_norm_merge(*old)).astype(grad.dtype))
            new_factors.append(new)
        return treedef.unflatten(out), GradNormLoRPState(
            optax.safe_int32_increment(state.count), treedef.unflatten(new_factors), inner_state)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)
