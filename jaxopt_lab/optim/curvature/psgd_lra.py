r"""PSGD LRA: the low-rank-plus-diagonal preconditioner fitted on its Lie group.

"Curvature-Informed SGD via General Purpose Lie-Group Preconditioners" (Pooladzandi, Li),
arXiv:2402.04553, section on the low-rank approximation (LRA, "UVd") preconditioner. Transcribed from
the official code, lixilinx/psgd_torch ``preconditioned_stochastic_gradient_descent.py`` (commit
1943e66: ``IpUVtmatvec``, ``update_precond_UVd_math_``, ``precond_grad_UVd_math``, class ``LRA``).

All parameters are seen as one vector of ``n`` entries; the preconditioner is ``P = Q^T Q`` with

    Q = (I + U V^T) diag(d),        U, V: n x r,  d: n

(``rank`` r; O(n r) memory and work). It is fitted to pairs ``(v, h)`` to minimise
``E[h^T P h + v^T P^{-1} v]``, like PSGD Kron: with ``Qh = (I + U V^T)(d h)``, ``Ph = d (I + V U^T) Qh``,
``b = Q^{-T} v`` and ``P^{-1} v = Q^{-1} b`` (Woodbury solves with the r x r matrix ``I + V^T U``),

    d <- d - mu_d d (Ph h - v P^{-1}v),   mu_d = step min_i (|(Ph, v)_i| |(h, P^{-1}v)_i|)^{-1}
    U <- U - mu (a a^T V - b b^T V)(I + V^T U)      or      V <- V - mu (...)   (one of the two per fit)

with ``a = Qh``, ``mu = step / (|a| |a^T V V^T| + |b| |b^T V V^T|)`` (the official "2nd" step
normaliser). The official code picks U or V at random with probability 1/2; here the fits alternate
(U on even fits, V on odd), the same frequency without a random branch. U and V are rescaled to equal
norms before each fit, which leaves ``Q`` and the fitted step unchanged (the official code does it with
probability 0.01). Two ways to get the pairs, as PSGD Kron:

* ``"hessian"``: ``v ~ N(0, I)``, ``h = H v``, one ``jax.jvp`` of the ``grad_fn`` extra argument;
* ``"whitening"``: the official ``damped_pair_vg``: ``v ~ N(0, I)``, ``h = g + damping mean|g| v``
  (damping ``2^-13``), so ``P -> E[g g^T]^{-1/2}``.

The step is ``P m`` for the gradient momentum ``m <- b1 m + (1 - b1) g``, fitted every
``precondition_every`` steps under ``lax.cond`` (the official ``preconditioner_update_probability``).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.flatten_util import ravel_pytree

from ..registry import register
from .. import _common
from . import _checks
from .psgd import MODES, _TINY

__all__ = ["PSGDLRAState", "scale_by_psgd_lra", "psgd_lra", "lra_fit_step", "lra_precondition",
           "psgd_lra_state_bytes"]

_NAME = "psgd_lra"
WHITENING_DAMPING = 2.0 ** -13  # the official damped_pair_vg default


class PSGDLRAState(NamedTuple):
    """``u``, ``v``: ``(n, rank)``; ``d``: ``(n,)``; ``momentum``: like params; ``key``: for the probes."""

    count: jax.Array
    key: jax.Array
    u: jax.Array
    v: jax.Array
    d: jax.Array
    momentum: object


def _ip_uvt(u, v, x):
    """``(I + U V^T) x`` (official ``IpUVtmatvec``)."""
    return x + u @ (v.T @ x)


def lra_precondition(u, v, d, g):
    """``P g = d (I + V U^T)(I + U V^T)(d g)`` (official ``precond_grad_UVd_math``)."""
    return d * _ip_uvt(v, u, _ip_uvt(u, v, d * g))


def lra_fit_step(u, v, d, probe, h, step, update_u):
    """One fitting step of ``(U, V, d)`` on the pair ``(probe, h)`` (module docstring; official
    ``update_precond_UVd_math_`` with ``step_normalizer="2nd"``). ``update_u`` (traced bool) picks
    which of U and V is updated. Returns the new ``(U, V, d)``."""
    rho = jnp.sqrt(jnp.linalg.norm(u) / jnp.maximum(jnp.linalg.norm(v), _TINY))
    rho = jnp.where(rho > 0, rho, 1.0)
    u, v = u / rho, v * rho  # balance: Q = (I + U V^T) diag(d) unchanged
    qh = _ip_uvt(u, v, d * h)
    ph = d * _ip_uvt(v, u, qh)
    ip_vtu = jnp.eye(u.shape[1], dtype=u.dtype) + v.T @ u
    inv_qt_v = probe / d
    inv_qt_v = inv_qt_v - v @ jnp.linalg.solve(ip_vtu.T, u.T @ inv_qt_v)
    inv_p_v = (inv_qt_v - u @ jnp.linalg.solve(ip_vtu, v.T @ inv_qt_v)) / d
    nabla_d = ph * h - probe * inv_p_v
    mu = step * jnp.min(jax.lax.rsqrt(ph * ph + probe * probe + _TINY)
                        * jax.lax.rsqrt(h * h + inv_p_v * inv_p_v + _TINY))
    new_d = d - mu * d * nabla_d
    a, b = qh, inv_qt_v

    def new_u():
        atv, btv = a @ v, b @ v  # (r,)
        mu = step / (jnp.linalg.norm(a) * jnp.linalg.norm(v @ atv)
                     + jnp.linalg.norm(b) * jnp.linalg.norm(v @ btv) + _TINY)
        return u - mu * (jnp.outer(a, atv @ ip_vtu) - jnp.outer(b, btv @ ip_vtu)), v

    def new_v():
        atu, btu = a @ u, b @ u
        mu = step / (jnp.linalg.norm(a) * jnp.linalg.norm(u @ atu)
                     + jnp.linalg.norm(b) * jnp.linalg.norm(u @ btu) + _TINY)
        return u, v - mu * (jnp.outer(a + v @ atu, atu) - jnp.outer(b + v @ btu, btu))

    u, v = jax.lax.cond(update_u, new_u, new_v)
    return u, v, new_d


def scale_by_psgd_lra(rank: int = 10, mode: str = "whitening", b1: float = 0.9,
                      preconditioner_lr: float = 0.1, init_scale: float = 1.0,
                      precondition_every: int = 1, seed: int = 0
                      ) -> optax.GradientTransformationExtraArgs:
    r"""PSGD LRA's preconditioned momentum ``P m`` (module docstring).

    Args:
      rank: columns ``r`` of ``U`` and ``V`` (>= 1).
      mode: ``"hessian"`` (pairs ``(v, H v)``, reads ``grad_fn``) or ``"whitening"``.
      b1: gradient momentum in ``[0, 1)``.
      preconditioner_lr: the fitting step in ``(0, 1]`` (official default 0.1).
      init_scale: ``d_0 = init_scale``; ``U_0``, ``V_0`` are ``N(0, 1 / (n (r + 10)))`` as the official
        class, so ``||U V^T|| << 1`` at the start.
      precondition_every: steps between fits (>= 1).
      seed: seed of ``U_0``, ``V_0`` and of the probe vectors.

    >>> tx = scale_by_psgd_lra(rank=2)
    >>> params = {"w": jnp.ones((3, 2)), "b": jnp.ones(2)}
    >>> u, state = tx.update(params, tx.init(params), params)
    >>> state.u.shape, u["w"].shape
    ((8, 2), (3, 2))
    """
    _common.check_int("rank", rank)
    _common.check_choice("mode", mode, MODES)
    _common.check_beta("b1", b1)
    _common.check_range("preconditioner_lr", preconditioner_lr, 0.0, 1.0, open_low=True)
    _common.check_positive("init_scale", init_scale)
    _common.check_int("precondition_every", precondition_every)

    def init(params):
        flat, _ = ravel_pytree(params)
        n = flat.size
        key, ku, kv = jax.random.split(jax.random.PRNGKey(seed), 3)
        scale = (n * (rank + 10.0)) ** -0.5
        return PSGDLRAState(jnp.zeros([], jnp.int32), key,
                            scale * jax.random.normal(ku, (n, rank), jnp.float32),
                            scale * jax.random.normal(kv, (n, rank), jnp.float32),
                            jnp.full((n,), init_scale, jnp.float32),
                            jax.tree.map(lambda x: jnp.zeros(x.shape, jnp.float32), params))

    def update(updates, state, params=None, *, grad_fn=None, **extra):
        del extra
        if mode == "hessian":
            _checks.need(_NAME, "grad_fn", grad_fn)
            _common.need_params(_NAME, params)
        grads32 = jax.tree.map(lambda g: g.astype(jnp.float32), updates)
        g, unravel = ravel_pytree(grads32)
        momentum = jax.tree.map(lambda m, x: b1 * m + (1.0 - b1) * x, state.momentum, grads32)
        key, sub = jax.random.split(state.key)
        fits = state.count // precondition_every

        def fit(uvd):
            probe = jax.random.normal(sub, g.shape, jnp.float32)
            if mode == "hessian":
                flat_params, unravel_params = ravel_pytree(params)
                tangent = unravel_params(probe.astype(flat_params.dtype))
                _, hvp = jax.jvp(grad_fn, (params,), (tangent,))
                h = ravel_pytree(jax.tree.map(lambda x: x.astype(jnp.float32), hvp))[0]
            else:
                h = g + WHITENING_DAMPING * jnp.mean(jnp.abs(g)) * probe
            return lra_fit_step(*uvd, probe, h, preconditioner_lr, fits % 2 == 0)

        u, v, d = jax.lax.cond(state.count % precondition_every == 0, fit, lambda x: x,
                               (state.u, state.v, state.d))
        direction = unravel(lra_precondition(u, v, d, ravel_pytree(momentum)[0]))
        direction = jax.tree.map(lambda x, ref: x.astype(ref.dtype), direction, updates)
        return direction, PSGDLRAState(state.count + 1, key, u, v, d, momentum)

    return optax.GradientTransformationExtraArgs(init, update)


@register(_NAME, family="curvature", extra_args=("grad_fn",),
          paper="Curvature-Informed SGD via General Purpose Lie-Group Preconditioners, "
                "arXiv:2402.04553")
def psgd_lra(learning_rate: optax.ScalarOrSchedule = 1e-3, rank: int = 10, mode: str = "whitening",
             b1: float = 0.9, preconditioner_lr: float = 0.1, init_scale: float = 1.0,
             precondition_every: int = 1, seed: int = 0,
             weight_decay: float = 0.0) -> optax.GradientTransformationExtraArgs:
    """PSGD LRA: ``chain(scale_by_psgd_lra(...), add_decayed_weights(weight_decay),
    scale_by_learning_rate(learning_rate))``; ``mode="hessian"`` reads ``grad_fn``.

    >>> tx = psgd_lra(1e-2, rank=2)
    >>> state = tx.init({"w": jnp.ones((3, 2))})
    """
    direction = scale_by_psgd_lra(rank, mode, b1, preconditioner_lr, init_scale, precondition_every,
                                  seed)
    return _common.alias(direction, learning_rate, weight_decay)


def psgd_lra_state_bytes(params, rank: int = 10) -> int:
    """Closed form of ``scale_by_psgd_lra``'s state in bytes (float32): ``2 n r`` (U, V) + ``n`` (d) +
    ``n`` (momentum) for ``n`` parameters, 8 for the key and 4 for ``count``."""
    n = sum(x.size for x in jax.tree.leaves(params))
    return 4 * (2 * n * rank + 2 * n) + 8 + 4
