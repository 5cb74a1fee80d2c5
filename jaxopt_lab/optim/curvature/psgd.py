r"""PSGD Kron: Kronecker-factored preconditioners fitted on the Lie group of triangular matrices.

"Curvature-Informed SGD via General Purpose Lie-Group Preconditioners" (Pooladzandi, Li),
arXiv:2402.04553, and "Preconditioned Stochastic Gradient Descent" (Li), arXiv:1512.04202. Transcribed
from the official code, lixilinx/psgd_torch ``preconditioned_stochastic_gradient_descent.py``
(``update_precond_kron_math_``, ``precond_grad_kron_math``, ``norm_lower_bound``).

For a matrix leaf (``r x c``) the preconditioner is ``P = (Q_r^T Q_r) (x) (Q_l^T Q_l)`` with upper
triangular ``Q_l``, ``Q_r``; it is fitted to pairs ``(v, h)`` to minimise ``E[h^T P h + v^T P^{-1} v]``
(optimum ``P^{-1} = (E[h h^T])^{1/2}`` for ``v ~ N(0, I)``): with ``A = Q_l H Q_r^T`` and
``B = Q_l^{-T} V Q_r^{-1}``,

    Q_l <- Q_l - step / ||A A^T + B B^T||_lb * triu(A A^T - B B^T) Q_l      (and alike for Q_r)

where ``||.||_lb`` is the official ``norm_lower_bound`` of the spectral norm (a relative, Lie-group
step). Two ways to get the pairs:

* ``"hessian"`` (PSGD-Newton): ``v ~ N(0, I)``, ``h = H v`` = one ``jax.jvp`` of the ``grad_fn``
  extra argument (forward-over-reverse), so ``P -> |H|^{-1}``;
* ``"whitening"`` (gradient whitening, no Hessian-vector product): ``h`` = the momentum of the
  gradients, so ``P -> E[g g^T]^{-1/2}`` (a Kronecker-factored Adam/Shampoo-like whitening).

The step is ``P m`` for the gradient momentum ``m <- b1 m + (1 - b1) g``: ``Q_l^T Q_l m Q_r^T Q_r``.
1-D leaves use an elementwise diagonal ``q`` (``P = diag(q^2)``, same fitting rule elementwise). Each
side of a matrix is triangular unless the official size rule (psgd_torch ``init_kron_states_exprs``)
makes it diagonal: ``size == 1``, ``size > max_size_triangular`` or ``size^2 > max_skew * numel``; with
the official default ``max_skew = 1`` the longer side of a non-square matrix is diagonal (a 256 x 32
embedding gets a 32 x 32 triangular factor and a length-256 vector, not a dense 256 x 256 one), which
keeps the fit's cost and memory near those of the gradient. The preconditioner is fitted every
``precondition_every`` steps under ``lax.cond`` (the official code does it with a probability); the
factors are rebalanced to equal max-norms after each fit, which leaves ``P`` and its fit unchanged.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp
import optax

from ..registry import register
from .. import _common
from . import _checks

__all__ = ["PSGDKronState", "scale_by_psgd_kron", "psgd_kron", "norm_lower_bound",
           "kron_fit_step", "upper_triangular_inverse"]

_NAME = "psgd_kron"
_TINY = 1.2e-38  # float32's smallest normal number, the official ``tiny``
MODES = ("hessian", "whitening")


class PSGDKronState(NamedTuple):
    """``factors``: per leaf (``jax.tree.leaves`` order) ``(Q_l, Q_r)`` or ``(q,)`` (diagonal, leaf-shaped);
    ``momentum``: like params; ``key``: for the probe vectors ``v``."""

    count: jax.Array
    key: jax.Array
    factors: tuple
    momentum: Any


def norm_lower_bound(a: jax.Array) -> jax.Array:
    """A lower bound of the spectral norm of the symmetric ``a`` (official ``norm_lower_bound``):
    ``max|a| * ||a x|| / ||x||`` with ``x = a a_j`` for ``a_j`` the row of largest norm."""
    max_abs = jnp.max(jnp.abs(a))
    safe = jnp.where(max_abs > 0, max_abs, 1.0)
    a = a / safe
    j = jnp.argmax(jnp.sum(a * a, axis=1))
    x = a @ a[j]
    x = x / jnp.maximum(jnp.linalg.norm(x), _TINY)
    return jnp.where(max_abs > 0, max_abs * jnp.linalg.norm(a @ x), 0.0)


def _matrix_sides(shape) -> tuple[int, int]:
    return math.prod(shape[:-1]), shape[-1]


def _side_is_triangular(size: int, numel: int, max_size: int, max_skew: Optional[int]) -> bool:
    """The official rule (psgd_torch ``init_kron_states_exprs``, "use diagonal matrix as preconditioner
    for this dim" if ``size == 1 or size > max_size or size**2 > max_skew * t.numel()``)."""
    too_skewed = max_skew is not None and size ** 2 > max_skew * numel
    return not (size == 1 or size > max_size or too_skewed)


def upper_triangular_inverse(q: jax.Array) -> jax.Array:
    """The inverse of the upper-triangular ``q`` (nonzero diagonal) by recursive 2 x 2 blocking, with
    matrix products only (the recursion of LAPACK's ``trtri``):

        [[A, B], [0, C]]^{-1} = [[A^{-1}, -A^{-1} B C^{-1}], [0, C^{-1}]]

    with both halves inverted as one batch per level (``q`` is embedded in the identity of the next
    power-of-two size, whose inverse has ``q^{-1}`` in the same corner). Why not a triangular solve:
    XLA on CPU lowers ``triangular_solve`` to a LAPACK call outside the compiled program, whose
    threads contend with the program's (measured at ~50x a matmul of the same size on a loaded
    2-core machine); this costs ``n^3 / 3`` multiply-adds in ``log2 n`` batched products.

    >>> q = jnp.array([[2.0, 1.0], [0.0, 4.0]])
    >>> upper_triangular_inverse(q) @ q
    Array([[1., 0.],
           [0., 1.]], dtype=float32)
    """
    n = q.shape[-1]
    size = 1 << (n - 1).bit_length()
    u = jnp.eye(size, dtype=q.dtype).at[:n, :n].set(jnp.triu(q))

    def inverse(u):  # (..., m, m) upper triangular, m a power of two
        m = u.shape[-1]
        if m == 1:
            return 1.0 / u
        h = m // 2
        halves = inverse(jnp.stack([u[..., :h, :h], u[..., h:, h:]]))
        a_inv, c_inv = halves[0], halves[1]
        top = -_matmul(_matmul(a_inv, u[..., :h, h:]), c_inv)
        return jnp.concatenate([jnp.concatenate([a_inv, top], -1),
                                jnp.concatenate([jnp.zeros_like(top), c_inv], -1)], -2)

    return inverse(u)[:n, :n]


def _matmul(x, y):
    return jnp.matmul(x, y, precision=jax.lax.Precision.HIGHEST)


def _mul_left(q, x):
    """``Q_l X`` for a triangular ``q`` or ``diag(q) X`` for a vector."""
    return _matmul(q, x) if q.ndim == 2 else q[:, None] * x


def _gram(q, x, y):
    """The side's term ``X Y^T`` (triangular ``q``) or its diagonal, row sums of ``X * Y`` (vector)."""
    return _matmul(x, y.T) if q.ndim == 2 else jnp.sum(x * y, 1)


def _fit_side(q, term1, term2, step):
    """One factor's Lie-group step (official ``update_precond_kron_math_``, ``step_normalizer="2nd"``)."""
    if q.ndim == 1:
        return q - step / (jnp.max(jnp.abs(term1 + term2)) + _TINY) * (term1 - term2) * q
    scale = step / (norm_lower_bound(term1 + term2) + _TINY)
    return q - scale * _matmul(jnp.triu(term1 - term2), q)


def kron_fit_step(factors: tuple, v: jax.Array, h: jax.Array, step) -> tuple:
    """One Lie-group fitting step of the factors of one leaf on the pair ``(v, h)`` (module docstring).

    ``factors`` is ``(q,)`` (elementwise diagonal, leaf-shaped) or ``(Q_l, Q_r)`` where each side is an
    upper-triangular matrix or, for a side the size rule sends to a diagonal, a vector."""
    if len(factors) == 1:
        (q,) = factors
        return (_fit_side(q, (q * h) ** 2, (v / q) ** 2, step),)
    ql, qr = factors
    rows, cols = ql.shape[0], qr.shape[0]
    h, v = h.reshape(rows, cols), v.reshape(rows, cols)
    a = _mul_left(qr, _mul_left(ql, h).T).T  # A = Q_l H Q_r^T
    # B = Q_l^{-T} V Q_r^{-1} (the official code's triangular solves) by the factors' inverses, or
    # divisions for a diagonal side
    b = _matmul(upper_triangular_inverse(ql).T, v) if ql.ndim == 2 else v / ql[:, None]
    b = _matmul(b, upper_triangular_inverse(qr)) if qr.ndim == 2 else b / qr[None, :]
    return (_fit_side(ql, _gram(ql, a, a), _gram(ql, b, b), step),
            _fit_side(qr, _gram(qr, a.T, a.T), _gram(qr, b.T, b.T), step))


def _balance(factors: tuple) -> tuple:
    if len(factors) == 1:
        return factors
    ql, qr = factors
    nl, nr = jnp.max(jnp.abs(ql)), jnp.max(jnp.abs(qr))
    mean = jnp.sqrt(nl * nr)
    return ql * (mean / nl), qr * (mean / nr)


def _precondition(factors: tuple, g: jax.Array) -> jax.Array:
    if len(factors) == 1:
        return factors[0] * factors[0] * g
    ql, qr = factors
    x = g.reshape(ql.shape[0], qr.shape[0])
    # Q^T (Q X): two r^2 c products instead of forming Q^T Q (r^3), as the reference's exprP contracts
    x = _mul_left(ql.T, _mul_left(ql, x))
    x = _mul_left(qr.T, _mul_left(qr, x.T)).T
    return x.reshape(g.shape)


def scale_by_psgd_kron(mode: str = "whitening", b1: float = 0.9, preconditioner_lr: float = 0.1,
                       init_scale: float = 1.0, precondition_every: int = 1,
                       max_size_triangular: int = 8192, max_skew: Optional[int] = 1, seed: int = 0
                       ) -> optax.GradientTransformationExtraArgs:
    r"""PSGD Kron's preconditioned momentum ``P m`` (module docstring).

    Args:
      mode: ``"hessian"`` (pairs ``(v, H v)``, reads ``grad_fn``) or ``"whitening"`` (``(v, m)``).
      b1: gradient momentum in ``[0, 1)``.
      preconditioner_lr: the fitting step in ``(0, 1]`` (official default 0.1).
      init_scale: ``P_0 = init_scale^2 I`` (each factor starts at ``init_scale^{1/2} I``).
      precondition_every: steps between fits (>= 1).
      max_size_triangular: matrix sides above this get a diagonal factor.
      max_skew: a side of size ``s`` of a leaf of ``n`` entries gets a diagonal factor if
        ``s^2 > max_skew * n`` (an int >= 0, structural like the sizes; 0: all diagonal; ``None``:
        no skew limit, the reference's ``inf``).
      seed: seed of the probe vectors ``v``.

    >>> tx = scale_by_psgd_kron()
    >>> params = {"w": jnp.ones((3, 2))}
    >>> u, state = tx.update(params, tx.init(params), params)
    >>> u["w"].shape
    (3, 2)
    """
    _common.check_choice("mode", mode, MODES)
    _common.check_beta("b1", b1)
    _common.check_range("preconditioner_lr", preconditioner_lr, 0.0, 1.0, open_low=True)
    _common.check_positive("init_scale", init_scale)
    _common.check_int("precondition_every", precondition_every)
    _common.check_int("max_size_triangular", max_size_triangular)
    if max_skew is not None:  # None: no skew limit (the reference's inf)
        _common.check_int("max_skew", max_skew, 0)

    def init(params):
        factors = []
        root = jnp.sqrt(jnp.asarray(init_scale, jnp.float32))
        for x in jax.tree.leaves(params):
            if x.ndim < 2:
                factors.append((jnp.full(x.shape, init_scale, jnp.float32),))
                continue
            pair = []
            for side in _matrix_sides(x.shape):
                triangular = _side_is_triangular(side, x.size, max_size_triangular, max_skew)
                pair.append(root * (jnp.eye(side, dtype=jnp.float32) if triangular
                                    else jnp.ones(side, jnp.float32)))
            factors.append(tuple(pair))
        return PSGDKronState(jnp.zeros([], jnp.int32), jax.random.PRNGKey(seed), tuple(factors),
                             jax.tree.map(lambda x: jnp.zeros(x.shape, jnp.float32), params))

    def update(updates, state, params=None, *, grad_fn=None, **extra):
        del extra
        if mode == "hessian":
            _checks.need(_NAME, "grad_fn", grad_fn)
            _common.need_params(_NAME, params)
        leaves, treedef = jax.tree.flatten(updates)
        momentum = [b1 * m + (1.0 - b1) * g.astype(jnp.float32)
                    for m, g in zip(treedef.flatten_up_to(state.momentum), leaves)]
        key, sub = jax.random.split(state.key)

        def fit(factors):
            keys = jax.random.split(sub, len(leaves))
            probes = [jax.random.normal(k, g.shape, jnp.float32) for k, g in zip(keys, leaves)]
            if mode == "hessian":
                param_leaves = jax.tree.leaves(params)
                tangent = treedef.unflatten([v.astype(p.dtype) for v, p in zip(probes, param_leaves)])
                _, hvp = jax.jvp(grad_fn, (params,), (tangent,))
                pairs = [h.astype(jnp.float32) for h in treedef.flatten_up_to(hvp)]
            else:
                pairs = momentum
            return tuple(_balance(kron_fit_step(f, v, h, preconditioner_lr))
                         for f, v, h in zip(factors, probes, pairs))

        factors = jax.lax.cond(state.count % precondition_every == 0, fit, lambda f: f,
                               state.factors)
        directions = [_precondition(f, m).astype(g.dtype)
                      for f, m, g in zip(factors, momentum, leaves)]
        return treedef.unflatten(directions), PSGDKronState(
            state.count + 1, key, factors, treedef.unflatten(momentum))

    return optax.GradientTransformationExtraArgs(init, update)


@register(_NAME, family="curvature", extra_args=("grad_fn",),
          paper="Curvature-Informed SGD via General Purpose Lie-Group Preconditioners, "
                "arXiv:2402.04553")
def psgd_kron(learning_rate: optax.ScalarOrSchedule = 1e-3, mode: str = "whitening",
              b1: float = 0.9, preconditioner_lr: float = 0.1, init_scale: float = 1.0,
              precondition_every: int = 1, max_size_triangular: int = 8192,
              max_skew: Optional[int] = 1, seed: int = 0,
              weight_decay: float = 0.0) -> optax.GradientTransformationExtraArgs:
    """PSGD Kron: ``chain(scale_by_psgd_kron(...), add_decayed_weights(weight_decay),
    scale_by_learning_rate(learning_rate))``; ``mode="hessian"`` reads ``grad_fn``.

    >>> tx = psgd_kron(1e-2)
    >>> state = tx.init({"w": jnp.ones((3, 2))})
    """
    direction = scale_by_psgd_kron(mode, b1, preconditioner_lr, init_scale, precondition_every,
                                   max_size_triangular, max_skew, seed)
    return _common.alias(direction, learning_rate, weight_decay)
