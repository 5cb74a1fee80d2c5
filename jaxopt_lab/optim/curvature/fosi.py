r"""FOSI: Newton's method on the top Hessian eigenspace, any base optimizer on its complement.

"FOSI: Hybrid First and Second Order Optimization" (Sivan, Gabel, Schuster), arXiv:2302.08484;
transcribed from the authors' JAX code, hsivan/fosi ``fosi/jax_optim/fosi_optimizer.py``
(``scale_by_fosi``) and ``lanczos_algorithm.py``.

Every ``every`` steps (first after ``warmup`` steps) Lanczos (``4 (k + l)`` steps of Hessian-vector
products, one ``jax.jvp`` of the ``grad_fn`` extra argument each) estimates the ``k`` largest and ``l``
smallest eigenpairs ``(lambda_i, u_i)`` of the Hessian at the current params. With ``U`` their
orthonormal vectors and the gradient split ``g_1 = U^T U g``, ``g_2 = g - g_1``:

    v <- b1 v + (1 - b1) g_1                       (momentum in the subspace)
    newton = sum_i |1 / lambda_i| (u_i . v) u_i
    base   = (I - U^T U) base_optimizer.update(g_2)       (already signed and scaled by its rate)
    update = c * base - alpha * newton,     c = clip(|lambda_max| / |lambda_(k)|, 1, learning_rate_clip)

where ``lambda_(k)`` is the smallest of the top ``k``: the base optimizer's step grows by how much
the largest curvature it still sees is below the largest overall (the reference's ``scaling_factor``).
The reference's momentum function depends on the base (``fosi_adam``: this EMA; ``fosi_sgd``: none,
``b1 = 0``). Before the first estimate
``U = 0``: the update is the base optimizer's. Like ``optax.contrib.schedule_free``, the transform wraps
a complete base optimizer (with its learning rate) and returns the final update.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp
import optax
from jax.flatten_util import ravel_pytree

from ..registry import get, register
from .. import _common
from . import _checks
from .hessian import lanczos

__all__ = ["FOSIState", "scale_by_fosi", "fosi"]

_NAME = "fosi"


class FOSIState(NamedTuple):
    """``eigenvectors`` ``(k + l, d)`` rows over flattened params, ``learning_rates`` ``|1/lambda|``."""

    count: jax.Array
    key: jax.Array
    base_state: Any
    velocity: jax.Array
    learning_rates: jax.Array
    eigenvectors: jax.Array
    scaling_factor: jax.Array


def scale_by_fosi(base: optax.GradientTransformation, k: int = 5, l: int = 0, every: int = 100,
                  warmup: Optional[int] = None, alpha: float = 0.1, b1: float = 0.9,
                  learning_rate_clip: float = 3.0, lanczos_order: Optional[int] = None,
                  seed: int = 0) -> optax.GradientTransformationExtraArgs:
    r"""FOSI around the complete optimizer ``base`` (module docstring). Reads ``grad_fn`` and params.

    Args:
      base: the base optimizer (e.g. ``optax.adam(1e-3)``), applied to the complement ``g_2``.
      k, l: numbers of largest / smallest Hessian eigenpairs handled by Newton's method.
      every: ``T``, steps between Lanczos estimates (>= 1); ``warmup``: step of the first (default T).
      alpha: Newton step in the subspace; ``b1``: its momentum; ``learning_rate_clip``: max ``c``.
      lanczos_order: Lanczos steps (default ``4 (k + l)``, the reference's).
      seed: seed of Lanczos' start vectors.

    >>> tx = scale_by_fosi(optax.sgd(1e-2), k=1, every=2)
    >>> loss = lambda w: 0.5 * jnp.sum(jnp.array([1.0, 100.0]) * w ** 2)
    >>> params = jnp.ones(2)
    >>> state = tx.init(params)
    >>> u, state = tx.update(jax.grad(loss)(params), state, params, grad_fn=jax.grad(loss))
    """
    _common.check_int("k", k)
    _common.check_int("l", l, 0)
    _common.check_int("every", every)
    warmup = every if warmup is None else warmup
    _common.check_int("warmup", warmup, 0)
    order = 4 * (k + l) if lanczos_order is None else lanczos_order
    _common.check_int("lanczos_order", order)
    _common.check_nonnegative("alpha", alpha)
    _common.check_beta("b1", b1)
    _common.check_range("learning_rate_clip", learning_rate_clip, 1.0)

    def sizes(dim):
        order_ = min(order, dim)
        kk = min(k, order_)
        ll = min(l, order_ - kk)
        return order_, kk, ll

    def init(params):
        flat, _ = ravel_pytree(jax.tree.map(lambda x: x.astype(jnp.float32), params))
        _, kk, ll = sizes(flat.size)
        return FOSIState(jnp.zeros([], jnp.int32), jax.random.PRNGKey(seed), base.init(params),
                         jnp.zeros_like(flat), jnp.zeros((kk + ll,), jnp.float32),
                         jnp.zeros((kk + ll, flat.size), jnp.float32), jnp.ones([], jnp.float32))

    def update(updates, state, params=None, *, grad_fn=None, **extra):
        _checks.need(_NAME, "grad_fn", grad_fn)
        _common.need_params(_NAME, params)
        flat_params, unravel = ravel_pytree(params)
        dim = flat_params.size
        order_, kk, ll = sizes(dim)
        key, sub = jax.random.split(state.key)

        def estimate(_):
            def hvp(v):
                _, out = jax.jvp(grad_fn, (params,), (unravel(v.astype(flat_params.dtype)),))
                return ravel_pytree(out)[0].astype(jnp.float32)

            out = lanczos(hvp, dim, sub, order=order_, k=order_)
            values = jnp.concatenate([out.eigenvalues[:ll], out.eigenvalues[order_ - kk:]])
            vectors = jnp.concatenate([out.eigenvectors[:ll], out.eigenvectors[order_ - kk:]])
            rates = jnp.abs(1.0 / values)
            scaling = jnp.clip(rates[ll] / rates[-1], 1.0, learning_rate_clip)
            return rates, vectors, scaling.astype(jnp.float32)

        step = state.count + 1
        refresh = (step >= warmup) & ((step - warmup) % every == 0)
        rates, vectors, scaling = jax.lax.cond(
            refresh, estimate, lambda _: (state.learning_rates, state.eigenvectors,
                                          state.scaling_factor), None)

        hi = jax.lax.Precision.HIGHEST
        g, unravel_updates = ravel_pytree(jax.tree.map(lambda x: x.astype(jnp.float32), updates))
        g1 = jnp.dot(jnp.dot(vectors, g, precision=hi), vectors, precision=hi)
        velocity = b1 * state.velocity + (1.0 - b1) * g1
        newton = jnp.dot(rates * jnp.dot(vectors, velocity, precision=hi), vectors, precision=hi)
        g2 = unravel_updates(g - g1)
        g2 = jax.tree.map(lambda a, x: a.astype(x.dtype), g2, updates)
        base_updates, base_state = base.update(g2, state.base_state, params, grad_fn=grad_fn,
                                               **extra)
        delta, _ = ravel_pytree(jax.tree.map(lambda x: x.astype(jnp.float32), base_updates))
        delta = delta - jnp.dot(jnp.dot(vectors, delta, precision=hi), vectors, precision=hi)
        new = unravel_updates(scaling * delta - alpha * newton)
        new = jax.tree.map(lambda a, x: a.astype(x.dtype), new, updates)
        return new, FOSIState(step, key, base_state, velocity, rates, vectors, scaling)

    return optax.GradientTransformationExtraArgs(init, update)


@register(_NAME, family="curvature", extra_args=("grad_fn",),
          paper="FOSI: Hybrid First and Second Order Optimization, arXiv:2302.08484")
def fosi(learning_rate: optax.ScalarOrSchedule = 1e-3, base: str = "adam", k: int = 5, l: int = 0,
         every: int = 100, warmup: Optional[int] = None, alpha: float = 0.1, b1: float = 0.9,
         learning_rate_clip: Optional[float] = None, seed: int = 0
         ) -> optax.GradientTransformationExtraArgs:
    """FOSI around the registry optimizer ``base`` built with ``learning_rate``. ``learning_rate_clip``
    defaults as in the reference's aliases: 1 for Adam (``fosi_adam``: Adam's rate is not rescaled),
    3 otherwise.

    >>> tx = fosi(1e-2, base="sgd", k=2, every=10)
    >>> state = tx.init({"w": jnp.ones(3)})
    """
    clip = (1.0 if base in ("adam", "adamw") else 3.0) if learning_rate_clip is None \
        else learning_rate_clip
    return scale_by_fosi(get(base, learning_rate=learning_rate), k, l, every, warmup, alpha, b1,
                         clip, None, seed)
