"""Lazy cubic Newton against a float64 numpy transcription of the paper's method ("Second-order
optimization with lazy Hessians", arXiv:2212.00781, Algorithm 1: Hessian at the snapshot x_{m floor(t/m)},
cubic step argmin <g,h> + <Hh,h>/2 + M||h||^3/6), the subproblem solved by scipy's brentq on the secular
equation ||(H + M r/2)^{-1} g|| = r, and its optimality conditions (Nesterov & Polyak, 2006, Prop. 1:
g + (H + M r/2 I) h = 0 with H + M r/2 I >= 0).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize

from jaxopt_lab import optim
from jaxopt_lab.optim.curvature import cubic_regularized_step, scale_by_lazy_cubic_newton


def _np_cubic_step(hessian, g, m):
    values, vectors = np.linalg.eigh(hessian)
    gq = vectors.T @ g
    low = max(0.0, -2.0 * values[0] / m)
    phi = lambda r: np.linalg.norm(gq / (values + 0.5 * m * r)) - r
    r = scipy.optimize.brentq(phi, low + 1e-14, low + 10 * np.sqrt(np.linalg.norm(g) / m) + 10,
                              xtol=1e-15)
    return -vectors @ (gq / (values + 0.5 * m * r))


@pytest.mark.parametrize("shift", [0.5, -2.0], ids=["convex", "indefinite"])
def test_cubic_step_matches_secular_equation_and_optimality(shift):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 6))
    hessian = x @ x.T / 6 + shift * np.eye(6)
    g = rng.normal(size=6)
    with jax.enable_x64(True):
        values, vectors = jnp.linalg.eigh(jnp.asarray(hessian))
        h, r = cubic_regularized_step(values, vectors, jnp.asarray(g), 3.0)
        h = np.asarray(h)
    np.testing.assert_allclose(h, _np_cubic_step(hessian, g, 3.0), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(g + hessian @ h + 1.5 * np.linalg.norm(h) * h, 0.0, atol=1e-10)
    assert np.linalg.eigvalsh(hessian + 1.5 * float(r) * np.eye(6))[0] >= -1e-10


def test_lazy_cubic_newton_matches_transcription_on_logistic_regression():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(40, 5))
    y = np.sign(rng.normal(size=40))
    mu, m_reg, every = 1e-2, 2.0, 3

    def np_grad(x):
        s = 1.0 / (1.0 + np.exp(y * (a @ x)))
        return -(a.T @ (y * s)) / len(y) + mu * x

    def np_hessian(x):
        p = 1.0 / (1.0 + np.exp(-y * (a @ x)))
        return (a.T * (p * (1 - p))) @ a / len(y) + mu * np.eye(5)

    with jax.enable_x64(True):
        aj, yj = jnp.asarray(a), jnp.asarray(y)
        loss = lambda x: jnp.mean(jnp.logaddexp(0.0, -yj * (aj @ x))) + 0.5 * mu * jnp.sum(x * x)
        grad_fn = jax.grad(loss)
        tx = optim.get("lazy_cubic_newton", learning_rate=1.0, regularization=m_reg,
                       hessian_every=every)
        x = jnp.zeros(5)
        state = tx.init(x)
        step = jax.jit(lambda x, s: tx.update(grad_fn(x), s, x, grad_fn=grad_fn))
        xr = np.zeros(5)
        for t in range(7):
            if t % every == 0:
                hessian = np_hessian(xr)
            xr = xr + _np_cubic_step(hessian, np_grad(xr), m_reg)
            u, state = step(x, state)
            x = x + u
            np.testing.assert_allclose(np.asarray(x), xr, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("kwargs,match", [
    ({"hessian_every": 0}, "hessian_every must be an int >= 1"),
    ({"regularization": 0.0}, "regularization must be in"),
])
def test_lazy_cubic_newton_rejects_bad_hyperparameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        optim.get("lazy_cubic_newton", **kwargs)
