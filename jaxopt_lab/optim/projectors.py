"""Gradient projectors: the subspace a low-rank optimizer (GaLore and kin) keeps its state in.

A projector acts on one matrix in *canonical orientation* ``Gc`` of shape ``(d, k)``: ``d`` is the
side being projected, ``k`` the side kept. It holds an orthonormal basis ``P`` of shape ``(d, r)``
(or, for the DCT projector, only the ``r`` indices of the DCT basis vectors that span it), and

    down:  R = Pᵀ Gc            (r, k)   -- the low-rank coordinates the inner optimizer sees
    up:    D = P N              (d, k)   -- back to the full space

``Projector.update`` takes the leaf in its stored orientation (``Gc = Gᵀ`` when the projector is
``transposed``) and forms Gc only inside its refresh branch (see there why).

Kinds (``PROJECTORS``):

- ``svd``: top-r left singular vectors of ``Gc`` (GaLore, arXiv:2403.03507).
- ``randomized_svd``: the same subspace from a Gaussian sketch with power iterations (Halko,
  Martinsson & Tropp, "Finding structure with randomness", arXiv:0909.4061): O(dkr) not O(dk·min).
- ``dct``: the r columns of the orthonormal DCT-II basis with the largest ℓ1 score ``|C Gc|·1``;
  only int32 indices are stored and the basis columns are gathered from C, a compile-time
  constant that is not optimizer state (:func:`dct_rows`; "SVD-Free Low-Rank
  Adaptive Gradient Optimization for Large Language Models", arXiv:2505.17967).
- ``random``: a random orthonormal basis (QR of a Gaussian), as FRUGAL's random projection.
- ``online_pca``: Online Subspace Descent (arXiv:2408.12857): one SVD at step 0, then every step
  one AdamW step (lr = 1/update_proj_gap) on L(P) = ‖P Pᵀ Ĝ − Ĝ‖², Ĝ = Gc/‖Gc‖. As the official
  code (kyleliang919/Online-Subspace-Descent, ``galore_torch/galore_projector.py``: the loss's
  gradient is taken in ``project``, the step in ``project_back``), step t projects with P_{t−1}
  and then moves it with the gradient at G_t (:meth:`Projector.step_basis`). The basis is not
  re-orthonormalized (as the official code). With a learning-rate schedule the official code
  also scales P's learning rate by lr_t/lr_0; here it stays 1/update_proj_gap.

Every refresh is guarded: when ``Gc`` is not finite, the previous projector is kept (a NaN/inf
gradient would otherwise make the SVD return NaNs and poison every later step).

Two options of the explicit-basis kinds, after "Q-GaLore: Quantized GaLore with INT4 Projection and
Layer-Adaptive Low-Rank Gradients" (arXiv:2407.08296; official VITA-Group/Q-GaLore,
``q_galore_torch/q_galore_projector_simulate.py``):

- ``bits``: the basis is stored as b-bit min-max codes (:mod:`jaxopt_lab.optim.minmax`) of its
  layout in the leaf's stored orientation (Pᵀ, r × d, for a ``transposed`` projector -- the
  official 'right' matrix Vh[:r] --, P, d × r, otherwise -- the official 'left' U[:, :r]), grouped
  by ``group_size`` consecutive entries of that layout; both projections use the decoded basis.
- ``cos_threshold``: the layer-adaptive refresh gap. At every refresh after the first, the cosine
  similarity of the new and the previous (unquantized) first basis vector enters a window of the
  last ``cos_window`` values; when the window is full and its mean is >= ``cos_threshold`` the
  gap becomes ⌊gap · ``gap_growth``⌋ (capped at 2³⁰). Refreshes happen when ``count % gap == 0``
  with the current gap. The cosine is signed, as in the official code: a sign flip of the first
  singular vector counts as dissimilar.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Float, Int

from ._common import check_choice, check_int, check_range
from .minmax import MinMaxCodes, check_bits, minmax_decode, minmax_encode

__all__ = ["PROJECTORS", "ORTHONORMAL_PROJECTORS", "Projector", "BasisState", "DCTState",
           "OnlinePCAState", "AdaptiveGapState", "dct_rows", "randomized_range"]

PROJECTORS = ("svd", "randomized_svd", "dct", "random", "online_pca")
# kinds whose basis has orthonormal columns (PᵀP = I up to rounding); online_pca's drifts off it
ORTHONORMAL_PROJECTORS = ("svd", "randomized_svd", "dct", "random")


class BasisState(NamedTuple):
    """An explicit orthonormal basis ``(d, r)`` (svd, randomized_svd, random)."""
    basis: Float[Array, "d r"]


class DCTState(NamedTuple):
    """Indices of the selected DCT-II basis vectors: 4r bytes instead of 4dr."""
    index: Int[Array, " r"]


class OnlinePCAState(NamedTuple):
    """OSD: the basis and the state of the optimizer that moves it every step."""
    basis: Float[Array, "d r"]
    opt_state: Any


class AdaptiveGapState(NamedTuple):
    """Q-GaLore's layer-adaptive refresh gap around a projector state (``cos_threshold`` given)."""
    projector: Any                       # BasisState or MinMaxCodes
    gap: Int[Array, ""]                  # the current refresh gap
    refreshes: Int[Array, ""]            # refreshes so far (the first has no predecessor)
    cosines: Float[Array, " w"]          # the last w cosines, oldest first
    first: Float[Array, " d"]            # the first basis vector of the last refresh (float)


# largest adaptive gap: doubling an int32 forever would overflow; no int32 count reaches it twice
_MAX_GAP = 2**30

# The whole DCT-II matrix is a compile-time constant up to this side (16 MiB of float32): a
# constant of the compiled step, not optimizer state -- the state holds only the r indices.
DCT_CONSTANT_MAX = 2048


@functools.lru_cache(maxsize=8)
def _dct_matrix(d: int) -> np.ndarray:
    """The orthonormal DCT-II matrix C (d × d), in float64 arithmetic, rounded to float32."""
    j = np.arange(d)[:, None]
    c = np.cos(np.pi * (2 * np.arange(d) + 1) * j / (2 * d))
    c *= np.where(j == 0, math.sqrt(1.0 / d), math.sqrt(2.0 / d))
    c = c.astype(np.float32)
    c.flags.writeable = False
    return c


def dct_rows(index: Int[Array, " r"], d: int) -> Float[Array, "r d"]:
    """Rows ``index`` of the orthonormal DCT-II matrix C (``C @ x == dct(x, norm='ortho')``).

    C[j, i] = s_j cos(π (2i + 1) j / (2d)), s_0 = √(1/d), s_j = √(2/d) otherwise. For d <=
    ``DCT_CONSTANT_MAX`` the rows are gathered from C held as a compile-time constant (built once
    per d; a gather of r·d floats instead of r·d cosines every step). Above it they are computed,
    with the argument reduced exactly in integer arithmetic, (2i + 1) j mod 4d, before the cosine:
    a float32 π(2i + 1)j/(2d) would carry an error of ~1e-4 at d = 1024. Either way the rows are
    C to float32 rounding, so the basis is orthonormal to that precision.
    """
    if d <= DCT_CONSTANT_MAX:
        return jnp.take(jnp.asarray(_dct_matrix(d)), index, axis=0, mode="clip")
    if 2 * d * d >= 2**32:
        raise ValueError(f"the DCT projector supports a projected side up to 46340, got d={d}")
    odd = (2 * jnp.arange(d, dtype=jnp.uint32) + 1)[None, :]
    phase = (odd * index.astype(jnp.uint32)[:, None]) % jnp.uint32(4 * d)   # exact: < 2d² < 2³²
    scale = jnp.where(index[:, None] == 0, math.sqrt(1.0 / d), math.sqrt(2.0 / d))
    return scale * jnp.cos((jnp.pi / (2 * d)) * phase.astype(jnp.float32))


def randomized_range(gc: Float[Array, "d k"], rank: int, key: jax.Array, *, oversample: int = 8,
                     power_iterations: int = 2) -> Float[Array, "d r"]:
    """Top-``rank`` left singular vectors of ``gc`` by randomized SVD (Halko et al. 2009, alg. 4.4
    + 5.1): sketch Y = Gc Ω with l = rank + oversample Gaussian columns, orthonormalize with QR
    between power iterations (Gc Gcᵀ)^q, then an exact SVD of the small l × k matrix Qᵀ Gc."""
    d, k = gc.shape
    width = min(rank + oversample, d, k)
    omega = jax.random.normal(key, (k, width), gc.dtype)
    q, _ = jnp.linalg.qr(gc @ omega)
    for _ in range(power_iterations):  # static, small: unrolled
        z, _ = jnp.linalg.qr(gc.T @ q)
        q, _ = jnp.linalg.qr(gc @ z)
    u_small, _, _ = jnp.linalg.svd(q.T @ gc, full_matrices=False)
    return q @ u_small[:, :rank]


def _top_left_singular(gc, rank, transposed=False):
    """Top-r left singular vectors of ``gc``. When ``gc`` is the transpose of the stored gradient,
    take them as the right singular vectors of the stored matrix: the same subspace with the sign
    convention of GaLore and optax.contrib.galore (signs matter once moments outlive a refresh)."""
    if transposed:
        _, _, vt = jnp.linalg.svd(gc.T, full_matrices=False)
        return vt[:rank].T
    u, _, _ = jnp.linalg.svd(gc, full_matrices=False)
    return u[:, :rank]


def _random_orthonormal(key, d, rank, dtype=jnp.float32):
    q, _ = jnp.linalg.qr(jax.random.normal(key, (d, rank), dtype))
    return q


def _keep_if_finite(ok, new, old):
    return jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, old)


@dataclasses.dataclass(frozen=True)
class Projector:
    """One projector kind at a static rank; pure functions of its per-leaf state.

    Args:
      kind: one of ``PROJECTORS``.
      rank: r, the subspace dimension (static).
      oversample, power_iterations: randomized SVD parameters.
      online_lr: OSD's AdamW learning rate on P (None: 1 / update_proj_gap, the reference choice).
      transposed: ``Gc`` is the transpose of the stored gradient (SVD sign convention; the
        stored layout of a quantized basis).
      bits, group_size: store the basis as ``bits``-bit min-max codes in groups of
        ``group_size`` entries (-1: one group per row of the layout); None: float.
      cos_threshold, gap_growth, cos_window: the adaptive refresh gap (None: a fixed gap).
    """

    kind: str
    rank: int
    oversample: int = 8
    power_iterations: int = 2
    online_lr: float | None = None
    transposed: bool = False
    bits: int | None = None
    group_size: int = 256
    cos_threshold: float | None = None
    gap_growth: float = 2.0
    cos_window: int = 5

    def __post_init__(self):
        check_choice("projector", self.kind, PROJECTORS)
        explicit = ("svd", "randomized_svd", "random")
        if self.bits is not None or self.cos_threshold is not None:
            check_choice("projector (with a quantized basis or an adaptive gap)", self.kind,
                         explicit)
        if self.bits is not None:
            check_bits("projector_bits", self.bits)
            if self.group_size != -1:
                check_int("projector_group_size", self.group_size)
        if self.cos_threshold is not None:
            check_range("cos_threshold", self.cos_threshold, -1.0, 1.0)
            check_range("gap_growth", self.gap_growth, 1.0)
            check_int("cos_window", self.cos_window)

    # -- storage of an explicit basis ----------------------------------------------------------
    def _layout(self, basis):
        """The basis as stored by the reference code: Pᵀ (r × d) when transposed, else P."""
        return basis.T if self.transposed else basis

    def _store(self, basis):
        if self.bits is None:
            return BasisState(basis)
        return minmax_encode(self._layout(basis), self.bits, self.group_size)

    def _load(self, state, d):
        if isinstance(state, MinMaxCodes):
            shape = (self.rank, d) if self.transposed else (d, self.rank)
            return self._layout(minmax_decode(state, shape, self.bits, self.group_size))
        return state.basis

    def _schedule(self, sched: AdaptiveGapState, first):
        """The adaptive gap after a refresh whose first basis vector is ``first``."""
        cos = jnp.dot(sched.first, first) / jnp.maximum(
            jnp.linalg.norm(sched.first) * jnp.linalg.norm(first), 1e-8)
        has_past = sched.refreshes > 0
        cosines = jnp.where(has_past, jnp.concatenate([sched.cosines[1:], cos[None]]),
                            sched.cosines)
        full = sched.refreshes >= self.cos_window   # the window held w values after this one
        similar = full & (jnp.sum(cosines) / self.cos_window >= self.cos_threshold)
        grown = jnp.floor(sched.gap.astype(jnp.float32) * self.gap_growth).astype(jnp.int32)
        gap = jnp.where(similar, jnp.minimum(grown, _MAX_GAP), sched.gap)
        return gap, sched.refreshes + 1, cosines

    # -- state ---------------------------------------------------------------------------------
    def _online_opt(self, update_proj_gap):
        # kyleliang919/Online-Subspace-Descent (galore_torch/galore_projector.py L79, L117):
        # torch.optim.AdamW(lr=1/T) with torch's defaults, weight decay 0.01 (optax's is 1e-4).
        lr = self.online_lr if self.online_lr is not None else 1.0 / update_proj_gap
        return optax.adamw(lr, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.01)

    def init(self, d: int, update_proj_gap: int, dtype=jnp.float32):
        """Initial state for a side of size ``d``: the first r coordinate axes (a valid orthonormal
        basis, so a step before any refresh is well defined), in ``dtype`` (the computation's:
        float32, or float64 for float64 leaves)."""
        if self.kind == "dct":
            return DCTState(jnp.arange(self.rank, dtype=jnp.int32))
        basis = jnp.eye(d, self.rank, dtype=dtype)
        if self.kind == "online_pca":
            return OnlinePCAState(basis, self._online_opt(update_proj_gap).init(basis))
        if self.cos_threshold is None:
            return self._store(basis)
        return AdaptiveGapState(self._store(basis), jnp.asarray(update_proj_gap, jnp.int32),
                                jnp.zeros([], jnp.int32), jnp.zeros(self.cos_window, dtype),
                                jnp.zeros(d, dtype))

    def basis(self, state, d: int) -> Float[Array, "d r"]:
        if self.kind == "dct":
            return dct_rows(state.index, d).T
        if isinstance(state, AdaptiveGapState):
            state = state.projector
        return self._load(state, d)

    def step_basis(self, old, new, count, d: int) -> Float[Array, "d r"]:
        """The basis this step projects with: the refreshed one (``new``), except for online_pca
        after its first step, which projects with the basis it had (``old``) and moves it for the
        next step."""
        if self.kind != "online_pca":
            return self.basis(new, d)
        return jnp.where(count == 0, new.basis, old.basis)

    # -- refresh -------------------------------------------------------------------------------
    def _fresh(self, state, gc, key):
        """A new projector from ``gc`` (assumed finite)."""
        d = gc.shape[0]
        if self.kind == "svd":
            return BasisState(_top_left_singular(gc, self.rank, self.transposed))
        if self.kind == "randomized_svd":
            return BasisState(randomized_range(gc, self.rank, key, oversample=self.oversample,
                                               power_iterations=self.power_iterations))
        if self.kind == "random":
            return BasisState(_random_orthonormal(key, d, self.rank, gc.dtype))
        if self.kind == "dct":
            score = jnp.sum(jnp.abs(jax.scipy.fft.dct(gc, type=2, axis=0, norm="ortho")), axis=1)
            return DCTState(jax.lax.top_k(score, self.rank)[1].astype(jnp.int32))
        raise AssertionError(self.kind)

    def canonical(self, g: Float[Array, "m n"]) -> Float[Array, "d k"]:
        """``Gc``: the leaf ``g`` (stored orientation) with the projected side first."""
        return g.T if self.transposed else g

    def update(self, state, g: Float[Array, "m n"], count, update_proj_gap, key):
        """The projector for this step and whether the subspace changed (a bool scalar).

        ``g`` is the leaf in its stored orientation (``Gc = gᵀ`` when ``transposed``). It is
        transposed only inside the refresh branch: a transposed gradient as the operand of the
        ``lax.cond`` would make XLA materialise Gc on every step -- and then, to save that copy,
        compute the gradient itself transposed, so that every other elementwise use of G in the
        update reads it with a transposed (cache-unfriendly) access pattern.

        svd / randomized_svd / dct / random refresh when ``count % update_proj_gap == 0``; online_pca
        takes its SVD at ``count == 0`` and one optimizer step on P otherwise.
        """
        if self.kind == "online_pca":
            ok = jnp.all(jnp.isfinite(g))
            return self._online_update(state, jnp.where(ok, self.canonical(g), 0.0), ok, count,
                                       update_proj_gap)
        adaptive = isinstance(state, AdaptiveGapState)
        refresh = (count % (state.gap if adaptive else update_proj_gap)) == 0

        def fresh(_):
            # the finiteness check runs only at a refresh: no extra pass over G on other steps
            ok = jnp.all(jnp.isfinite(g))
            new = self._fresh(state, self.canonical(jnp.where(ok, g, 0.0)), key)
            if isinstance(new, BasisState):  # a degenerate decomposition must not poison P either
                ok = ok & jnp.all(jnp.isfinite(new.basis))
                first = new.basis[:, 0]
                new = self._store(new.basis)
                if adaptive:
                    new = AdaptiveGapState(new, *self._schedule(state, first), first)
            return _keep_if_finite(ok, new, state)

        new_state = jax.lax.cond(refresh, fresh, lambda _: state, None)
        return new_state, refresh

    def _online_update(self, state, gc, ok, count, update_proj_gap):
        opt = self._online_opt(update_proj_gap)
        g_hat = gc / (jnp.linalg.norm(gc) + 1e-12)

        def loss(p):
            return jnp.sum(jnp.square(p @ (p.T @ g_hat) - g_hat))

        def first(_):
            return OnlinePCAState(_top_left_singular(gc, self.rank, self.transposed),
                                  state.opt_state)

        def step(_):
            grad = jax.grad(loss)(state.basis)
            upd, opt_state = opt.update(grad, state.opt_state, state.basis)
            return OnlinePCAState(optax.apply_updates(state.basis, upd), opt_state)

        new = jax.lax.cond(count == 0, first, step, None)
        ok_new = ok & jnp.all(jnp.isfinite(new.basis))
        return _keep_if_finite(ok_new, new, state), jnp.asarray(True)
