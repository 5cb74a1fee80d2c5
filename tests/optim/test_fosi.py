"""Lanczos against ``numpy.linalg.eigh``, and FOSI against a float64 transcription of the authors' update,
hsivan/fosi ``fosi/jax_optim/fosi_optimizer.py`` (``update_fn``: ``g1 = (U g) U``, ``g2 = g - g1``,
``velocity = momentum_func(g1, velocity)``, ``newton = (lr * (U v)) U``, base deltas orthogonalised
against ``U``, ``scaling_factor * deltas - alpha * newton``; ``_approx_learning_rates_and_eigenvectors``:
``lr = |1/lambda|``, ``scaling = clip(lr[l] / lr[-1], 1, clip)``; ESE when
``count + 1 >= warmup and (count + 1 - warmup) % T == 0``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxopt_lab import optim
from jaxopt_lab.optim.curvature import lanczos, scale_by_fosi


def _symmetric(d, seed, spectrum):
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    return (q * spectrum) @ q.T


def test_lanczos_matches_eigh():
    d = 60
    spectrum = np.concatenate([[50.0, 30.0, 20.0, 12.0], np.linspace(-1.0, 3.0, d - 4)])
    h = _symmetric(d, 0, spectrum)
    h32 = jnp.asarray(h, jnp.float32)
    out = jax.jit(lambda key: lanczos(lambda v: h32 @ v, d, key, order=40, k=4))(
        jax.random.PRNGKey(0))
    values, vectors = np.linalg.eigh(h)
    np.testing.assert_allclose(np.asarray(out.eigenvalues), values[-4:], rtol=1e-4)
    overlaps = np.abs(np.sum(np.asarray(out.eigenvectors, np.float64) * vectors[:, -4:].T, axis=1))
    np.testing.assert_allclose(overlaps, 1.0, atol=1e-4)


def test_lanczos_full_order_is_exact_and_handles_order_above_dim():
    h = jnp.asarray(_symmetric(5, 1, np.array([1.0, 2.0, 3.0, 4.0, 9.0])), jnp.float32)
    out = lanczos(lambda v: h @ v, 5, jax.random.PRNGKey(1), order=20, k=5)
    np.testing.assert_allclose(np.asarray(out.eigenvalues), [1, 2, 3, 4, 9], rtol=1e-4)


def _reference_fosi(hessian, grads, *, k, every, warmup, alpha, b1, lr, clip):
    """float64 transcription with exact eigenpairs (the Lanczos run has order = d, so it is exact)."""
    d = len(hessian)
    values, vectors = np.linalg.eigh(hessian)
    rates, u, scaling, velocity = np.zeros(k), np.zeros((k, d)), 1.0, np.zeros(d)
    out = []
    for count, g in enumerate(grads):
        if count + 1 >= warmup and (count + 1 - warmup) % every == 0:
            rates, u = np.abs(1.0 / values[-k:]), vectors[:, -k:].T
            scaling = np.clip(rates[0] / rates[-1], 1.0, clip)
        g1 = (u @ g) @ u
        velocity = (1 - b1) * g1 + b1 * velocity
        newton = (rates * (u @ velocity)) @ u
        deltas = -lr * (g - g1)
        deltas = deltas - (u @ deltas) @ u
        out.append(scaling * deltas - alpha * newton)
    return out


def test_fosi_matches_float64_transcription():
    d, k = 8, 2
    hessian = _symmetric(d, 2, np.array([0.5, 0.7, 1.0, 1.5, 2.0, 3.0, 40.0, 80.0]))
    h32 = jnp.asarray(hessian, jnp.float32)
    grad_fn = lambda w: h32 @ w
    tx = scale_by_fosi(optax.sgd(0.05), k=k, every=3, warmup=2, alpha=0.5, b1=0.9,
                       learning_rate_clip=3.0)
    rng = np.random.default_rng(3)
    params = jnp.asarray(rng.normal(size=d), jnp.float32)
    state = tx.init(params)
    update = jax.jit(lambda g, s, p: tx.update(g, s, p, grad_fn=grad_fn))
    grads = [rng.normal(size=d) for _ in range(7)]
    ours = []
    for g in grads:
        u, state = update(jnp.asarray(g, jnp.float32), state, params)
        ours.append(np.asarray(u, np.float64))
    reference = _reference_fosi(hessian, grads, k=k, every=3, warmup=2, alpha=0.5, b1=0.9,
                                lr=0.05, clip=3.0)
    worst = max(np.max(np.abs(a - b)) / np.max(np.abs(b)) for a, b in zip(ours, reference))
    assert worst < 1e-4, worst


@pytest.mark.parametrize("kwargs,match", [
    ({"k": 0}, "k must be an int >= 1"),
    ({"every": 0}, "every must be an int >= 1"),
    ({"alpha": -1.0}, "alpha must be in"),
])
def test_fosi_rejects_bad_hyperparameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        optim.get("fosi", learning_rate=1e-3, **kwargs)


def test_fosi_state_bytes_closed_form():
    """float32 over d parameters: the base's state (Adam: 2 d + its count), the velocity d, k + l
    learning rates and eigenvectors (k + l)(d + 1), the scaling factor; a 2 x uint32 key, the count."""
    params = {"w": jnp.zeros((10, 7)), "b": jnp.zeros(7)}
    d, k = 77, 3
    state = scale_by_fosi(optax.adam(1e-3), k=k).init(params)
    expected = 4 * (2 * d + 1) + 4 * (d + k * (d + 1) + 1) + 8 + 4
    assert sum(x.nbytes for x in jax.tree.leaves(state)) == expected
