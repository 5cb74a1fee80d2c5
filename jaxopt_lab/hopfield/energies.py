"""Hopfield energies as pure functions (papers in ``docs/hopfield.md``).

Notation: stored patterns are the rows of ``patterns`` (``N x d``; the papers write X = [x_1..x_N] as
``d x N``), a state is ``xi`` (``d``, or any leading batch shape ``... x d``), ``beta > 0`` an inverse
temperature. An optional boolean ``mask`` (broadcastable to ``... x N``; True = the pattern takes part)
removes patterns, so memories of different sizes share one compiled shape.

Continuous energies and their one-step minimisers (every update below is a concave-convex / MM step:
the convex part ``1/2 |xi|^2`` is kept, the concave ``-lse`` part is replaced by its tangent, and the
minimiser of that majoriser is the update; so the energy never increases):

* Modern continuous Hopfield network ("Hopfield Networks is All You Need", Ramsauer et al. 2020,
  arXiv:2008.02217)::

      E(xi) = -1/beta log sum_i exp(beta x_i^T xi) + 1/2 xi^T xi + 1/beta log N + 1/2 M^2,
      M = max_i |x_i|,          update  xi <- X^T softmax(beta X xi)   (= xi - grad E(xi)).

* Distance-based energy ("Beyond Scaling Laws: Understanding Transformer Performance with Associative
  Memory", Niu et al. 2024, arXiv:2405.08707)::

      E(xi) = -1/beta log sum_i exp(-beta/2 |xi - rho_i|^2),
      update  xi <- sum_i softmin_i(beta/2 |xi - rho_i|^2) rho_i  (a soft nearest-neighbour step).

  Expanding the square gives ``E = 1/2 |xi|^2 - 1/beta lse(beta rho_i^T xi - beta/2 |rho_i|^2)``: the
  MCHN energy with a per-pattern bias and no extra regulariser. (The paper writes the energy without the
  ``1/beta`` factor; that only rescales E and changes neither minimisers nor the update.) As
  ``beta -> inf``, ``E -> 1/2 min_i |xi - rho_i|^2``: the squared distance to the nearest memory.

* Layered global energy (same paper, section 4.1): see :func:`layered_energy`.

Binary dense associative memory ("Dense Associative Memory for Pattern Recognition", Krotov & Hopfield
2016, arXiv:1606.01164), ``sigma in {-1, +1}^d``::

      E(sigma) = -sum_mu F(xi_mu^T sigma),   F(x) = x^n | max(x, 0)^n | exp(x);

n = 2 is the classical Hopfield network up to a constant (:func:`classical_energy`).
"""

from __future__ import annotations

from typing import Optional, Sequence

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float

__all__ = [
    "mchn_energy",
    "mchn_update",
    "distance_energy",
    "distance_update",
    "layered_forward",
    "layered_energy",
    "interaction",
    "dense_energy",
    "hebbian_weights",
    "classical_energy",
    "INTERACTIONS",
]

INTERACTIONS = ("polynomial", "rectified_polynomial", "exponential")


# ------------------------------------------------------------------------------------------------
# validation (concrete Python values and static shapes only: never a traced value)

def check_beta(beta, name: str = "beta") -> None:
    """``beta`` must be > 0 when it is a concrete Python number (traced values pass untouched)."""
    if isinstance(beta, (int, float)) and not isinstance(beta, bool) and not beta > 0:
        raise ValueError(f"{name} must be > 0 (an inverse temperature), got {beta!r}")


def check_patterns(state, patterns, *, state_name: str = "xi", patterns_name: str = "patterns"):
    """``patterns`` is ``N x d`` with ``N >= 1`` and ``d`` equal to the state's last dimension."""
    if jnp.ndim(patterns) != 2:
        raise ValueError(f"{patterns_name} must be a 2-d array (num_patterns x dim), got shape "
                         f"{jnp.shape(patterns)}")
    n, d = jnp.shape(patterns)
    if n == 0:
        raise ValueError(f"{patterns_name} is an empty memory (0 stored patterns); store at least one")
    if state is not None and (jnp.ndim(state) < 1 or jnp.shape(state)[-1] != d):
        raise ValueError(f"{state_name} has shape {jnp.shape(state)}, whose last dimension must equal "
                         f"the pattern dimension of {patterns_name}, {d} (shape {(n, d)})")


def _masked_logits(logits, mask):
    if mask is None:
        return logits
    return jnp.where(mask, logits, -jnp.inf)


def _count(mask, n, shape):
    """Number of active patterns, broadcast to the batch shape."""
    if mask is None:
        return jnp.full(shape, n, dtype=jnp.result_type(float))
    return jnp.broadcast_to(jnp.sum(mask, axis=-1), shape).astype(jnp.result_type(float))


# ------------------------------------------------------------------------------------------------
# modern continuous Hopfield network

def mchn_energy(xi: Float[Array, "... d"], patterns: Float[Array, "n d"], beta: float | Array,
                mask: Optional[Bool[Array, "... n"]] = None) -> Float[Array, "..."]:
    """Energy of the modern continuous Hopfield network (Ramsauer et al., arXiv:2008.02217, eq. 2)::

        E(xi) = -1/beta lse(beta X xi) + 1/2 xi^T xi + 1/beta log N + 1/2 M^2,   M = max_i |x_i|.

    The two constants make ``E >= 0`` (Ramsauer et al., lemma A1); with a mask, ``N`` and ``M`` count
    the active patterns only.

    >>> import jax.numpy as jnp
    >>> X = jnp.eye(3)
    >>> round(float(mchn_energy(X[0], X, beta=50.0)), 4)   # at a well-separated pattern E ~ 0
    0.022
    """
    check_beta(beta)
    check_patterns(xi, patterns)
    logits = _masked_logits(beta * xi @ patterns.T, mask)
    sq_norms = jnp.sum(patterns**2, axis=-1)
    max_sq = jnp.max(sq_norms if mask is None else jnp.where(mask, sq_norms, 0.0), axis=-1)
    n_active = _count(mask, patterns.shape[0], logits.shape[:-1])
    return (-jax.nn.logsumexp(logits, axis=-1) / beta + 0.5 * jnp.sum(xi**2, axis=-1)
            + jnp.log(n_active) / beta + 0.5 * max_sq)


def mchn_update(xi: Float[Array, "... d"], patterns: Float[Array, "n d"], beta: float | Array,
                mask: Optional[Bool[Array, "... n"]] = None) -> Float[Array, "... d"]:
    """One CCCP step of the MCHN energy: ``xi <- X^T softmax(beta X xi)`` (= ``xi - grad E(xi)``).

    With ``xi`` as the rows of a query matrix this is attention ``softmax(beta Q K^T) V`` with
    ``K = V = X`` (Ramsauer et al., arXiv:2008.02217, eq. 3).
    """
    check_beta(beta)
    check_patterns(xi, patterns)
    weights = jax.nn.softmax(_masked_logits(beta * xi @ patterns.T, mask), axis=-1)
    return weights @ patterns


# ------------------------------------------------------------------------------------------------
# distance-based energy (Beyond Scaling Laws)

def _distance_logits(xi, patterns, beta, mask):
    # -beta/2 |xi - rho|^2 = beta rho.xi - beta/2 |rho|^2 - beta/2 |xi|^2; the last term is the same
    # for every pattern, so softmax ignores it and it is added back in the energy.
    logits = beta * (xi @ patterns.T - 0.5 * jnp.sum(patterns**2, axis=-1))
    return _masked_logits(logits, mask)


def distance_energy(xi: Float[Array, "... d"], patterns: Float[Array, "n d"], beta: float | Array,
                    mask: Optional[Bool[Array, "... n"]] = None) -> Float[Array, "..."]:
    """Distance-based energy (Niu et al., "Beyond Scaling Laws", arXiv:2405.08707, section 4)::

        E(xi) = -1/beta log sum_i exp(-beta/2 |xi - rho_i|^2)
              = 1/2 |xi|^2 - 1/beta lse(beta rho_i^T xi - beta/2 |rho_i|^2).

    A soft minimum of the squared distances to the memories: ``1/2 min_i |xi - rho_i|^2 - log(N)/beta
    <= E <= 1/2 min_i |xi - rho_i|^2``.
    """
    check_beta(beta)
    check_patterns(xi, patterns)
    logits = _distance_logits(xi, patterns, beta, mask)
    return 0.5 * jnp.sum(xi**2, axis=-1) - jax.nn.logsumexp(logits, axis=-1) / beta


def distance_update(xi: Float[Array, "... d"], patterns: Float[Array, "n d"], beta: float | Array,
                    mask: Optional[Bool[Array, "... n"]] = None) -> Float[Array, "... d"]:
    """The MM step of :func:`distance_energy`: ``xi <- sum_i softmax_i(-beta/2 |xi - rho_i|^2) rho_i``.

    The majoriser at ``y`` is ``Q(xi | y) = 1/2 |xi|^2 - 1/beta lse(a(y)) - p(y)^T R (xi - y)`` (tangent
    of the concave ``-lse`` part), whose minimiser is ``R^T p(y)``; so this step never increases E and
    equals ``xi - grad E(xi)``.
    """
    check_beta(beta)
    check_patterns(xi, patterns)
    weights = jax.nn.softmax(_distance_logits(xi, patterns, beta, mask), axis=-1)
    return weights @ patterns


def _majorizer_min(y, patterns, beta):
    """``min_x Q(x | y) = Q(T(y) | y)`` for the distance energy's majoriser at ``y``."""
    logits = _distance_logits(y, patterns, beta, None)
    p = jax.nn.softmax(logits, axis=-1)
    x = p @ patterns
    lin = jnp.sum(x * (x - y), axis=-1)  # p^T R (x - y) with x = R^T p
    return x, 0.5 * jnp.sum(x**2, axis=-1) - jax.nn.logsumexp(logits, axis=-1) / beta - lin


def layered_forward(x0: Float[Array, "... d"], memories: Sequence[Float[Array, "n d"]],
                    beta: float | Array) -> tuple[list[Array], list[Array], list[Array]]:
    """The layered model of "Beyond Scaling Laws" (arXiv:2405.08707, section 4.1), forward pass.

    Layer ``l`` holds memories ``R_l`` and energy ``E_l = distance_energy(., R_l, beta)``; its output is
    one MM step on its input, ``x_l = T_l(x_{l-1})``, the attention-like soft nearest-neighbour step.

    Returns ``(xs, layer_energies, surrogate_values)``: the states ``x_0..x_L``, ``E_l(x_{l-1})`` and
    ``E_l(x_l)`` stacked as ``(2, ...)`` per layer, and the majoriser minima ``Q_l(x_l | x_{l-1})``.
    """
    check_beta(beta)
    if len(memories) == 0:
        raise ValueError("memories is empty: a layered energy needs at least one layer of patterns")
    xs, layer_energies, surrogates = [x0], [], []
    for l, memory in enumerate(memories):
        check_patterns(xs[-1], memory, state_name="x0", patterns_name=f"memories[{l}]")
        x_next, q = _majorizer_min(xs[-1], memory, beta)
        layer_energies.append(jnp.stack([distance_energy(xs[-1], memory, beta),
                                         distance_energy(x_next, memory, beta)]))
        surrogates.append(q)
        xs.append(x_next)
    return xs, layer_energies, surrogates


def layered_energy(x0: Float[Array, "... d"], memories: Sequence[Float[Array, "n d"]],
                   beta: float | Array) -> Float[Array, "..."]:
    """Global energy of a stack of attention layers via majorisation-minimisation (arXiv:2405.08707).

    Each layer's attention step minimises the majoriser ``Q_l(. | x_{l-1})`` of its distance energy,
    ``Q_l(x | y) = 1/2 |x|^2 - 1/beta lse(a_l(y)) - p_l(y)^T R_l (x - y)``, ``Q_l >= E_l``,
    ``Q_l(y | y) = E_l(y)``. Chaining the layers (``x_l = argmin Q_l(. | x_{l-1})``) gives the global
    energy of the forward pass::

        E_global(x_0) = sum_l Q_l(x_l | x_{l-1}),   with   E_l(x_l) <= Q_l(x_l | x_{l-1}) <= E_l(x_{l-1}),

    so ``sum_l E_l(x_l) <= E_global(x_0) <= sum_l E_l(x_{l-1})``: every layer lowers its own energy and
    the global energy is sandwiched between the layer energies at the layers' outputs and inputs.
    The abstract gives the construction in words only; this is our reading.
    """
    _, _, surrogates = layered_forward(x0, memories, beta)
    return sum(surrogates[1:], surrogates[0])


# ------------------------------------------------------------------------------------------------
# binary dense associative memory

def interaction(x: Array, kind: str = "polynomial", power: int = 3) -> Array:
    """Krotov-Hopfield interaction ``F``: ``x^n`` | ``max(x, 0)^n`` | ``exp(x)`` (power ignored)."""
    if kind == "polynomial":
        return x**power
    if kind == "rectified_polynomial":
        return jnp.maximum(x, 0.0) ** power
    if kind == "exponential":
        return jnp.exp(x)
    raise ValueError(f"kind must be one of {INTERACTIONS}, got {kind!r}")


def dense_energy(sigma: Float[Array, "... d"], patterns: Float[Array, "n d"], kind: str = "polynomial",
                 power: int = 3, mask: Optional[Bool[Array, "n"]] = None) -> Float[Array, "..."]:
    """Dense associative memory energy ``E(sigma) = -sum_mu F(xi_mu^T sigma)`` (arXiv:1606.01164).

    For ``kind="exponential"`` this overflows float32 once an overlap exceeds ~88; the retrieval
    dynamics (:func:`jaxopt_lab.hopfield.dense_retrieve`) only compare energies through a stable
    log-sum-exp and never form it.
    """
    check_patterns(sigma, patterns, state_name="sigma")
    if not isinstance(power, int) or power < 1:
        raise ValueError(f"power must be an int >= 1, got {power!r}")
    f = interaction(sigma @ patterns.T, kind, power)
    if mask is not None:
        f = jnp.where(mask, f, 0.0)
    return -jnp.sum(f, axis=-1)


def hebbian_weights(patterns: Float[Array, "n d"], mask: Optional[Bool[Array, "n"]] = None
                    ) -> Float[Array, "d d"]:
    """Classical Hebbian coupling ``W = sum_mu xi_mu xi_mu^T`` with a zero diagonal (Hopfield 1982)."""
    check_patterns(None, patterns)
    p = patterns if mask is None else patterns * mask[:, None]
    w = p.T @ p
    return w - jnp.diag(jnp.diag(w))


def classical_energy(sigma: Float[Array, "... d"], patterns: Float[Array, "n d"],
                     mask: Optional[Bool[Array, "n"]] = None) -> Float[Array, "..."]:
    """Classical Hopfield energy ``E(sigma) = -1/2 sigma^T W sigma`` with Hebbian ``W``.

    For ``sigma``, ``xi_mu`` in ``{-1, 1}^d``: ``E = 1/2 dense_energy(power=2) + N d / 2``.
    """
    check_patterns(sigma, patterns, state_name="sigma")
    w = hebbian_weights(patterns, mask)
    return -0.5 * jnp.einsum("...i,ij,...j->...", sigma, w, sigma)

