r"""How the solvers see a cost: a dense matrix, or a point cloud whose cost is computed in row blocks.

Every log-domain quantity the solvers need is a log-sum-exp over one index of ``(h - C) / eps``:

    row_lse(g)_i = LSE_j((g_j - C_ij) / eps),      col_lse(f)_j = LSE_i((f_i - C_ij) / eps),

from which the log-domain half-step (:func:`log_half_step`), the marginals of the plan
``P_ij = exp((f_i + g_j - C_ij)/eps)`` (``P 1 = exp(f/eps + row_lse(g))``) and its total mass follow.
:class:`DenseCost` holds ``C``. :class:`OnlineCost` holds the points ``x`` (n x d), ``y`` (m x d) and an
ott-jax ``CostFn`` and never forms C: a ``lax.map`` over row blocks of ``block_size`` points computes
``C`` for that block (``cost_fn.all_pairs``, times the geometry's scalar ``1 / scale_cost``), reduces it
along the row and drops it. ``col_lse`` is ``row_lse`` of the transposed cost (:meth:`OnlineCost.transpose`:
the roles of x and y swapped), so every log-sum-exp runs along the contiguous axis of its block; a column
reduction streamed over row blocks (running max and rescaled sum of a (block, m) block) was 7x slower
(n = m = 2e4, 3-D: 5.8 s vs 0.8 s CPU per half-step). Peak memory is O((n + m) d + block_size m). The
row count is padded to a multiple of ``block_size`` with points that carry potential ``-inf`` (no mass).

Block size: XLA:CPU writes a block's cost and log-kernel to memory before reducing them (the pairwise
cost is a ``dot``, and the reductions are separate kernels), so a block must stay in cache: by default
(``block_size=None``) a block holds about :data:`BLOCK_ENTRIES` (2^19, 2 MiB of float32) cost entries,
``max(1, BLOCK_ENTRIES // m)`` rows. Measured (docs/ot.md, n = m = 2e4 in 3-D on 2 CPU cores): 0.94 CPU-s
per Sinkhorn iteration at 26 rows (the default), 1.05 at 52, 1.10 at 13, 1.54 at 1024.

Choice (:func:`cost_operator`): a ``PointCloud`` is handled online when ``online=True``, when ott-jax's
``batch_size`` is set on it, or (``online=None``) when it has more than :data:`DENSE_MAX_ENTRIES` cost
entries (2^24, 64 MiB of float32); every other geometry is dense (``geom.cost_matrix``).

The online transport mass ``sum_ij P_ij`` has a custom VJP computed in one more streaming pass
(:func:`plan_mass`): reverse mode stores no block of C or P, so the envelope-theorem gradient of the
regularised cost (``OTOutput.reg_cost``) w.r.t. x, y, a, b and the potentials costs O(n + m) memory.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np
from ott.geometry import costs, geometry, pointcloud

__all__ = ["BLOCK_ENTRIES", "DENSE_MAX_ENTRIES", "DenseCost", "OnlineCost", "cost_operator", "log_half_step",
           "safe_lse"]

DENSE_MAX_ENTRIES = 2 ** 24
BLOCK_ENTRIES = 2 ** 19


def static_field(default=dataclasses.MISSING):
    """A dataclass field that is static (part of the treedef, not a traced child) in a registered pytree."""
    return dataclasses.field(default=default, metadata=dict(static=True))


def safe_lse(z, axis):
    """``logsumexp`` with an all ``-inf`` slice giving 0 instead of ``-inf`` (an empty row / column keeps
    a finite potential update, as in ott-jax); NaN stays NaN (a NaN cost must reach the error)."""
    out = jax.nn.logsumexp(z, axis=axis)
    return jnp.where(jnp.isneginf(out), 0.0, out)


def log_half_step(op, other, log_w, tau, eps, axis: int, current=None):
    r"""The log-domain half-step shared by Sinkhorn, SNS and P^2OT:

    ``axis=0``: ``g_j = tau (eps log b_j - eps LSE_i((f_i - C_ij)/eps))`` from ``other = f``;
    ``axis=1``: ``f_i = tau (eps log a_i - eps LSE_j((g_j - C_ij)/eps))`` from ``other = g``.
    ``tau`` may be a scalar or one value per entry (P^2OT's per-column relaxation).

    ``current`` (the potential being updated) centres the log-sum-exp as ott-jax does: it is taken over
    ``(f_i + g_j - C_ij)/eps``, the log-plan, whose entries are O(1) near the optimum, and ``current/eps``
    is subtracted afterwards. The same value, but in float32 the uncentred form rounds ``(f_i - C_ij)/eps``
    at the scale of ``|g_j|/eps`` and stalls at a ~3x higher marginal error (1000 x 10 point clouds:
    6e-7 to 1.1e-6 uncentred, 2.3e-7 to 2.9e-7 centred, ott-jax 2.3e-7 to 2.9e-7).
    """
    lse = op.col_lse(other, eps, current) if axis == 0 else op.row_lse(other, eps, current)
    return tau * (eps * log_w - eps * lse)


def lse_marginals(op, f, g, eps):
    """``(P 1, P^T 1)`` as exponentials of centred log-sum-exps, ``exp(LSE_j((f_i + g_j - C_ij)/eps))``:
    the plan is never formed, and in float32 this is ~2x more accurate than summing its entries (the
    marginal error of a 1000 x 10 problem: 1.1e-6 from summed entries, see :func:`log_half_step`)."""
    # zero-mass entries (potential -inf) have zero marginal; NaN potentials give NaN (status nonfinite)
    row = jnp.where(jnp.isneginf(f), 0.0, jnp.exp(op.row_lse(g, eps, f) + _centre(f, eps)))
    col = jnp.where(jnp.isneginf(g), 0.0, jnp.exp(op.col_lse(f, eps, g) + _centre(g, eps)))
    return row, col


def _centre(current, eps):
    # the potential being updated, -inf (zero mass) treated as 0 (as ott-jax does; NaN stays NaN)
    return jnp.where(jnp.isneginf(current), 0.0, current) / eps


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class DenseCost:
    """A materialised cost matrix (n x m)."""

    cost: jax.Array
    online = False

    @property
    def shape(self):
        return self.cost.shape

    @property
    def dtype(self):
        return self.cost.dtype

    def poisoned(self, invalid):
        """The same cost, all NaN where ``invalid`` (a traced flag): the solve then reports ``nonfinite``."""
        return DenseCost(jnp.where(invalid, jnp.nan, self.cost))

    def row_lse(self, g, eps, current=None):
        """``LSE_j((g_j - C_ij)/eps)`` (centred on ``current`` = f when given, see :func:`log_half_step`)."""
        if current is None:
            return safe_lse((g[None, :] - self.cost) / eps, axis=1)
        c = _centre(current, eps)
        return safe_lse((g[None, :] - self.cost) / eps + c[:, None], axis=1) - c

    def col_lse(self, f, eps, current=None):
        """``LSE_i((f_i - C_ij)/eps)`` (centred on ``current`` = g when given)."""
        if current is None:
            return safe_lse((f[:, None] - self.cost) / eps, axis=0)
        c = _centre(current, eps)
        return safe_lse((f[:, None] - self.cost) / eps + c[None, :], axis=0) - c

    def plan(self, f, g, eps):
        return jnp.exp((f[:, None] + g[None, :] - self.cost) / eps)

    def marginals(self, f, g, eps):
        return lse_marginals(self, f, g, eps)

    def mass(self, f, g, eps):
        return jnp.sum(self.plan(f, g, eps))

    def transport_cost(self, f, g, eps):
        return jnp.sum(self.plan(f, g, eps) * self.cost)

    def plan_sums(self, f, g, eps):
        """``(P 1, P^T 1)`` summed from the plan's entries (one exponential per entry; SNS's Newton step)."""
        p = self.plan(f, g, eps)
        return p.sum(axis=1), p.sum(axis=0)

    def row_top_k(self, g, eps, k: int):
        """Per row, the column indices of the ``k`` largest plan entries and their costs (see :func:`top_k_rows`)."""
        return top_k_rows(self.cost, g, eps, k)


@jax.tree_util.register_pytree_node_class
class SwappedCost(costs.CostFn):
    """``c'(x, y) = c(y, x)``: an ott-jax ``CostFn`` seen from the other marginal (its pairwise form, so
    ``all_pairs(y, x)`` is the transposed cost matrix of ``cost_fn.all_pairs(x, y)``)."""

    def __init__(self, cost_fn: costs.CostFn):
        self.cost_fn = cost_fn

    def __call__(self, x, y):
        return self.cost_fn(y, x)

    def tree_flatten(self):
        return (self.cost_fn,), None

    @classmethod
    def tree_unflatten(cls, aux_data, children):
        del aux_data
        return cls(*children)


# c(x, y) = c(y, x): transposed without a wrapper (their own, faster ``all_pairs`` stays in use)
_SYMMETRIC_COSTS = (costs.SqEuclidean, costs.Euclidean, costs.Cosine)


def swapped(cost_fn: costs.CostFn) -> costs.CostFn:
    """The cost with its arguments swapped (:class:`SwappedCost`, unwrapped twice, symmetric costs as they are)."""
    if isinstance(cost_fn, SwappedCost):
        return cost_fn.cost_fn
    return cost_fn if type(cost_fn) in _SYMMETRIC_COSTS else SwappedCost(cost_fn)


def check_block_size(block_size) -> None:
    """A solver's ``block_size``: ``None`` (sized to :data:`BLOCK_ENTRIES`) or an int >= 1."""
    if block_size is not None and (isinstance(block_size, bool) or not isinstance(block_size, int)
                                   or block_size < 1):
        raise ValueError(f"block_size must be None (about {BLOCK_ENTRIES} cost entries per block) or an int "
                         f">= 1 (rows of the cost computed at once), got {block_size!r}")


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class OnlineCost:
    """Points ``x`` (n x d), ``y`` (m x d), an ott-jax ``CostFn`` and a scalar cost scale; the cost is
    computed ``block_size`` rows at a time (``None``: ``BLOCK_ENTRIES // m`` rows; module docstring)."""

    x: jax.Array
    y: jax.Array
    cost_fn: costs.CostFn
    inv_scale: jax.Array
    block_size: Optional[int] = static_field(None)
    online = True

    @property
    def shape(self):
        return self.x.shape[0], self.y.shape[0]

    @property
    def dtype(self):
        return self.x.dtype

    @property
    def rows(self) -> int:
        """Rows per block: ``block_size``, or about :data:`BLOCK_ENTRIES` entries' worth, at most n."""
        n, m = self.shape
        return min(self.block_size or max(1, BLOCK_ENTRIES // m), n)

    def transpose(self) -> "OnlineCost":
        """The m x n cost ``C^T`` (points swapped, the cost's arguments too; same block size setting)."""
        return OnlineCost(self.y, self.x, swapped(self.cost_fn), self.inv_scale, self.block_size)

    def poisoned(self, invalid):
        return dataclasses.replace(self, inv_scale=jnp.where(invalid, jnp.nan, self.inv_scale))

    def block_cost(self, xb, y=None):
        return self.cost_fn.all_pairs(xb, self.y if y is None else y) * self.inv_scale

    def _blocks(self, *row_arrays, fill=0.0, block_size=None):
        """Row arrays padded to a multiple of the block size and reshaped (n_blocks, block, ...)."""
        n = self.shape[0]
        bs = min(block_size or self.rows, n)
        pad = -n % bs
        out = []
        for arr, value in zip(row_arrays, fill if isinstance(fill, tuple) else (fill,) * len(row_arrays)):
            arr = jnp.pad(arr, [(0, pad)] + [(0, 0)] * (arr.ndim - 1), constant_values=value)
            out.append(arr.reshape((-1, bs) + arr.shape[1:]))
        return out

    def row_lse(self, g, eps, current=None):
        n = self.shape[0]
        c = jnp.zeros((n,), self.dtype) if current is None else _centre(current, eps)
        xb, cb = self._blocks(self.x, c)
        out = jax.lax.map(lambda blk: safe_lse((g[None, :] - self.block_cost(blk[0])) / eps + blk[1][:, None],
                                               axis=1) - blk[1], (xb, cb))
        return out.reshape(-1)[:n]

    def col_lse(self, f, eps, current=None):
        """``LSE_i((f_i - C_ij)/eps)``: the row log-sum-exps of the transposed cost (module docstring)."""
        return self.transpose().row_lse(f, eps, current)

    def plan(self, f, g, eps):
        return jnp.exp((f[:, None] + g[None, :] - self.block_cost(self.x)) / eps)

    def marginals(self, f, g, eps):
        return lse_marginals(self, f, g, eps)

    def mass(self, f, g, eps):
        return plan_mass(self, f, g, eps)

    def transport_cost(self, f, g, eps):
        xb, fb = self._blocks(self.x, f, fill=(0.0, -jnp.inf))

        def body(total, blk):
            xi, fi = blk
            c = self.block_cost(xi)
            return total + jnp.sum(jnp.exp((fi[:, None] + g[None, :] - c) / eps) * c), None

        total, _ = jax.lax.scan(body, jnp.zeros((), self.dtype), (xb, fb))
        return total

    def max_cost(self):
        """``max_ij C_ij``, one row block at a time."""
        xb, real = self._blocks(self.x, jnp.ones(self.shape[0], bool), fill=(0.0, False))   # not the padding
        return jnp.max(jax.lax.map(lambda blk: jnp.max(jnp.where(blk[1][:, None], self.block_cost(blk[0]),
                                                                 -jnp.inf)), (xb, real)))

    def plan_sums(self, f, g, eps):
        """``(P 1, P^T 1)`` summed from the plan's entries, one row block at a time (rows come out of the
        scan, columns are accumulated)."""
        n, m = self.shape
        xb, fb = self._blocks(self.x, f, fill=(0.0, -jnp.inf))

        def body(col, blk):
            xi, fi = blk
            p = jnp.exp((fi[:, None] + g[None, :] - self.block_cost(xi)) / eps)
            return col + p.sum(axis=0), p.sum(axis=1)

        col, rows = jax.lax.scan(body, jnp.zeros((m,), self.dtype), (xb, fb))
        return rows.reshape(-1)[:n], col

    def row_top_k(self, g, eps, k: int):
        """:func:`top_k_rows` block by block: only the (n, k) indices and costs are kept."""
        n = self.shape[0]
        (xb,) = self._blocks(self.x)
        idx, cost = jax.lax.map(lambda xi: top_k_rows(self.block_cost(xi), g, eps, k), xb)
        return idx.reshape(-1, k)[:n], cost.reshape(-1, k)[:n]


def top_k_rows(cost, g, eps, k: int):
    """The ``k`` largest entries of each row of the plan ``exp((f_i + g_j - C_ij)/eps)``: those of the
    log-kernel ``(g_j - C_ij)/eps`` (f_i is constant along a row), ranked in float32, whose ``top_k``
    XLA:CPU runs ~5-20x faster than a float64 one (ties closer than float32 rounding may swap, harmlessly).
    Returns the int32 column indices (rows, k) and the costs ``C_ij`` at them."""
    _, idx = jax.lax.top_k(((g[None, :] - cost) / eps).astype(jnp.float32), k)
    return idx, jnp.take_along_axis(cost, idx, axis=1)


def _block_mass(x, y, f, g, eps, op):
    c = op.cost_fn.all_pairs(x, y) * op.inv_scale
    return jnp.sum(jnp.exp((f[:, None] + g[None, :] - c) / eps))


@jax.custom_vjp
def plan_mass(op: OnlineCost, f, g, eps):
    """``sum_ij exp((f_i + g_j - C_ij)/eps)`` streamed over row blocks; its VJP is one more streaming
    pass (per block, the VJP of the block's mass; the y, g and eps cotangents are summed over blocks)."""
    xb, fb = op._blocks(op.x, f, fill=(0.0, -jnp.inf))

    def body(total, blk):
        return total + _block_mass(blk[0], op.y, blk[1], g, eps, op), None

    total, _ = jax.lax.scan(body, jnp.zeros((), op.dtype), (xb, fb))
    return total


def _plan_mass_fwd(op, f, g, eps):
    return plan_mass(op, f, g, eps), (op, f, g, eps)


def _plan_mass_bwd(res, ct):
    op, f, g, eps = res
    n, d = op.shape[0], op.x.shape[1]
    # The VJP of a generic pairwise cost holds a (block, m, d) gradient: blocks d + 3 times smaller keep
    # this pass's peak memory at the forward's.
    xb, fb = op._blocks(op.x, f, fill=(0.0, -jnp.inf), block_size=max(1, op.rows // (d + 3)))
    zeros = jax.tree.map(jnp.zeros_like, (op, g, eps))

    def body(acc, blk):
        xi, fi = blk
        _, vjp = jax.vjp(lambda xi, fi, op, g, eps: _block_mass(xi, op.y, fi, g, eps, op), xi, fi, op, g, eps)
        dxi, dfi, dop, dg, deps = vjp(ct)
        return jax.tree.map(jnp.add, acc, (dop, dg, deps)), (dxi, dfi)

    (dop, dg, deps), (dx, df) = jax.lax.scan(body, zeros, (xb, fb))
    dx = dx.reshape((-1,) + op.x.shape[1:])[:n]
    df = df.reshape(-1)[:n]
    # x's cotangent comes from the blocks; dop (from op.y, op.inv_scale, cost_fn parameters) holds the rest.
    dop = dataclasses.replace(dop, x=dop.x + dx)
    return dop, df, dg, deps


plan_mass.defvjp(_plan_mass_fwd, _plan_mass_bwd)


def _scalar_inv_scale(geom: pointcloud.PointCloud):
    scale = geom._scale_cost
    if isinstance(scale, str):
        raise ValueError(f"scale_cost={scale!r} needs the whole cost matrix; online point clouds take a "
                         f"number (e.g. scale_cost=1.0, the default)")
    return jnp.asarray(1.0 / scale if not isinstance(scale, jax.Array) else 1.0 / scale, geom.x.dtype)


def explicit_epsilon(geom) -> bool:
    """Whether ``geom.epsilon`` is given (a number or a scheduler), not a statistic of the whole cost."""
    return geom._relative_epsilon is None and geom._epsilon_init is not None


def is_online(geom, online: Optional[bool] = None) -> bool:
    """Whether :func:`cost_operator` streams ``geom`` (module docstring)."""
    if not isinstance(geom, pointcloud.PointCloud):
        if online:
            raise ValueError(f"online=True needs a PointCloud geometry (points), got {type(geom).__name__}")
        return False
    if online is not None:
        return bool(online)
    n, m = geom.shape
    return geom.is_online or n * m > DENSE_MAX_ENTRIES


def cost_operator(geom: geometry.Geometry, online: Optional[bool] = None, block_size: Optional[int] = None):
    """:class:`OnlineCost` for a point cloud chosen by :func:`is_online`, else :class:`DenseCost`."""
    if not is_online(geom, online):
        return DenseCost(geom.cost_matrix)
    if not explicit_epsilon(geom):
        raise ValueError("an online point cloud needs epsilon given as a number (or an Epsilon scheduler): a "
                         "relative or default epsilon is a statistic of the whole cost matrix, got "
                         f"epsilon=None, relative_epsilon={geom._relative_epsilon!r}")
    if block_size is None and geom.is_online:
        block_size = int(geom.batch_size)
    return OnlineCost(geom.x, geom.y, geom.cost_fn, _scalar_inv_scale(geom), block_size=block_size)
