"""OASIS against a float64 numpy transcription of Algorithm 1 of "Doubly Adaptive Scaled Algorithm for
Machine Learning Using Second-Order Information" (arXiv:2109.05198): Hutchinson diagonal
D_k = beta2 D_{k-1} + (1 - beta2) v*(Hv), truncation max(|D|, alpha), adaptive step
eta_k = min(sqrt(1 + theta_{k-1}) eta_{k-1}, ||dw||_D / (2 ||dg||*_D)), theta_k = eta_k / eta_{k-1}.
The Rademacher vectors are drawn exactly as the transform draws them (same key splits).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxopt_lab import optim
from jaxopt_lab.optim.curvature import scale_by_oasis


def test_oasis_matches_float64_transcription():
    rng = np.random.default_rng(0)
    d = 6
    a = rng.normal(size=(20, d))
    b = rng.normal(size=20)
    # a non-quadratic loss, so the Hessian (and its diagonal estimate) moves with w
    def np_grad(w):
        r = a @ w - b
        return a.T @ (r + 0.4 * r ** 3) / 20

    def np_hvp(w, v):
        r = a @ w - b
        return a.T @ ((1 + 1.2 * r ** 2) * (a @ v)) / 20

    aj, bj = jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32)
    loss = lambda w: jnp.mean(0.5 * (aj @ w - bj) ** 2 + 0.1 * (aj @ w - bj) ** 4)
    grad_fn = jax.grad(loss)
    beta2, alpha, eta0 = 0.9, 1e-5, 0.05
    tx = scale_by_oasis(initial_step=eta0, beta2=beta2, alpha=alpha, seed=3)
    step = jax.jit(lambda w, s: tx.update(grad_fn(w), s, w, grad_fn=grad_fn))
    w = jnp.zeros(d, jnp.float32)
    state = tx.init(w)
    key = jax.random.PRNGKey(3)
    wr, diag, prev_w, prev_g, eta, theta = np.zeros(d), None, None, None, eta0, np.inf
    worst = 0.0
    for k in range(8):
        key, sub = jax.random.split(key)
        v = np.asarray(jax.random.rademacher(sub, (d,), jnp.float32), np.float64)
        g = np_grad(wr)
        sample = v * np_hvp(wr, v)
        diag = sample if k == 0 else beta2 * diag + (1 - beta2) * sample
        dh = np.maximum(np.abs(diag), alpha)
        if k > 0:
            dw, dg = wr - prev_w, g - prev_g
            new = min(np.sqrt(1 + theta) * eta,
                      np.sqrt(dw @ (dh * dw)) / (2 * np.sqrt(dg @ (dg / dh))))
            theta, eta = new / eta, new
        prev_w, prev_g = wr, g
        wr = wr - eta * g / dh
        u, state = step(w, state)
        w = w - u
        worst = max(worst, float(np.max(np.abs(np.asarray(w, np.float64) - wr))
                                 / np.max(np.abs(wr))))
    assert worst < 1e-4, worst


@pytest.mark.parametrize("kwargs,match", [
    ({"initial_step": 0.0}, "initial_step must be in"),
    ({"alpha": -1.0}, "alpha must be in"),
    ({"beta2": 1.0}, "beta2 must be in"),
])
def test_oasis_rejects_bad_hyperparameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        optim.get("oasis", **kwargs)


def test_oasis_state_bytes_closed_form():
    """float32: the diagonal, previous params and previous gradient (3 d), step and theta; a
    2 x uint32 key and the int32 count."""
    params = {"w": jnp.zeros((10, 7)), "b": jnp.zeros(7)}
    state = scale_by_oasis().init(params)
    assert sum(x.nbytes for x in jax.tree.leaves(state)) == 4 * (3 * 77 + 2) + 8 + 4
