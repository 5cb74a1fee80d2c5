"""PSGD Kron against a float64 numpy transcription of the official fitting rule, lixilinx/psgd_torch
``preconditioned_stochastic_gradient_descent.py`` (``update_precond_kron_math_``: ``A = Q_l H Q_r^T``,
``conjB`` by triangular solves, ``q -= step / (norm_lower_bound(t1 + t2) + tiny) * triu(t1 - t2) @ q``,
the diagonal branch ``q -= step / (max|t1 + t2| + tiny) * (t1 - t2) * q``; ``norm_lower_bound``;
``precond_grad_kron_math``), and against the paper's fixed point ``P = H^{-1}`` on a quadratic whose
Hessian is a Kronecker product (arXiv:2402.04553, section 3: the fit minimises E[h'Ph + v'P^-1 v]).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg

from jaxopt_lab import optim
from jaxopt_lab.optim.curvature import (kron_fit_step, norm_lower_bound, scale_by_psgd_kron,
                                        upper_triangular_inverse)


def _np_norm_lower_bound(a):
    max_abs = np.max(np.abs(a))
    if max_abs == 0:
        return 0.0
    a = a / max_abs
    aa = a * a
    i, j = np.argmax(aa.sum(0)), np.argmax(aa.sum(1))
    if aa.sum(0)[i] > aa.sum(1)[j]:
        x = a[:, i] @ a
        return max_abs * np.linalg.norm((x / np.linalg.norm(x)) @ a.T)
    x = a @ a[j]
    return max_abs * np.linalg.norm(a.T @ (x / np.linalg.norm(x)))


def _np_fit(ql, qr, v, h, step, tiny=1.2e-38):
    a = ql @ h @ qr.T
    b = scipy.linalg.solve_triangular(qr, scipy.linalg.solve_triangular(ql, v, trans="T").T,
                                      trans="T").T
    out = []
    for q, t1, t2 in ((ql, a @ a.T, b @ b.T), (qr, a.T @ a, b.T @ b)):
        out.append(q - step / (_np_norm_lower_bound(t1 + t2) + tiny) * np.triu(t1 - t2) @ q)
    return out


def test_norm_lower_bound_matches_official_and_bounds_the_norm():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(7, 7))
    a = x @ x.T - 3 * np.eye(7)
    ours = float(norm_lower_bound(jnp.asarray(a, jnp.float32)))
    assert abs(ours - _np_norm_lower_bound(a)) <= 1e-5 * abs(ours)
    assert ours <= np.linalg.norm(a, 2) * (1 + 1e-6)


def test_kron_fit_matches_float64_transcription():
    rng = np.random.default_rng(1)
    ql, qr = np.eye(5), np.eye(3)
    factors = (jnp.eye(5), jnp.eye(3))
    worst = 0.0
    for _ in range(20):
        v, h = rng.normal(size=(5, 3)), rng.normal(size=(5, 3)) * [1.0, 3.0, 0.3]
        ql, qr = _np_fit(ql, qr, v, h, 0.1)
        factors = jax.jit(kron_fit_step)(factors, jnp.asarray(v, jnp.float32),
                                         jnp.asarray(h, jnp.float32), 0.1)
        p_ours = np.kron(np.asarray(factors[0]).T @ np.asarray(factors[0]),
                         np.asarray(factors[1]).T @ np.asarray(factors[1]))
        p_ref = np.kron(ql.T @ ql, qr.T @ qr)
        worst = max(worst, np.max(np.abs(p_ours - p_ref)) / np.max(np.abs(p_ref)))
    assert worst < 1e-4, worst


def test_diagonal_fit_matches_transcription():
    rng = np.random.default_rng(2)
    q_ref, q = np.ones(4), (jnp.ones(4),)
    for _ in range(10):
        v, h = rng.normal(size=4), 2.0 * rng.normal(size=4)
        a, b = q_ref * h, v / q_ref
        q_ref = q_ref - 0.1 / (np.max(np.abs(a * a + b * b)) + 1.2e-38) * (a * a - b * b) * q_ref
        q = kron_fit_step(q, jnp.asarray(v, jnp.float32), jnp.asarray(h, jnp.float32), 0.1)
    np.testing.assert_allclose(np.asarray(q[0]), q_ref, rtol=1e-5)


@pytest.mark.slow
def test_hessian_mode_fits_inverse_of_kronecker_hessian():
    """loss = 0.5 tr(W^T A W B): H v = A V B, so the fitted P(X) = Q_l'Q_l X Q_r'Q_r -> A^-1 X B^-1."""
    rng = np.random.default_rng(3)
    a = np.diag([1.0, 2.0, 4.0, 8.0]) + 0.1
    b = np.diag([0.5, 1.0, 3.0]) + 0.05
    a_j, b_j = jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32)
    grad_fn = jax.grad(lambda p: 0.5 * jnp.trace(p.T @ a_j @ p @ b_j))
    tx = scale_by_psgd_kron(mode="hessian", preconditioner_lr=0.1, max_skew=None)
    params = jnp.asarray(rng.normal(size=(4, 3)), jnp.float32)

    def body(state, _):
        _, state = tx.update(grad_fn(params), state, params, grad_fn=grad_fn)
        return state, None

    state, _ = jax.jit(lambda s: jax.lax.scan(body, s, None, length=3000))(tx.init(params))
    ql, qr = (np.asarray(f, np.float64) for f in state.factors[0])
    fitted = np.kron(ql.T @ ql, qr.T @ qr)
    exact = np.kron(np.linalg.inv(a), np.linalg.inv(b))
    error = np.linalg.norm(fitted - exact) / np.linalg.norm(exact)
    assert error < 0.1, error


@pytest.mark.parametrize("kwargs,match", [
    ({"precondition_every": 0}, "precondition_every must be an int >= 1"),
    ({"mode": "fisher"}, "mode must be one of"),
    ({"preconditioner_lr": 0.0}, "preconditioner_lr must be in"),
    ({"init_scale": -1.0}, "init_scale must be in"),
    ({"max_skew": -1}, "max_skew must be an int >= 0"),
])
def test_psgd_rejects_bad_hyperparameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        optim.get("psgd_kron", learning_rate=1e-3, **kwargs)


def test_hessian_mode_needs_grad_fn():
    tx = scale_by_psgd_kron(mode="hessian")
    params = jnp.ones((2, 2))
    with pytest.raises(ValueError, match="grad_fn"):
        tx.update(params, tx.init(params), params)


def test_psgd_state_bytes_closed_form():
    """float32: per matrix side of size s, s^2 if triangular, s if diagonal (size 1, s > max_size_triangular
    or s^2 > max_skew * numel); n per 1-D leaf; n of momentum per leaf; a 2 x uint32 key, the int32 count."""
    params = {"w": jnp.zeros((10, 7)), "b": jnp.zeros(7), "wide": jnp.zeros((3, 50)),
              "sq": jnp.zeros((25, 25))}
    state = scale_by_psgd_kron(max_size_triangular=20).init(params)
    # w: 10^2 > 70 -> diagonal 10, 7^2 <= 70 -> 7 x 7; wide: 3 x 3 and 50 (> 20); sq: 25 > 20 both
    floats = (10 + 7 ** 2) + 7 + (3 ** 2 + 50) + (25 + 25) + (70 + 7 + 150 + 625)
    assert sum(x.nbytes for x in jax.tree.leaves(state)) == 4 * floats + 8 + 4
    full = scale_by_psgd_kron(max_skew=None).init(params)
    assert [f.ndim for fs in full.factors for f in fs] == [1, 2, 2, 2, 2, 2, 2]


@pytest.mark.slow
def test_size_rule_matches_official_init():
    """Which sides are triangular, against a transcription of psgd_torch ``init_kron_states_exprs``
    (preconditioned_stochastic_gradient_descent.py at commit 1943e66, line 1960: a dim is diagonal
    ``if size == 1 or size > max_size or size**2 > max_skew * t.numel()``)."""
    def official(shape, max_size, max_skew):
        numel = math.prod(shape)
        return [not (s == 1 or s > max_size or s ** 2 > max_skew * numel) for s in shape]

    for shape in [(256, 32), (32, 64), (64, 64), (1, 9), (128, 384), (5, 3)]:
        for max_size, max_skew in [(8192, 1), (100, 1), (8192, 10), (8192, 0)]:
            state = scale_by_psgd_kron(max_size_triangular=max_size, max_skew=max_skew).init(
                jnp.zeros(shape))
            assert [f.ndim == 2 for f in state.factors[0]] == official(shape, max_size, max_skew)


def _np_fit_mixed(ql, qr, v, h, step, tiny=1.2e-38):
    """The official update_precond_kron_math_ (commit 1943e66, lines 2018-2080, step_normalizer '2nd')
    for a matrix whose factors may be vectors: exprA scales by a diagonal factor, conjB divides by it,
    exprGs gives a diagonal side the row sums of A * A (resp. B * B)."""
    mul = lambda q, x: q @ x if q.ndim == 2 else q[:, None] * x  # noqa: E731
    a = mul(qr, mul(ql, h).T).T
    b = scipy.linalg.solve_triangular(ql, v, trans="T") if ql.ndim == 2 else v / ql[:, None]
    b = scipy.linalg.solve_triangular(qr, b.T, trans="T").T if qr.ndim == 2 else b / qr[None, :]
    out = []
    for q, x, y in ((ql, a, b), (qr, a.T, b.T)):
        if q.ndim == 2:
            t1, t2 = x @ x.T, y @ y.T
            out.append(q - step / (_np_norm_lower_bound(t1 + t2) + tiny) * np.triu(t1 - t2) @ q)
        else:
            t1, t2 = (x * x).sum(1), (y * y).sum(1)
            out.append(q - step / (np.max(np.abs(t1 + t2)) + tiny) * (t1 - t2) * q)
    return out


@pytest.mark.parametrize("left_diagonal,right_diagonal", [(True, False), (False, True), (True, True)])
def test_mixed_diagonal_fit_matches_float64_transcription(left_diagonal, right_diagonal):
    rng = np.random.default_rng(5)
    ql = np.ones(6) if left_diagonal else np.eye(6)
    qr = np.ones(4) if right_diagonal else np.eye(4)
    factors = tuple(jnp.asarray(q, jnp.float32) for q in (ql, qr))
    fit = jax.jit(kron_fit_step)
    dense = lambda q: np.diag(q) if q.ndim == 1 else q  # noqa: E731
    worst = 0.0
    for _ in range(20):
        v, h = rng.normal(size=(6, 4)), rng.normal(size=(6, 4)) * [1.0, 3.0, 0.3, 2.0]
        ql, qr = _np_fit_mixed(ql, qr, v, h, 0.1)
        factors = fit(factors, jnp.asarray(v, jnp.float32), jnp.asarray(h, jnp.float32), 0.1)
        ours = [dense(np.asarray(f, np.float64)) for f in factors]
        p_ours = np.kron(ours[0].T @ ours[0], ours[1].T @ ours[1])
        p_ref = np.kron(dense(ql).T @ dense(ql), dense(qr).T @ dense(qr))
        worst = max(worst, np.max(np.abs(p_ours - p_ref)) / np.max(np.abs(p_ref)))
    assert worst < 1e-4, worst


@pytest.mark.slow
def test_step_is_the_preconditioned_momentum():
    """The update is the official precond_grad_kron_math: Q_l^T Q_l m Q_r^T Q_r with the momentum
    m = b1 m + (1 - b1) g, with the factors after this step's fit (a diagonal side or leaf: q^2)."""
    rng = np.random.default_rng(4)
    params = {"w": jnp.zeros((5, 3)), "b": jnp.zeros(4)}
    tx = scale_by_psgd_kron(b1=0.5)
    state = tx.init(params)
    for _ in range(3):
        grads = {"w": jnp.asarray(rng.normal(size=(5, 3)), jnp.float32),
                 "b": jnp.asarray(rng.normal(size=4), jnp.float32)}
        updates, state = tx.update(grads, state, params)
    (q_b,), (ql, qr) = [tuple(np.asarray(f, np.float64) for f in fs) for fs in state.factors]
    assert ql.ndim == 1 and qr.ndim == 2  # 5^2 > 15: the longer side is diagonal (max_skew = 1)
    ql = np.diag(ql)
    m = {k: np.asarray(v, np.float64) for k, v in state.momentum.items()}
    np.testing.assert_allclose(updates["w"], ql.T @ ql @ m["w"] @ qr.T @ qr, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(updates["b"], q_b ** 2 * m["b"], rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("n", [1, 13])
def test_upper_triangular_inverse_matches_scipy(n):
    """The matmul-only inverse used for the official code's triangular solves, against
    scipy.linalg.solve_triangular in float64, on a well-conditioned and an ill-conditioned factor
    (diagonal spanning three decades, as the fitted factors' do): float32 rounding, a few ulps per
    term of the length-n inner products, relative to the largest entry."""
    rng = np.random.default_rng(n)
    for diagonal in (np.ones(n), np.logspace(-1.5, 1.5, n)):
        q = np.triu(rng.normal(size=(n, n)), 1) * 0.3 + np.diag(diagonal)
        ref = scipy.linalg.solve_triangular(q, np.eye(n))
        ours = np.asarray(jax.jit(upper_triangular_inverse)(jnp.asarray(q, jnp.float32)), np.float64)
        assert np.max(np.abs(ours - ref)) <= 4 * n * np.finfo(np.float32).eps * np.max(np.abs(ref))
