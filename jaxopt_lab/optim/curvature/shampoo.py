r"""Shampoo with blocking, periodic inverse roots and layer-wise grafting.

"Scalable Second Order Optimization for Deep Learning" (Anil, Gupta, Koren, Regan, Singer),
arXiv:2002.09018, building on "Shampoo: Preconditioned Stochastic Tensor Optimization",
arXiv:1802.09568. Transcribed from the authors' JAX code, google-research/precondition
``precondition/distributed_shampoo.py`` (``_transform_grad``, ``matrix_inverse_pth_root``).

For a matrix leaf ``W`` (``r x c``; tensors are reshaped to ``(prod(shape[:-1]), shape[-1])``) each
dimension longer than ``block_size`` is cut into blocks of ``block_size`` (the last one zero-padded,
which leaves every real block's result unchanged); for each block ``G_b`` of the gradient::

    L_b <- beta2 L_b + (1 - beta2) G_b G_b^T        R_b <- beta2 R_b + (1 - beta2) G_b^T G_b
    (beta2 = 1: plain sums, the paper's L_t = eps I + sum G G^T)
    every precondition_every steps:  P_b = (L_b + eps_L I)^{-1/p},  Q_b = (R_b + eps_R I)^{-1/p}
    (eps_L = epsilon * lambda_max(L_b): the reference's relative ridge)
    S = [P_b G_b Q_b]_b                                      (p = 4 by default: Shampoo for matrices)

and the step is *grafted* onto a first-order direction ``D`` (Adagrad, Adam or SGD): Shampoo's direction,
rescaled to ``D``'s norm per leaf, ``U = S ||D||_F / ||S||_F``, then momentum ``m <- b1 m + (1 - b1) U``.
Leaves that are 1-D (or scalars), or have a dimension longer than ``skip_preconditioning_dim_size_gt``,
take the grafting direction ``D`` itself (the diagonal fallback).

A root whose computation failed (non-finite statistics or root, or a Newton error above
``inverse_failure_threshold``) is discarded: the previous preconditioner is kept, as in the reference.
The roots are computed under ``lax.cond`` on ``count % precondition_every == 0`` (from the statistics that
already include the current gradient, so the first step is preconditioned).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp
import optax

from ..registry import register
from .. import _common
from .roots import ROOT_METHODS, inverse_pth_root

__all__ = ["ShampooState", "scale_by_shampoo", "shampoo", "shampoo_state_bytes", "GRAFTS"]

GRAFTS = ("adagrad", "adam", "sgd")
_NAME = "shampoo"


class ShampooState(NamedTuple):
    """``statistics``/``preconditioners``: per leaf (in ``jax.tree.leaves`` order) a pair
    ``(L, R)`` of stacked blocks ``(nr, nc, br, br)``, ``(nr, nc, bc, bc)``, or ``None`` for a diagonal
    leaf; ``graft``: the grafting accumulators (``None`` for SGD grafting); ``momentum``: like params."""

    count: jax.Array
    statistics: tuple
    preconditioners: tuple
    graft: Any
    momentum: Any


class _Blocks(NamedTuple):
    """How a leaf is seen as a matrix and cut into blocks (static)."""

    rows: int
    cols: int
    block_rows: int
    block_cols: int

    @property
    def n_row_blocks(self) -> int:
        return -(-self.rows // self.block_rows)

    @property
    def n_col_blocks(self) -> int:
        return -(-self.cols // self.block_cols)

    def split(self, x: jax.Array) -> jax.Array:
        """``(...) -> (nr, nc, br, bc)``, zero-padded."""
        x = x.reshape(self.rows, self.cols)
        nr, nc = self.n_row_blocks, self.n_col_blocks
        x = jnp.pad(x, ((0, nr * self.block_rows - self.rows), (0, nc * self.block_cols - self.cols)))
        return x.reshape(nr, self.block_rows, nc, self.block_cols).transpose(0, 2, 1, 3)

    def merge(self, blocks: jax.Array, shape) -> jax.Array:
        nr, nc = self.n_row_blocks, self.n_col_blocks
        x = blocks.transpose(0, 2, 1, 3).reshape(nr * self.block_rows, nc * self.block_cols)
        return x[:self.rows, :self.cols].reshape(shape)


def kronecker_statistics(blocks: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Per block ``G_b`` of a stack ``(nr, nc, br, bc)``: the left and right Kronecker statistics
    ``G_b G_b^T`` (``br x br``) and ``G_b^T G_b`` (``bc x bc``), shared by Shampoo and SOAP."""
    hi = jax.lax.Precision.HIGHEST
    return (jnp.einsum("ijab,ijcb->ijac", blocks, blocks, precision=hi),
            jnp.einsum("ijba,ijbc->ijac", blocks, blocks, precision=hi))


def _layout(shape, block_size: int, skip_dim: int) -> Optional[_Blocks]:
    """The block layout of a leaf, or ``None`` for the diagonal fallback."""
    if len(shape) < 2 or max(shape) > skip_dim:
        return None
    rows, cols = math.prod(shape[:-1]), shape[-1]
    if rows > skip_dim:
        return None
    return _Blocks(rows, cols, min(rows, block_size), min(cols, block_size))


def _validate(block_size, precondition_every, exponent, b1, beta2, epsilon, graft, graft_beta2,
              graft_epsilon, root_method, skip_preconditioning_dim_size_gt, inverse_failure_threshold):
    _common.check_int("block_size", block_size)
    _common.check_int("precondition_every", precondition_every)
    if exponent is not None:
        _common.check_int("exponent", exponent)
    _common.check_int("skip_preconditioning_dim_size_gt", skip_preconditioning_dim_size_gt)
    _common.check_beta("b1", b1)
    _common.check_range("beta2", beta2, 0.0, 1.0, open_low=True)
    _common.check_beta("graft_beta2", graft_beta2)
    _common.check_nonnegative("epsilon", epsilon)
    _common.check_nonnegative("graft_epsilon", graft_epsilon)
    _common.check_positive("inverse_failure_threshold", inverse_failure_threshold)
    _common.check_choice("graft", graft, GRAFTS)
    _common.check_choice("root_method", root_method, ROOT_METHODS)


def scale_by_shampoo(block_size: int = 128, precondition_every: int = 10,
                     exponent: Optional[int] = None, b1: float = 0.9, beta2: float = 1.0,
                     epsilon: float = 1e-6, graft: str = "adam", graft_beta2: float = 0.999,
                     graft_epsilon: float = 1e-8, root_method: str = "newton",
                     skip_preconditioning_dim_size_gt: int = 4096,
                     inverse_failure_threshold: float = 0.1
                     ) -> optax.GradientTransformationExtraArgs:
    r"""Shampoo's grafted, momentum-averaged direction (see the module docstring for the math).

    Args:
      block_size: longest side of a preconditioned block (>= 1).
      precondition_every: steps between inverse-root computations (>= 1).
      exponent: ``p`` of the roots ``(.)^{-1/p}``; ``None`` = 4 (twice the tensor order 2, the paper's).
      b1: momentum of the grafted direction (moving average).
      beta2: decay of the Kronecker statistics in ``(0, 1]``; 1 sums them (the paper).
      epsilon: relative ridge (>= 0): ``epsilon * lambda_max(S)`` is added to each statistic ``S``
        before its root.
      graft: ``"adagrad"``, ``"adam"`` (bias-corrected RMSProp magnitude) or ``"sgd"``.
      graft_beta2, graft_epsilon: the Adam grafting's second-moment decay; the grafting's epsilon.
      root_method: ``"newton"`` (coupled Newton iteration) or ``"eigh"``.
      skip_preconditioning_dim_size_gt: leaves with a dimension longer than this take the diagonal
        (grafting) direction.
      inverse_failure_threshold: Newton errors ``max|M - I|`` at or above this discard the new root.

    >>> tx = scale_by_shampoo(block_size=4, precondition_every=1)
    >>> params = {"w": jnp.ones((6, 3)), "b": jnp.ones(3)}
    >>> updates, state = tx.update(params, tx.init(params), params)
    >>> [u.shape for u in jax.tree.leaves(updates)]
    [(3,), (6, 3)]
    """
    _validate(block_size, precondition_every, exponent, b1, beta2, epsilon, graft, graft_beta2,
              graft_epsilon, root_method, skip_preconditioning_dim_size_gt, inverse_failure_threshold)
    p = 4 if exponent is None else exponent

    def layouts(params):
        return [_layout(x.shape, block_size, skip_preconditioning_dim_size_gt)
                for x in jax.tree.leaves(params)]

    def init(params):
        leaves, treedef = jax.tree.flatten(params)
        statistics, preconditioners = [], []
        for layout in layouts(params):
            if layout is None:
                statistics.append(None)
                preconditioners.append(None)
                continue
            nr, nc = layout.n_row_blocks, layout.n_col_blocks
            left = jnp.zeros((nr, nc, layout.block_rows, layout.block_rows), jnp.float32)
            right = jnp.zeros((nr, nc, layout.block_cols, layout.block_cols), jnp.float32)
            statistics.append((left, right))
            eye_l = jnp.broadcast_to(jnp.eye(layout.block_rows, dtype=jnp.float32), left.shape)
            eye_r = jnp.broadcast_to(jnp.eye(layout.block_cols, dtype=jnp.float32), right.shape)
            preconditioners.append((eye_l, eye_r))
        zeros = [jnp.zeros(x.shape, jnp.float32) for x in leaves]
        graft_state = None if graft == "sgd" else treedef.unflatten(zeros)
        return ShampooState(jnp.zeros([], jnp.int32), tuple(statistics), tuple(preconditioners),
                            graft_state, treedef.unflatten(zeros))

    def roots(flat):
        """Roots and Newton errors of a stack ``(n, b, b)`` of statistics, one vmapped call."""
        return jax.vmap(lambda s: inverse_pth_root(s, p, ridge_epsilon=epsilon, method=root_method))(flat)

    def refresh(statistics, previous):
        # Every block of every leaf with the same side is rooted in one vmapped call (one compiled
        # loop per distinct block side instead of one per leaf and side, as the reference batches its
        # preconditioners); a failed root (non-finite or unconverged) keeps that block's previous one.
        pairs = [(i, j) for i, stats in enumerate(statistics) if stats is not None for j in (0, 1)]
        by_side: dict[int, list] = {}
        for i, j in pairs:
            by_side.setdefault(statistics[i][j].shape[-1], []).append((i, j))
        new = {}
        for side, members in by_side.items():
            flat = [statistics[i][j].reshape(-1, side, side) for i, j in members]
            candidates, errors = roots(jnp.concatenate(flat))
            ok = (jnp.isfinite(errors) & (errors < inverse_failure_threshold)
                  & jnp.all(jnp.isfinite(candidates), axis=(1, 2)))
            offset = 0
            for (i, j), f in zip(members, flat):
                n, shape = f.shape[0], statistics[i][j].shape
                keep = ok[offset:offset + n].reshape(*shape[:2], 1, 1)
                new[i, j] = jnp.where(keep, candidates[offset:offset + n].reshape(shape),
                                      previous[i][j])
                offset += n
        return tuple(None if stats is None else (new[i, 0], new[i, 1])
                     for i, stats in enumerate(statistics))

    def update(updates, state, params=None, **extra):
        del params, extra
        leaves, treedef = jax.tree.flatten(updates)
        grads = [g.astype(jnp.float32) for g in leaves]
        count = state.count + 1
        w2 = jnp.where(jnp.asarray(beta2) == 1.0, 1.0, 1.0 - jnp.asarray(beta2))

        statistics = []
        for g, layout, stats in zip(grads, layouts(updates), state.statistics):
            if layout is None:
                statistics.append(None)
                continue
            gg_t, gt_g = kronecker_statistics(layout.split(g))
            statistics.append((beta2 * stats[0] + w2 * gg_t, beta2 * stats[1] + w2 * gt_g))
        statistics = tuple(statistics)
        preconditioners = jax.lax.cond(
            state.count % precondition_every == 0, refresh, lambda s, prev: prev,
            statistics, state.preconditioners)

        if graft == "sgd":
            graft_state, directions = None, grads
        else:
            accumulators = treedef.flatten_up_to(state.graft)
            if graft == "adagrad":
                accumulators = [v + g * g for v, g in zip(accumulators, grads)]
                corrected = accumulators
            else:
                accumulators = [graft_beta2 * v + (1.0 - graft_beta2) * g * g
                                for v, g in zip(accumulators, grads)]
                correction = 1.0 - jnp.asarray(graft_beta2, jnp.float32) ** count.astype(jnp.float32)
                corrected = [v / correction for v in accumulators]
            directions = [g / (jnp.sqrt(v) + graft_epsilon) for g, v in zip(grads, corrected)]
            graft_state = treedef.unflatten(accumulators)

        grafted = []
        for g, d, layout, pre in zip(grads, directions, layouts(updates), preconditioners):
            if layout is None:
                grafted.append(d)
                continue
            blocks = layout.split(g)
            hi = jax.lax.Precision.HIGHEST
            s = jnp.einsum("ijab,ijbc,ijcd->ijad", pre[0], blocks, pre[1], precision=hi)
            s = layout.merge(s, g.shape)
            grafted.append(s * (jnp.linalg.norm(d) / (jnp.linalg.norm(s) + 1e-16)))
        momentum = [b1 * m + (1.0 - b1) * u
                    for m, u in zip(treedef.flatten_up_to(state.momentum), grafted)]
        new_updates = treedef.unflatten([m.astype(x.dtype) for m, x in zip(momentum, leaves)])
        return new_updates, ShampooState(count, statistics, preconditioners, graft_state,
                                         treedef.unflatten(momentum))

    return optax.GradientTransformationExtraArgs(init, update)


@register(_NAME, family="curvature", extra_args=(),
          paper="Scalable Second Order Optimization for Deep Learning, arXiv:2002.09018")
def shampoo(learning_rate: optax.ScalarOrSchedule = 1e-3, block_size: int = 128,
            precondition_every: int = 10, exponent: Optional[int] = None, b1: float = 0.9,
            beta2: float = 1.0, epsilon: float = 1e-6, graft: str = "adam",
            graft_beta2: float = 0.999, graft_epsilon: float = 1e-8, root_method: str = "newton",
            skip_preconditioning_dim_size_gt: int = 4096, inverse_failure_threshold: float = 0.1,
            weight_decay: float = 0.0) -> optax.GradientTransformationExtraArgs:
    """Shampoo: ``chain(scale_by_shampoo(...), add_decayed_weights(weight_decay),
    scale_by_learning_rate(learning_rate))`` (decoupled weight decay).

    >>> tx = shampoo(1e-2, block_size=4)
    >>> params = {"w": jnp.ones((6, 3))}
    >>> state = tx.init(params)
    """
    direction = scale_by_shampoo(block_size, precondition_every, exponent, b1, beta2, epsilon, graft,
                                 graft_beta2, graft_epsilon, root_method,
                                 skip_preconditioning_dim_size_gt, inverse_failure_threshold)
    return _common.alias(direction, learning_rate, weight_decay)


def shampoo_state_bytes(params, block_size: int = 128, graft: str = "adam",
                        skip_preconditioning_dim_size_gt: int = 4096) -> int:
    """Closed form of ``scale_by_shampoo``'s state size in bytes (float32 throughout): per matrix leaf
    with ``nr x nc`` blocks of ``br x bc``, ``2 nr nc (br^2 + bc^2)`` floats (statistics and roots);
    per leaf of ``n`` entries, ``n`` (momentum) plus ``n`` unless grafting is SGD; 4 for ``count``."""
    floats = 0
    for x in jax.tree.leaves(params):
        layout = _layout(x.shape, block_size, skip_preconditioning_dim_size_gt)
        if layout is not None:
            floats += 2 * layout.n_row_blocks * layout.n_col_blocks * (
                layout.block_rows ** 2 + layout.block_cols ** 2)
        floats += x.size * (1 if graft == "sgd" else 2)
    return 4 * floats + 4
