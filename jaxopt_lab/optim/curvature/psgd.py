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
1-D leaves, and matrices with a side longer than ``max_size_triangular``, use a diagonal ``q``
(``P = diag(q^2)``, same fitting rule elementwise). The preconditioner is fitted every
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
           "kron_fit_step"]

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


def _is_kron(shape, max_size: int) -> bool:
    return len(shape) >= 2 and math.prod(shape[:-1]) <= max_size and shape[-1] <= max_size


def kron_fit_step(factors: tuple, v: jax.Array, h: jax.Array, step) -> tuple:
    """One Lie-group fitting step of the factors of one leaf on the pair ``(v, h)`` (module docstring)."""
    if len(factors) == 1:
        (q,) = factors
        a, b = q * h, v / q
        term1, term2 = a * a, b * b
        return (q - step / (jnp.max(jnp.abs(term1 + term2)) + _TINY) * (term1 - term2) * q,)
    ql, qr = factors
    h = h.reshape(ql.shape[0], qr.shape[0])
    v = v.reshape(h.shape)
    hi = jax.lax.Precision.HIGHEST
    a = jnp.matmul(jnp.matmul(ql, h, precision=hi), qr.T, precision=hi)
    # B = Q_l^{-T} V Q_r^{-1}: two triangular solves
    b = jax.scipy.linalg.solve_triangular(ql, v, trans="T", lower=False)
    b = jax.scipy.linalg.solve_triangular(qr, b.T, trans="T", lower=False).T
    new = []
    for q, term1, term2 in ((ql, a @ a.T, b @ b.T), (qr, a.T @ a, b.T @ b)):
        scale = step / (norm_lower_bound(term1 + term2) + _TINY)
        new.append(q - scale * jnp.matmul(jnp.triu(term1 - term2), q, precision=hi))
    return tuple(new)


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
    hi = jax.lax.Precision.HIGHEST
    x = g.reshape(ql.shape[0], qr.shape[0])
    # Q^T (Q X): two r^2 c products instead of forming Q^T Q (r^3), as the reference's exprP contracts
    x = jnp.matmul(ql.T, jnp.matmul(ql, x, precision=hi), precision=hi)
    x = jnp.matmul(jnp.matmul(x, qr.T, precision=hi), qr, precision=hi)
    return x.reshape(g.shape)


def scale_by_psgd_kron(mode: str = "whitening", b1: float = 0.9, preconditioner_lr: float = 0.1,
                       init_scale: float = 1.0, precondition_every: int = 1,
                       max_size_triangular: int = 8192, seed: int = 0
                       ) -> optax.GradientTransformationExtraArgs:
    r"""PSGD Kron's preconditioned momentum ``P m`` (module docstring).

    Args:
      mode: ``"hessian"`` (pairs ``(v, H v)``, reads ``grad_fn``) or ``"whitening"`` (``(v, m)``).
      b1: gradient momentum in ``[0, 1)``.
      preconditioner_lr: the fitting step in ``(0, 1]`` (official default 0.1).
      init_scale: ``P_0 = init_scale^2 I`` (each factor starts at ``init_scale^{1/2} I``).
      precondition_every: steps between fits (>= 1).
      max_size_triangular: matrix sides above this get a diagonal preconditioner.
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

    def init(params):
        factors = []
        root = jnp.sqrt(jnp.asarray(init_scale, jnp.float32))
        for x in jax.tree.leaves(params):
            if _is_kron(x.shape, max_size_triangular):
                rows, cols = math.prod(x.shape[:-1]), x.shape[-1]
                factors.append((root * jnp.eye(rows, dtype=jnp.float32),
                                root * jnp.eye(cols, dtype=jnp.float32)))
            else:
                factors.append((jnp.full(x.shape, init_scale, jnp.float32),))
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
              precondition_every: int = 1, max_size_triangular: int = 8192, seed: int = 0,
              weight_decay: float = 0.0) -> optax.GradientTransformationExtraArgs:
    """PSGD Kron: ``chain(scale_by_psgd_kron(...), add_decayed_weights(weight_decay),
    scale_by_learning_rate(learning_rate))``; ``mode="hessian"`` reads ``grad_fn``.

    >>> tx = psgd_kron(1e-2)
    >>> state = tx.init({"w": jnp.ones((3, 2))})
    """
    direction = scale_by_psgd_kron(mode, b1, preconditioner_lr, init_scale, precondition_every,
                                   max_size_triangular, seed)
    return _common.alias(direction, learning_rate, weight_decay)
