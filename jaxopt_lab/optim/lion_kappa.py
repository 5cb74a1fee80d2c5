r"""Lion-kappa: the Lion recursion with ``sign`` replaced by the gradient of a convex kappa.

"Lion Secretly Solves Constrained Optimization: As Lyapunov Predicts" (Chen, Liang, Liu, Liu, 2023),
arXiv:2310.05898.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Union

import jax
import jax.numpy as jnp
import optax

from ._common import alias, check_beta, check_choice, check_float_params, global_sum, moment
from .registry import register

__all__ = ["scale_by_lion_kappa", "lion_kappa"]


class ScaleByLionKappaState(NamedTuple):
    count: jax.Array
    mu: optax.Updates


def _kappa_l1(c):
    return jax.tree.map(jnp.sign, c)


def _kappa_l2(c):
    norm = jnp.sqrt(global_sum(jax.tree.map(jnp.square, c)))
    safe = jnp.where(norm > 0, norm, 1.0)
    return jax.tree.map(lambda x: jnp.where(norm > 0, x / safe.astype(x.dtype), 0.0), c)


def _kappa_l2_squared(c):
    return c


_KAPPAS: dict[str, Callable[[Any], Any]] = {
    "l1": _kappa_l1, "l2": _kappa_l2, "l2_squared": _kappa_l2_squared}


def scale_by_lion_kappa(b1: float = 0.9, b2: float = 0.99,
                        kappa: Union[str, Callable[[Any], Any]] = "l1"
                        ) -> optax.GradientTransformationExtraArgs:
    r"""Lion-kappa's direction: the Lion recursion with ``sign`` replaced by the gradient of a convex kappa.

    Lion: "Symbolic Discovery of Optimization Algorithms" (Chen et al., 2023), arXiv:2302.06675;
    Lion-kappa: "Lion Secretly Solves Constrained Optimization: As Lyapunov Predicts" (Chen, Liang, Liu,
    Liu, 2023), arXiv:2310.05898::

        c = b1 m + (1-b1) g;    u = grad kappa(c);    m <- b2 m + (1-b2) g

    ``kappa``: ``"l1"`` (``||x||_1``, ``grad = sign``: plain Lion), ``"l2"`` (``||x||_2`` over the whole
    parameter pytree, ``grad = c/||c||``, 0 at 0), ``"l2_squared"`` (``||x||^2/2``, ``grad`` = identity:
    momentum), or a callable ``c -> grad kappa(c)`` on pytrees. With decoupled weight decay ``lambda``
    (the alias) a fixed point has ``-lambda x = grad kappa(grad f(x))``, i.e. (kappa convex and even,
    [derived]) ``0 in grad f(x) + d kappa^*(lambda x)``: it solves ``min_x f(x) + kappa^*(lambda x) /
    lambda``. For ``l1``, ``kappa^*`` is the indicator of ``||y||_inf <= 1``: the box constraint
    ``||x||_inf <= 1/lambda``.

    >>> import jax.numpy as jnp
    >>> tx = scale_by_lion_kappa(kappa="l2")
    >>> u, _ = tx.update(jnp.array([3.0, 4.0]), tx.init(jnp.zeros(2)))
    >>> [round(float(x), 4) for x in u]
    [0.6, 0.8]
    """
    check_beta("b1", b1)
    check_beta("b2", b2)
    if callable(kappa):
        kappa_grad = kappa
    else:
        check_choice("kappa", kappa, tuple(_KAPPAS))
        kappa_grad = _KAPPAS[kappa]

    def init(params):
        check_float_params("lion_kappa", params)
        return ScaleByLionKappaState(jnp.zeros([], jnp.int32), optax.tree.zeros_like(params))

    def update(updates, state, params=None, **extra):
        del params, extra
        c = moment(updates, state.mu, b1, 1)
        mu = moment(updates, state.mu, b2, 1)
        out = kappa_grad(c)
        return optax.tree.cast_like(out, updates), ScaleByLionKappaState(optax.safe_increment(state.count), mu)

    return optax.GradientTransformationExtraArgs(init, update)


@register("lion_kappa", family="adaptive", extra_args=(),
          paper="Lion Secretly Solves Constrained Optimization: As Lyapunov Predicts, arXiv:2310.05898")
def lion_kappa(learning_rate: optax.ScalarOrSchedule = 1e-4, b1: float = 0.9, b2: float = 0.99,
               weight_decay: float = 1e-3, kappa: Union[str, Callable[[Any], Any]] = "l1"
               ) -> optax.GradientTransformationExtraArgs:
    r"""Lion-kappa: ``x <- x - lr (grad kappa(c) + weight_decay x)``; ``kappa="l1"`` is ``optax.lion``.

    With ``kappa="l1"`` and ``weight_decay = lambda > 0`` the box ``||x||_inf <= 1/lambda`` is invariant
    once entered (``x <- (1 - lr lambda) x - lr sign(c)``) and outside it the excess shrinks by at least
    ``(1 - lr lambda)`` per step.

    >>> import jax.numpy as jnp
    >>> tx = lion_kappa(0.1, weight_decay=0.0)
    >>> u, _ = tx.update(jnp.array([2.0, -3.0]), tx.init(jnp.zeros(2)))
    >>> [round(float(x), 4) for x in u]
    [-0.1, 0.1]
    """
    return alias(scale_by_lion_kappa(b1, b2, kappa), learning_rate, weight_decay)
