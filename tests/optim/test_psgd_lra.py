"""PSGD LRA against a float64 numpy transcription of the official code, lixilinx/psgd_torch
``preconditioned_stochastic_gradient_descent.py`` at commit 1943e66: ``IpUVtmatvec`` (line 635),
``update_precond_UVd_math_`` (lines 657-742, ``step_normalizer="2nd"``), ``precond_grad_UVd_math``
(lines 744-753), and the damped whitening pair ``damped_pair_vg`` (lines 50-67); plus the paper's fixed
point ``P = H^{-1}`` ("Curvature-Informed SGD via General Purpose Lie-Group Preconditioners",
arXiv:2402.04553) on a quadratic whose Hessian is diagonal plus rank one.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxopt_lab import optim
from jaxopt_lab.optim.curvature import (lra_fit_step, lra_precondition, psgd_lra_state_bytes,
                                        scale_by_psgd_lra)

TINY = 1.2e-38


def _ip_uvt(u, v, x):
    return x + u @ (v.T @ x)


def _np_fit(u, v, d, probe, h, step, update_u):
    """update_precond_UVd_math_ with column vectors; the U-or-V choice given (official: at random)."""
    probe, h, d = probe[:, None], h[:, None], d[:, None]
    qh = _ip_uvt(u, v, d * h)
    ph = d * _ip_uvt(v, u, qh)
    ip_vtu = np.eye(u.shape[1]) + v.T @ u
    inv_qt_v = probe / d
    inv_qt_v = inv_qt_v - v @ np.linalg.solve(ip_vtu.T, u.T @ inv_qt_v)
    inv_p_v = (inv_qt_v - u @ np.linalg.solve(ip_vtu, v.T @ inv_qt_v)) / d
    nabla_d = ph * h - probe * inv_p_v
    mu = step * np.min(1 / np.sqrt(ph * ph + probe * probe + TINY)
                       / np.sqrt(h * h + inv_p_v * inv_p_v + TINY))
    d = d - mu * d * nabla_d
    a, b = qh, inv_qt_v
    if update_u:
        atv, btv = a.T @ v, b.T @ v
        atvvt, btvvt = atv @ v.T, btv @ v.T
        mu = step / (np.linalg.norm(a) * np.linalg.norm(atvvt) + np.linalg.norm(b) * np.linalg.norm(btvvt)
                     + TINY)
        u = u - mu * (a @ (atv @ ip_vtu) - b @ (btv @ ip_vtu))
    else:
        atu, btu = a.T @ u, b.T @ u
        uuta, uutb = u @ atu.T, u @ btu.T
        mu = step / (np.linalg.norm(a) * np.linalg.norm(uuta) + np.linalg.norm(b) * np.linalg.norm(uutb)
                     + TINY)
        v = v - mu * ((a + v @ atu.T) @ atu - (b + v @ btu.T) @ btu)
    return u, v, d[:, 0]


def _np_precondition(u, v, d, g):
    return d * _ip_uvt(v, u, _ip_uvt(u, v, d * g))


def _dense_p(u, v, d):
    q = (np.eye(len(d)) + u @ v.T) * d[None, :]
    return q.T @ q


def test_fit_and_preconditioner_match_float64_transcription():
    rng = np.random.default_rng(0)
    n, r = 12, 3
    u = rng.normal(size=(n, r)) / np.sqrt(n * (r + 10))
    v = rng.normal(size=(n, r)) / np.sqrt(n * (r + 10))
    d = np.ones(n)
    ours = tuple(jnp.asarray(x, jnp.float32) for x in (u, v, d))
    fit = jax.jit(lra_fit_step)
    scales = np.linspace(0.3, 3.0, n)
    worst_p = worst_g = 0.0
    for i in range(30):
        probe, h = rng.normal(size=n), scales * rng.normal(size=n)
        u, v, d = _np_fit(u, v, d, probe, h, 0.1, i % 2 == 0)
        ours = fit(*ours, jnp.asarray(probe, jnp.float32), jnp.asarray(h, jnp.float32), 0.1, i % 2 == 0)
        p_ref = _dense_p(u, v, d)
        p_ours = _dense_p(*(np.asarray(x, np.float64) for x in ours))
        worst_p = max(worst_p, np.max(np.abs(p_ours - p_ref)) / np.max(np.abs(p_ref)))
        g = rng.normal(size=n)
        g_ref = _np_precondition(u, v, d, g)
        g_ours = np.asarray(lra_precondition(*ours, jnp.asarray(g, jnp.float32)), np.float64)
        worst_g = max(worst_g, np.linalg.norm(g_ours - g_ref) / np.linalg.norm(g_ref))
    assert worst_p < 1e-4, worst_p
    assert worst_g < 1e-4, worst_g


@pytest.mark.slow
def test_update_is_preconditioned_momentum_of_the_whitening_pair():
    """One transform step on a pytree: the fit uses the official damped pair (v, g + 2^-13 mean|g| v)
    with this step's probe, and the update is P m for m = (1 - b1) g (first step)."""
    rng = np.random.default_rng(1)
    params = {"w": jnp.zeros((3, 4)), "b": jnp.zeros(4)}
    grads = {"w": jnp.asarray(rng.normal(size=(3, 4)), jnp.float32),
             "b": jnp.asarray(rng.normal(size=4), jnp.float32)}
    tx = scale_by_psgd_lra(rank=2, b1=0.5)
    state0 = tx.init(params)
    updates, state = tx.update(grads, state0, params)
    g = np.concatenate([np.asarray(grads["b"]), np.asarray(grads["w"]).ravel()]).astype(np.float64)
    probe = np.asarray(jax.random.normal(jax.random.split(state0.key)[1], (16,), jnp.float32), np.float64)
    h = g + 2.0 ** -13 * np.mean(np.abs(g)) * probe
    u, v, d = _np_fit(*(np.asarray(x, np.float64) for x in (state0.u, state0.v, state0.d)), probe, h,
                      0.1, True)
    expected = _np_precondition(u, v, d, 0.5 * g)
    got = np.concatenate([np.asarray(updates["b"]), np.asarray(updates["w"]).ravel()])
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-7)


@pytest.mark.slow
def test_hessian_mode_fits_inverse_of_diagonal_plus_low_rank_hessian():
    """loss = 0.5 x^T H x with H = diag(s) + w w^T: the fitted P approaches H^{-1} (rank 1 suffices)."""
    rng = np.random.default_rng(2)
    n = 8
    w = rng.normal(size=n)
    hess = np.diag(np.linspace(0.5, 4.0, n)) + np.outer(w, w)
    h_j = jnp.asarray(hess, jnp.float32)
    grad_fn = jax.grad(lambda x: 0.5 * x @ h_j @ x)
    tx = scale_by_psgd_lra(rank=1, mode="hessian", preconditioner_lr=0.1)
    params = jnp.asarray(rng.normal(size=n), jnp.float32)

    def body(state, _):
        _, state = tx.update(grad_fn(params), state, params, grad_fn=grad_fn)
        return state, None

    state, _ = jax.jit(lambda s: jax.lax.scan(body, s, None, length=4000))(tx.init(params))
    fitted = _dense_p(*(np.asarray(x, np.float64) for x in (state.u, state.v, state.d)))
    exact = np.linalg.inv(hess)
    error = np.linalg.norm(fitted - exact) / np.linalg.norm(exact)
    assert error < 0.1, error


@pytest.mark.parametrize("kwargs,match", [
    ({"rank": 0}, "rank must be an int >= 1"),
    ({"precondition_every": 0}, "precondition_every must be an int >= 1"),
    ({"mode": "fisher"}, "mode must be one of"),
    ({"preconditioner_lr": 1.5}, "preconditioner_lr must be in"),
])
def test_psgd_lra_rejects_bad_hyperparameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        optim.get("psgd_lra", learning_rate=1e-3, **kwargs)


def test_psgd_lra_state_bytes_closed_form():
    params = {"w": jnp.zeros((10, 7)), "b": jnp.zeros(7)}
    state = scale_by_psgd_lra(rank=4).init(params)
    assert sum(x.nbytes for x in jax.tree.leaves(state)) == psgd_lra_state_bytes(params, rank=4)
    assert psgd_lra_state_bytes(params, rank=4) == 4 * (2 * 77 * 4 + 2 * 77) + 12


def test_hessian_mode_needs_grad_fn():
    tx = scale_by_psgd_lra(mode="hessian")
    params = jnp.ones((2, 2))
    with pytest.raises(ValueError, match="grad_fn"):
        tx.update(params, tx.init(params), params)
