"""Binary associative memories and the capacity / retrieval protocol.

Dense associative memory ("Dense Associative Memory for Pattern Recognition", Krotov & Hopfield 2016,
arXiv:1606.01164): states ``sigma in {-1, 1}^d``, energy ``E = -sum_mu F(xi_mu^T sigma)`` and the
asynchronous update of one coordinate at a time::

    sigma_i <- sign( sum_mu F(xi_mu,i + sum_{j != i} xi_mu,j sigma_j) - F(-xi_mu,i + sum_{j != i} ...) ),

with ``F(x) = x^n`` (``n = 2`` is the classical Hopfield network with Hebbian couplings, Hopfield 1982),
``max(x, 0)^n`` or ``exp(x)``. Each coordinate update picks the lower of two energies, so E never
increases. Coordinates are visited in a fresh random order each sweep (``lax.scan`` over a permutation);
the sweeps run on the shared driver until a sweep changes nothing.

Numerics (``x^n`` overflows float32 at large ``n``): polynomial ``F`` is evaluated on overlaps divided
by ``d`` (a positive rescaling of every ``F`` term, which leaves the sign of the difference unchanged and keeps ``x^n`` in
range); for ``exp`` the sign of ``sum exp(a_mu) - sum exp(b_mu)`` is the sign of
``lse(a) - lse(b)``, so no exponential is ever formed. Ties keep the current value.

The protocol: ``N`` random patterns in ``{-1, 1}^d``; queries are stored patterns with a fraction
``c`` of coordinates flipped (:func:`corrupt`); success means the retrieved state's overlap with the
original is at least 0.99 (:func:`overlap`). A ``mask`` over the stored patterns lets one compiled
function sweep the memory size ``N`` (:func:`binary_capacity_curve`).
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, PRNGKeyArray

from jaxopt_lab import _loop
from .energies import INTERACTIONS, check_beta, check_patterns
from .retrieval import HopfieldRetrieval

__all__ = [
    "random_binary_patterns",
    "corrupt",
    "overlap",
    "DenseRetrievalOutput",
    "dense_retrieve",
    "classical_retrieve",
    "binary_capacity_curve",
    "capacity_from_curve",
    "MEMORY_KINDS",
]

MEMORY_KINDS = ("classical", "polynomial", "rectified_polynomial", "exponential", "mchn")


def random_binary_patterns(key: PRNGKeyArray, n: int, d: int) -> Float[Array, "n d"]:
    """``n`` patterns with i.i.d. uniform entries in ``{-1, +1}`` (float32)."""
    return jnp.where(jax.random.bernoulli(key, 0.5, (n, d)), 1.0, -1.0)


def corrupt(key: PRNGKeyArray, patterns: Float[Array, "... d"], fraction: float | Array
            ) -> Float[Array, "... d"]:
    """Flip exactly ``round(fraction * d)`` randomly chosen coordinates of each ``+-1`` pattern."""
    if isinstance(fraction, (int, float)) and not 0 <= fraction <= 1:
        raise ValueError(f"fraction must be in [0, 1], got {fraction!r}")
    d = patterns.shape[-1]
    n_flip = jnp.round(fraction * d)
    scores = jax.random.uniform(key, patterns.shape)
    ranks = jnp.argsort(jnp.argsort(scores, axis=-1), axis=-1)  # a random permutation per row
    return jnp.where(ranks < n_flip, -patterns, patterns)


def overlap(state: Float[Array, "... d"], target: Float[Array, "... d"]) -> Float[Array, "..."]:
    """``m = state . target / d`` in ``[-1, 1]`` (1: retrieved exactly)."""
    return jnp.mean(state * target, axis=-1)


class DenseRetrievalOutput(NamedTuple):
    """Result of asynchronous retrieval (leading dimensions are those of the queries).

    Attributes:
      state: the final ``+-1`` state.
      errors: per-sweep number of coordinates that changed, ``-1`` where no sweep ran.
      n_iters: sweeps taken.
      converged: the last sweep changed nothing (a fixed point of the dynamics).
    """

    state: Array
    errors: Array
    n_iters: Array
    converged: Array


def _check_kind(kind, power):
    if kind not in INTERACTIONS:
        raise ValueError(f"kind must be one of {INTERACTIONS}, got {kind!r}")
    if isinstance(power, bool) or not isinstance(power, int) or power < 1:
        raise ValueError(f"power must be an int >= 1, got {power!r}")


def _coordinate_drive(kind, power, d):
    """``(base, column, mask) -> Delta``: energy drop of setting a coordinate to +1 rather than -1."""
    def drive(base, column, mask):
        plus, minus = base + column, base - column
        if kind == "exponential":
            neg = -jnp.inf
            lse = lambda a: jax.nn.logsumexp(a if mask is None else jnp.where(mask, a, neg))
            return lse(plus) - lse(minus)
        f = (lambda x: (x / d) ** power) if kind == "polynomial" else (lambda x: jnp.maximum(x / d, 0) ** power)
        diff = f(plus) - f(minus)
        return jnp.sum(diff if mask is None else jnp.where(mask, diff, 0.0))
    return drive


def _async_solve(drive, key, sigma0, patterns, mask, max_sweeps):
    d = sigma0.shape[-1]

    def sweep(i, carry):
        sigma, h, _ = carry
        order = jax.random.permutation(jax.random.fold_in(key, i), d)

        def visit(c, j):
            sigma, h, flips = c
            column = patterns[:, j]
            base = h - column * sigma[j]
            delta = drive(base, column, mask)
            new = jnp.where(delta > 0, 1.0, jnp.where(delta < 0, -1.0, sigma[j]))
            return (sigma.at[j].set(new), base + column * new, flips + (new != sigma[j])), None

        (sigma, h, flips), _ = jax.lax.scan(visit, (sigma, h, jnp.int32(0)), order)
        return sigma, h, flips

    out = _loop.iterate(sweep, lambda c: c[2], (sigma0, patterns @ sigma0, jnp.int32(0)),
                        threshold=0.5, max_iterations=max_sweeps, inner_iterations=1)
    return DenseRetrievalOutput(out.state[0], out.errors, out.n_iters, out.converged)


def dense_retrieve(key: PRNGKeyArray, queries: Float[Array, "... d"], patterns: Float[Array, "n d"], *,
                   kind: str = "polynomial", power: int = 3, max_sweeps: int = 30,
                   mask: Optional[Bool[Array, "n"]] = None) -> DenseRetrievalOutput:
    """Asynchronous dense-associative-memory retrieval from ``+-1`` queries (module docstring).

    ``key`` draws the visiting order of each sweep (the same order for every query). ``mask`` (True =
    stored) removes patterns.
    """
    _check_kind(kind, power)
    check_patterns(queries, patterns, state_name="queries")
    drive = _coordinate_drive(kind, power, patterns.shape[-1])
    flat = queries.reshape(-1, queries.shape[-1])
    out = jax.vmap(lambda q: _async_solve(drive, key, q, patterns, mask, max_sweeps))(flat)
    return jax.tree.map(lambda x: x.reshape(*queries.shape[:-1], *x.shape[1:]), out)


def classical_retrieve(key: PRNGKeyArray, queries: Float[Array, "... d"], patterns: Float[Array, "n d"], *,
                       max_sweeps: int = 30, mask: Optional[Bool[Array, "n"]] = None
                       ) -> DenseRetrievalOutput:
    """Classical Hopfield network (Hopfield 1982): asynchronous ``sigma_i <- sign((W sigma)_i)`` with
    Hebbian ``W = sum_mu xi_mu xi_mu^T``, zero diagonal (ties keep the current value). The same dynamics
    as :func:`dense_retrieve` with ``power=2``, since ``(a + x)^2 - (a - x)^2 = 4 a x``."""
    check_patterns(queries, patterns, state_name="queries")
    p = patterns if mask is None else patterns * mask[:, None]
    # (W sigma)_i in overlap form: sum_mu xi_mu,i (h_mu - xi_mu,i sigma_i) with h = X sigma, which
    # costs O(N) per coordinate instead of O(d) and never forms the d x d matrix.
    def drive(base, column, _):
        return jnp.sum(column * base)
    flat = queries.reshape(-1, queries.shape[-1])
    out = jax.vmap(lambda q: _async_solve(drive, key, q, p, None, max_sweeps))(flat)
    return jax.tree.map(lambda x: x.reshape(*queries.shape[:-1], *x.shape[1:]), out)


# ------------------------------------------------------------------------------------------------
# the capacity protocol

def binary_capacity_curve(key: PRNGKeyArray, memory: str, d: int, sizes, *, num_queries: int = 64,
                          corruption: float = 0.1, power: int = 3, beta: float = 1.0,
                          max_iterations: int = 30, one_step: bool = False) -> dict[str, Array]:
    """Retrieval statistics against the number of stored patterns ``N`` in ``sizes`` at dimension ``d``.

    One bank of ``max(sizes)`` random ``+-1`` patterns is drawn; memory size ``N`` stores its first ``N``
    (a mask), so every size runs in one vmapped, compiled call. Query ``j`` is stored pattern
    ``j mod N`` with a fraction ``corruption`` of coordinates flipped.

    Args:
      memory: ``"classical"`` (Hebbian, n = 2), ``"polynomial"`` / ``"rectified_polynomial"``
        (``F = x^power``), ``"exponential"`` (``F = exp``) or ``"mchn"`` (continuous modern Hopfield
        retrieval at inverse temperature ``beta``, read out with ``sign``).
      one_step: for ``"mchn"``, a single update instead of iterating to convergence.

    Returns:
      ``success`` (fraction with overlap >= 0.99), ``overlap`` (mean final overlap), ``iterations``
      (mean sweeps / updates), each of shape ``(len(sizes),)``.
    """
    if memory not in MEMORY_KINDS:
        raise ValueError(f"memory must be one of {MEMORY_KINDS}, got {memory!r}")
    if memory == "mchn":
        check_beta(beta)
    sizes = [int(s) for s in sizes]  # static: the pattern bank's size is max(sizes)
    if not sizes or min(sizes) < 1:
        raise ValueError(f"sizes must be a non-empty list of pattern counts >= 1, got {sizes}")
    n_max = max(sizes)
    k_pat, k_cor, k_ord = jax.random.split(key, 3)
    bank = random_binary_patterns(k_pat, n_max, d)
    flips = corrupt(k_cor, jnp.zeros((num_queries, d)) + 1.0, corruption)  # +-1 flip pattern per query

    def one_size(n):
        mask = jnp.arange(n_max) < n
        targets = bank[jnp.arange(num_queries) % n]
        queries = targets * flips
        if memory == "mchn":
            solver = HopfieldRetrieval(beta=beta, threshold=1e-4, max_iterations=1 if one_step else max_iterations,
                                       track_energy=False)
            out = solver(queries, bank, mask)
            state = jnp.where(out.state >= 0, 1.0, -1.0)
        elif memory == "classical":
            out = classical_retrieve(k_ord, queries, bank, max_sweeps=max_iterations, mask=mask)
            state = out.state
        else:
            out = dense_retrieve(k_ord, queries, bank, kind=memory, power=power, max_sweeps=max_iterations,
                                 mask=mask)
            state = out.state
        m = overlap(state, targets)
        return {"success": jnp.mean(m >= 0.99), "overlap": jnp.mean(m),
                "iterations": jnp.mean(out.n_iters.astype(jnp.float32))}

    return jax.lax.map(one_size, jnp.asarray(sizes, jnp.int32))


def capacity_from_curve(sizes, values, level: float) -> int:
    """Largest ``N`` in ``sizes`` (ascending) such that ``values >= level`` at every size up to it
    (0 if the first size already fails). Host-side; for summaries."""
    capacity = 0
    for n, v in zip(list(sizes), list(values)):
        if float(v) < level:
            break
        capacity = int(n)
    return capacity
