r"""SOAP: Adam run in the eigenbasis of Shampoo's Kronecker statistics.

"SOAP: Improving and Stabilizing Shampoo using Adam" (Vyas, Morwani, Zhao, Shapira, Brandfonbrener,
Janson, Kakade), arXiv:2409.11321. Transcribed from the official code, nikhilvyas/SOAP ``soap.py``
(``SOAP.step``, ``update_preconditioner``, ``get_orthogonal_matrix``, ``get_orthogonal_matrix_QR``;
``merge_dims=False``, ``precondition_1d=False``, ``normalize_grads=False``, ``correct_bias=True``).

For a matrix leaf (or block) ``G`` with Shampoo's statistics ``L``, ``R`` (the same blocks and
``G G^T``, ``G^T G`` as :mod:`.shampoo`) and orthonormal bases ``Q_L``, ``Q_R``::

    G~ = Q_L^T G Q_R                                    (the gradient in the eigenbasis)
    m <- b1 m + (1 - b1) G~        v <- b2 v + (1 - b2) G~^2
    direction = sqrt(1 - b2^t) / (1 - b1^t) * Q_L (m / (sqrt(v) + eps)) Q_R^T
    L <- s L + (1 - s) G G^T       R <- s R + (1 - s) G^T G      (s = shampoo_beta, default b2)

The first call only accumulates ``L``, ``R`` and sets ``Q_L``, ``Q_R`` to their eigenvectors (``eigh``,
eigenvalues descending) and returns a zero direction, so the gradient is never projected on a basis
built from itself (the official ``continue``); ``t`` counts the Adam steps after it. Every
``precondition_frequency`` Adam steps (after the step) the bases are refreshed by one power iteration
and a QR decomposition: the columns of ``Q`` are sorted by the estimated eigenvalues
``diag(Q^T L Q)`` (descending, ``v`` permuted alike), ``Q <- qr(L Q)``, and the momentum ``m`` is
carried to the new basis (``Q_new^T Q_old m ...``). A basis that comes out non-finite is discarded:
the previous one (the identity before the first) is kept. 1-D leaves and leaves with a side longer
than ``max_precond_dim`` take plain Adam with the same step-size correction.

What differs from the official code: tensors of order > 2 are seen as matrices
``(prod(shape[:-1]), shape[-1])`` (as in our Shampoo) instead of one basis per dimension; a leaf with
a side over ``max_precond_dim`` is not rotated on its other side either; sides longer than
``block_size`` are cut into Shampoo's zero-padded blocks (the official code does not block; the
default ``block_size = max_precond_dim`` never blocks a rotated leaf); weight decay is the chain's
``add_decayed_weights`` (decay of the weights before the step; the official code decays them after).
"""

from __future__ import annotations

from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp
import optax

from ..registry import register
from .. import _common
from .shampoo import _layout, kronecker_statistics

__all__ = ["SOAPState", "scale_by_soap", "soap", "soap_state_bytes"]

_NAME = "soap"
_HI = jax.lax.Precision.HIGHEST


class SOAPState(NamedTuple):
    """Per leaf (``jax.tree.leaves`` order): ``statistics`` and ``bases`` a pair ``(L, R)``,
    ``(Q_L, Q_R)`` of stacked blocks ``(nr, nc, b, b)``, or ``None`` for an Adam leaf; ``mu``, ``nu``:
    Adam's moments in the eigenbasis, blocks ``(nr, nc, br, bc)`` (leaf-shaped for an Adam leaf)."""

    count: jax.Array
    statistics: tuple
    bases: tuple
    mu: tuple
    nu: tuple


def _rotate(q_left, x, q_right):
    """``Q_L^T X Q_R`` per block."""
    return jnp.einsum("ijba,ijbc,ijcd->ijad", q_left, x, q_right, precision=_HI)


def _rotate_back(q_left, x, q_right):
    """``Q_L X Q_R^T`` per block."""
    return jnp.einsum("ijab,ijbc,ijdc->ijad", q_left, x, q_right, precision=_HI)


def _eigenbasis(statistic):
    """Eigenvectors by descending eigenvalue (official ``get_orthogonal_matrix``: ``eigh`` of
    ``S + 1e-30 I``, columns flipped)."""
    eye = jnp.eye(statistic.shape[-1], dtype=statistic.dtype)
    return jnp.flip(jnp.linalg.eigh(statistic + 1e-30 * eye)[1], axis=-1)


def _power_qr(statistic, basis):
    """One power iteration and QR (official ``get_orthogonal_matrix_QR``): the permutation sorting
    ``diag(Q^T S Q)`` descending, and ``qr(S Q_sorted)``'s orthonormal factor."""
    estimated = jnp.einsum("...ba,...bc,...ca->...a", basis, statistic, basis, precision=_HI)
    order = jnp.argsort(-estimated, axis=-1)
    basis = jnp.take_along_axis(basis, order[..., None, :], axis=-1)
    return order, jnp.linalg.qr(jnp.matmul(statistic, basis, precision=_HI))[0]


def _finite_or(new, previous):
    """``new`` per block where it is finite, else ``previous``."""
    return jnp.where(jnp.all(jnp.isfinite(new), axis=(-2, -1), keepdims=True), new, previous)


def _refresh(statistics, bases, mu, nu):
    """New bases of one matrix leaf; ``mu`` carried over, ``nu`` permuted; a non-finite basis keeps
    the previous one (and the moments as they were)."""
    m = _rotate_back(bases[0], mu, bases[1])
    order_l, q_l = _power_qr(statistics[0], bases[0])
    order_r, q_r = _power_qr(statistics[1], bases[1])
    new_nu = jnp.take_along_axis(nu, order_l[..., :, None], axis=-2)
    new_nu = jnp.take_along_axis(new_nu, order_r[..., None, :], axis=-1)
    ok = (jnp.all(jnp.isfinite(q_l), axis=(-2, -1)) & jnp.all(jnp.isfinite(q_r), axis=(-2, -1))
          )[..., None, None]
    return ((jnp.where(ok, q_l, bases[0]), jnp.where(ok, q_r, bases[1])),
            jnp.where(ok, _rotate(q_l, m, q_r), mu), jnp.where(ok, new_nu, nu))


def scale_by_soap(b1: float = 0.95, b2: float = 0.95, shampoo_beta: Optional[float] = None,
                  eps: float = 1e-8, precondition_frequency: int = 10,
                  max_precond_dim: int = 10000, block_size: Optional[int] = None
                  ) -> optax.GradientTransformationExtraArgs:
    r"""SOAP's direction: bias-corrected Adam in the eigenbasis of Shampoo's statistics (module
    docstring).

    Args:
      b1, b2: Adam's moment decays in ``[0, 1)`` (official defaults 0.95, 0.95).
      shampoo_beta: decay of ``L``, ``R`` in ``[0, 1)``; ``None``: ``b2`` (the official ``-1``).
      eps: Adam's epsilon (>= 0), added to ``sqrt(v)``.
      precondition_frequency: Adam steps between basis refreshes (>= 1).
      max_precond_dim: leaves with a longer side take plain Adam (>= 1).
      block_size: longest side of a rotated block (>= 1); ``None``: ``max_precond_dim``.

    >>> tx = scale_by_soap()
    >>> params = {"w": jnp.ones((3, 2)), "b": jnp.ones(2)}
    >>> state = tx.init(params)
    >>> u, state = tx.update(params, state, params)  # the first call only builds the bases
    >>> [float(jnp.abs(x).max()) for x in jax.tree.leaves(u)]
    [0.0, 0.0]
    """
    _common.check_beta("b1", b1)
    _common.check_beta("b2", b2)
    if shampoo_beta is not None:
        _common.check_beta("shampoo_beta", shampoo_beta)
    _common.check_nonnegative("eps", eps)
    _common.check_int("precondition_frequency", precondition_frequency)
    _common.check_int("max_precond_dim", max_precond_dim)
    if block_size is not None:
        _common.check_int("block_size", block_size)
    blocks = max_precond_dim if block_size is None else block_size
    decay = b2 if shampoo_beta is None else shampoo_beta

    def layouts(tree):
        return [_layout(x.shape, blocks, max_precond_dim) for x in jax.tree.leaves(tree)]

    def init(params):
        statistics, bases, mu = [], [], []
        for x, layout in zip(jax.tree.leaves(params), layouts(params)):
            if layout is None:
                statistics.append(None)
                bases.append(None)
                mu.append(jnp.zeros(x.shape, jnp.float32))
                continue
            nr, nc, br, bc = (layout.n_row_blocks, layout.n_col_blocks, layout.block_rows,
                              layout.block_cols)
            statistics.append((jnp.zeros((nr, nc, br, br), jnp.float32),
                               jnp.zeros((nr, nc, bc, bc), jnp.float32)))
            bases.append((jnp.broadcast_to(jnp.eye(br, dtype=jnp.float32), (nr, nc, br, br)),
                          jnp.broadcast_to(jnp.eye(bc, dtype=jnp.float32), (nr, nc, bc, bc))))
            mu.append(jnp.zeros((nr, nc, br, bc), jnp.float32))
        return SOAPState(jnp.zeros([], jnp.int32), tuple(statistics), tuple(bases), tuple(mu),
                         tuple(mu))

    def update(updates, state, params=None, **extra):
        del params, extra
        leaves, treedef = jax.tree.flatten(updates)
        first = state.count == 0
        t = jnp.maximum(state.count, 1).astype(jnp.float32)  # Adam steps, this one included
        correction = jnp.sqrt(1.0 - jnp.asarray(b2, jnp.float32) ** t) / (
            1.0 - jnp.asarray(b1, jnp.float32) ** t)
        directions, statistics, outers, mus, nus = [], [], [], [], []
        for g, layout, stats, basis, mu, nu in zip(leaves, layouts(updates), state.statistics,
                                                   state.bases, state.mu, state.nu):
            g = g.astype(jnp.float32)
            if layout is not None:
                block = layout.split(g)
                g_t = _rotate(basis[0], block, basis[1])
                gg_t, gt_g = kronecker_statistics(block)
                outers.append((gg_t, gt_g))
                statistics.append((decay * stats[0] + (1.0 - decay) * gg_t,
                                   decay * stats[1] + (1.0 - decay) * gt_g))
            else:
                g_t = g
                statistics.append(None)
                outers.append(None)
            # the first call only builds the bases: no Adam step, moments stay zero
            mu = jnp.where(first, mu, b1 * mu + (1.0 - b1) * g_t)
            nu = jnp.where(first, nu, b2 * nu + (1.0 - b2) * g_t * g_t)
            # (0 * g~ on the first call: zero, but a NaN gradient still shows in the update)
            d = jnp.where(first, 0.0 * g_t, correction * mu / (jnp.sqrt(nu) + eps))
            if layout is not None:
                d = layout.merge(_rotate_back(basis[0], d, basis[1]), g.shape)
            directions.append(d)
            mus.append(mu)
            nus.append(nu)

        matrices = [i for i, s in enumerate(statistics) if s is not None]

        def initial_bases(bases, mus, nus):
            # the first statistics are (1 - s) G G^T, (1 - s) G^T G: their eigenvectors are taken from
            # G G^T, G^T G, so that a degenerate eigenspace's basis does not hang on how (1 - s) rounds
            new = list(bases)
            for i in matrices:
                new[i] = tuple(_finite_or(_eigenbasis(s), q) for s, q in zip(outers[i], bases[i]))
            return tuple(new), mus, nus

        def refresh(bases, mus, nus):
            bases, mus, nus = list(bases), list(mus), list(nus)
            for i in matrices:
                bases[i], mus[i], nus[i] = _refresh(statistics[i], bases[i], mus[i], nus[i])
            return tuple(bases), tuple(mus), tuple(nus)

        keep = lambda *a: a  # noqa: E731
        carried = (state.bases, tuple(mus), tuple(nus))
        carried = jax.lax.cond(first, initial_bases, keep, *carried)
        carried = jax.lax.cond(~first & (state.count % precondition_frequency == 0), refresh, keep,
                               *carried)
        bases, mus, nus = carried
        directions = [d.astype(x.dtype) for d, x in zip(directions, leaves)]
        return treedef.unflatten(directions), SOAPState(state.count + 1, tuple(statistics), bases,
                                                        mus, nus)

    return optax.GradientTransformationExtraArgs(init, update)


@register(_NAME, family="curvature", extra_args=(),
          paper="SOAP: Improving and Stabilizing Shampoo using Adam, arXiv:2409.11321")
def soap(learning_rate: optax.ScalarOrSchedule = 3e-3, b1: float = 0.95, b2: float = 0.95,
         shampoo_beta: Optional[float] = None, eps: float = 1e-8, precondition_frequency: int = 10,
         max_precond_dim: int = 10000, block_size: Optional[int] = None,
         weight_decay: float = 0.01) -> optax.GradientTransformationExtraArgs:
    """SOAP: ``chain(scale_by_soap(...), add_decayed_weights(weight_decay),
    scale_by_learning_rate(learning_rate))`` (the official defaults: lr 3e-3, betas 0.95, wd 0.01).

    >>> tx = soap(1e-2)
    >>> state = tx.init({"w": jnp.ones((3, 2))})
    """
    direction = scale_by_soap(b1, b2, shampoo_beta, eps, precondition_frequency, max_precond_dim,
                              block_size)
    return _common.alias(direction, learning_rate, weight_decay)


def soap_state_bytes(params, max_precond_dim: int = 10000, block_size: Optional[int] = None) -> int:
    """Closed form of ``scale_by_soap``'s state size in bytes (float32 throughout): per rotated leaf
    with ``nr x nc`` blocks of ``br x bc``, ``2 nr nc (br^2 + bc^2)`` (statistics and bases) plus
    ``2 nr nc br bc`` (the moments, zero-padded blocks); per Adam leaf of ``n`` entries, ``2 n``;
    4 for ``count``."""
    blocks = max_precond_dim if block_size is None else block_size
    floats = 0
    for x in jax.tree.leaves(params):
        layout = _layout(x.shape, blocks, max_precond_dim)
        if layout is None:
            floats += 2 * x.size
            continue
        n = layout.n_row_blocks * layout.n_col_blocks
        floats += 2 * n * (layout.block_rows ** 2 + layout.block_cols ** 2
                           + layout.block_rows * layout.block_cols)
    return 4 * floats + 4
