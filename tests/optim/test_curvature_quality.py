"""The PSGD part of the curvature-quality experiment against closed forms.

PSGD's Hessian fit ("Curvature-Informed SGD via General Purpose Lie-Group Preconditioners",
arXiv:2402.04553) minimises ``E[h^T P h + v^T P^{-1} v]`` over pairs ``(v, h = H v)``; its optimum is
``P = (H^2)^{-1/2} = |H|^{-1}``. Where ``|H|^{-1}`` lies in the preconditioner's group (a diagonal ``H``
whose ``|H|`` is Kronecker-separable for Kron, a positive diagonal ``H`` for LRA) each sampled pair
already balances at the optimum (for a matrix leaf this needs the signs of ``H`` to be separable too:
otherwise ``A A^T - B B^T`` keeps off-diagonal terms ``(sign(H_ij H_kj) - 1) ...``), so the optimizer's
own fit must reach it and the measured error must vanish.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import curvature_quality as cq
from jaxopt_lab.optim.curvature import scale_by_psgd_kron, scale_by_psgd_lra


def _abs_2x2(h):
    """``(H^2)^{1/2}`` of a symmetric 2 x 2 ``H`` in closed form: ``sqrt(M) = (M + sqrt(det M) I) /
    sqrt(tr M + 2 sqrt(det M))`` for the SPD ``M = H^2``."""
    m = h @ h
    s = np.sqrt(np.linalg.det(m))
    return (m + s * np.eye(2)) / np.sqrt(np.trace(m) + 2 * s)


def test_abs_hessian_error_against_the_2x2_closed_form():
    h = np.array([[2.0, 1.0], [1.0, -3.0]])
    abs_h = _abs_2x2(h)
    assert cq.abs_hessian_error(abs_h, h) == pytest.approx(0.0, abs=1e-12)
    assert cq.abs_hessian_error(2.0 * abs_h, h) == pytest.approx(1.0, rel=1e-12)
    # the criterion's best diagonal P^{-1} = diag(((H^2)_ii)^{1/2})
    np.testing.assert_allclose(np.diag(cq.best_diagonal_inverse(h)), np.sqrt(np.diag(h @ h)),
                               rtol=1e-12)


def _quadratic(diagonals):
    """Loss ``sum_leaf 0.5 sum(diag * w^2)``: a diagonal Hessian, leaf by leaf."""
    def loss(params):
        return sum(0.5 * jnp.sum(c * w * w) for c, w in zip(jax.tree.leaves(diagonals),
                                                             jax.tree.leaves(params)))
    return jax.grad(loss)


@pytest.mark.slow
def test_psgd_kron_fit_reaches_abs_inverse_hessian():
    # H = a b^T (positive) on the 3 x 2 leaf is Kronecker-separable, so H^{-1} = P_l (x) P_r exists;
    # the 1-D leaf is indefinite (its fit is elementwise, so |H| is reached whatever the signs)
    a, b = jnp.array([1.0, 2.0, 0.5]), jnp.array([3.0, 0.25])
    diagonals = {"b": jnp.array([4.0, -0.5]), "w": jnp.outer(a, b)}
    params = jax.tree.map(jnp.ones_like, diagonals)
    dense_h = np.diag(np.concatenate([np.ravel(x) for x in jax.tree.leaves(diagonals)]))
    tx = scale_by_psgd_kron("hessian", b1=0.0, max_skew=None, seed=1)
    before = cq.abs_hessian_error(np.eye(8), dense_h)
    state = cq.fit_psgd(tx, params, _quadratic(diagonals), 400)
    p = cq.dense_kron_preconditioner(state.factors, [x.shape for x in jax.tree.leaves(params)])
    assert before > 0.5
    assert cq.abs_hessian_error(np.linalg.inv(p), dense_h) < 1e-3


@pytest.mark.slow
def test_psgd_lra_fit_reaches_abs_inverse_hessian():
    diagonals = {"w": jnp.array([[4.0, 0.5, 2.0], [1.0, 0.25, 3.0]])}
    params = jax.tree.map(jnp.ones_like, diagonals)
    dense_h = np.diag(np.ravel(diagonals["w"]))
    state = cq.fit_psgd(scale_by_psgd_lra(2, "hessian", b1=0.0, seed=1), params,
                        _quadratic(diagonals), 400)
    # the d-step is normalised by the worst coordinate and U V^T wanders in the directions that leave
    # P unchanged, so the fit closes in more slowly than Kron's: 1% after 400 fits of step 0.1
    assert cq.abs_hessian_error(np.linalg.inv(cq.dense_lra_preconditioner(state)), dense_h) < 1e-2


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["kron", "lra"])
def test_dense_preconditioner_is_the_one_the_optimizer_applies(kind):
    # b1 = 0: the update is P g with the P of the returned state; 5 x 3: triangular 3-side, diagonal
    # 5-side under the official size rule
    params = {"b": jnp.linspace(0.5, 1.5, 3), "w": jnp.linspace(-1.0, 1.0, 15).reshape(5, 3)}
    grads = jax.tree.map(lambda x: jnp.cos(3.0 * x), params)
    diagonals = jax.tree.map(lambda x: 1.0 + x * x, params)
    if kind == "kron":
        tx = scale_by_psgd_kron("hessian", b1=0.0, seed=2)
    else:
        tx = scale_by_psgd_lra(2, "hessian", b1=0.0, seed=2)
    state = cq.fit_psgd(tx, params, _quadratic(diagonals), 3)
    direction, state = tx.update(grads, state, params, grad_fn=_quadratic(diagonals))
    if kind == "kron":
        assert [f[0].ndim for f in state.factors[1:]] == [1]  # the 5-side is diagonal
        p = cq.dense_kron_preconditioner(state.factors, [x.shape for x in jax.tree.leaves(params)])
    else:
        p = cq.dense_lra_preconditioner(state)
    flat = lambda t: np.concatenate([np.ravel(x) for x in jax.tree.leaves(t)])  # noqa: E731
    np.testing.assert_allclose(flat(direction), p @ flat(grads), rtol=1e-5, atol=1e-6)
