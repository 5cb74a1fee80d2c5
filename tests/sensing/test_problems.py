"""Sensing problems: operators against numpy, adjointness, the factored path, ground truths, noise, bad input."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxopt_lab import sensing as S

KEY = jax.random.PRNGKey(0)


def _rand(seed, *shape):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("symmetric", [False, True])
def test_gaussian_operator_matches_numpy_and_is_adjoint(symmetric):
    op = S.gaussian_operator(KEY, 40, (6, 6), symmetric=symmetric)
    A = np.asarray(op.matrices)
    if symmetric:
        np.testing.assert_allclose(A, A.transpose(0, 2, 1))
    X, y = _rand(1, 6, 6), _rand(2, 40)
    np.testing.assert_allclose(op(X), np.einsum("mij,ij->m", A, X) / np.sqrt(40), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(op.adjoint(y), np.einsum("m,mij->ij", y, A) / np.sqrt(40), rtol=1e-5,
                               atol=1e-5)
    assert np.isclose(np.dot(op(X), y), np.sum(X * np.asarray(op.adjoint(y))), rtol=1e-4)


@pytest.mark.slow
def test_rank_one_operator_factored_path_matches_dense_numpy():
    op = S.rank_one_operator(KEY, 50, (7, 5))
    a, b = np.asarray(op.left), np.asarray(op.right)
    dense = np.einsum("mi,mj->mij", a, b)  # A_i = a_i b_i^T formed explicitly, in numpy
    F, G, y = _rand(1, 7, 3), _rand(2, 5, 3), _rand(3, 50)
    X = F @ G.T
    ref = np.einsum("mij,ij->m", dense, X) / np.sqrt(50)
    np.testing.assert_allclose(op.apply_factored(F, G), ref, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(op(X), ref, rtol=1e-4, atol=1e-4)
    adj = np.einsum("m,mij->ij", y, dense) / np.sqrt(50)
    np.testing.assert_allclose(op.adjoint(y), adj, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(op.adjoint_times(y, G), adj @ G, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(op.adjoint_transpose_times(y, F), adj.T @ F, rtol=1e-4, atol=1e-4)
    assert np.isclose(np.dot(ref, y), np.sum(X * adj), rtol=1e-4)


@pytest.mark.slow
def test_gaussian_gram_matches_numpy_and_is_kept_only_when_small():
    m, n = 60, 6
    op = S.gaussian_operator(KEY, m, (n, n), symmetric=True)
    flat = np.asarray(op.matrices, np.float64).reshape(m, -1)
    np.testing.assert_allclose(op.gram, flat.T @ flat / m, rtol=1e-5, atol=1e-6)
    X = _rand(1, n, n)
    ref = (flat.T @ (flat @ X.reshape(-1))).reshape(n, n) / m  # A*(A(X)), from the matrices in numpy
    np.testing.assert_allclose(op.normal(X), ref, rtol=1e-4, atol=1e-4)
    # without the Gram matrix (n1 n2 > m) the same map goes through A and A*
    wide = S.gaussian_operator(KEY, 30, (n, n))
    assert wide.gram is None
    flat = np.asarray(wide.matrices, np.float64).reshape(30, -1)
    np.testing.assert_allclose(wide.normal(X), (flat.T @ (flat @ X.reshape(-1))).reshape(n, n) / 30,
                               rtol=1e-4, atol=1e-4)


def test_completion_operator():
    op = S.completion_operator(KEY, (8, 8), 0.4, symmetric=True)
    mask = np.asarray(op.mask)
    np.testing.assert_array_equal(mask, mask.T)
    assert set(np.unique(mask)) <= {0.0, 1.0}
    X, Y = _rand(1, 8, 8), _rand(2, 8, 8)
    np.testing.assert_allclose(op(X), mask * X / np.sqrt(0.4), rtol=1e-6)
    assert np.isclose(np.sum(np.asarray(op(X)) * Y), np.sum(X * np.asarray(op.adjoint(Y))), rtol=1e-5)


def test_gaussian_operator_is_near_isotropic():
    op = S.gaussian_operator(KEY, 4000, (5, 5), symmetric=True)
    X = _rand(1, 5, 5)
    X = X + X.T
    ratio = float(jnp.sum(op(X) ** 2)) / float(np.sum(X ** 2))
    assert abs(ratio - 1) < 0.1


def test_ground_truth_spectra():
    U = S.symmetric_ground_truth(KEY, 12, 3, condition_number=100.0)
    eig = np.linalg.eigvalsh(np.asarray(U @ U.T, np.float64))[::-1][:3]
    np.testing.assert_allclose(eig, [1.0, 0.1, 0.01], rtol=1e-4)
    F, G = S.asymmetric_ground_truth(KEY, (9, 7), 2, condition_number=4.0)
    sv = np.linalg.svd(np.asarray(F @ G.T, np.float64), compute_uv=False)[:3]
    np.testing.assert_allclose(sv, [1.0, 0.25, 0.0], atol=1e-5)
    # independent left and right factors (the ScaledGD MATLAB pitfall: U* = V*)
    assert not np.allclose(np.abs(np.asarray(F[:7])), np.abs(np.asarray(G)), atol=1e-2)


@pytest.mark.slow
def test_make_problem_measurements_and_vmap():
    prob = S.make_problem(KEY, 6, 2, 80, operator="rank_one", symmetric=False, n2=5)
    np.testing.assert_allclose(prob.y, prob.operator(prob.ground_truth), rtol=1e-4, atol=1e-5)
    # vmapped over keys with one shared operator (how the sweeps use it): different M*, same A
    batch = jax.vmap(lambda k: S.make_problem(k, 6, 2, 80, operator_key=KEY))(jax.random.split(KEY, 3))
    assert batch.y.shape == (3, 80) and not np.allclose(batch.y[0], batch.y[1])
    np.testing.assert_array_equal(batch.operator.matrices[0], batch.operator.matrices[2])


def test_outliers_and_noise():
    y = jnp.asarray(_rand(1, 20000))
    z = S.add_outliers(KEY, y, 0.1, scale=10.0)
    hit = np.asarray(z != y)
    assert abs(hit.mean() - 0.1) < 0.01
    np.testing.assert_allclose(np.abs(np.asarray(z - y))[hit], 10 * np.abs(np.asarray(y)).max(), rtol=1e-5)
    noisy = S.add_gaussian_noise(KEY, y, 0.5)
    assert abs(float(jnp.std(noisy - y)) - 0.5) < 0.02


@pytest.mark.slow
def test_spectral_init_is_close_for_many_measurements():
    prob = S.make_problem(KEY, 8, 2, 3000)
    X, _ = S.spectral_init(prob, 2)
    err = float(jnp.linalg.norm(X @ X.T - prob.ground_truth) / jnp.linalg.norm(prob.ground_truth))
    assert err < 0.2


def test_small_init_scale_and_width_mask():
    X = S.small_init(KEY, (400, 4), 0.01, width=2)
    assert np.allclose(X[:, 2:], 0)
    assert abs(float(jnp.linalg.norm(X[:, 0])) - 0.01) < 0.002  # alpha * N(0,1)/sqrt(n): column norm ~ alpha


@pytest.mark.parametrize("call, name", [
    (lambda: S.small_init(KEY, (5, 0), 0.1), "k"),
    (lambda: S.small_init(KEY, (5, 2), 0.0), "alpha"),
    (lambda: S.small_init(KEY, (5, 2), -1.0), "alpha"),
    (lambda: S.make_problem(KEY, 5, 0, 50), "rank"),
    (lambda: S.make_problem(KEY, 5, 2, 50, operator="sparse"), "operator"),
    (lambda: S.make_problem(KEY, 5, 2, 50, n2=4), "n2"),
    (lambda: S.make_problem(KEY, 5, 2, 50, condition_number=0.5), "condition_number"),
    (lambda: S.gaussian_operator(KEY, 10, (3, 4), symmetric=True), "shape"),
    (lambda: S.completion_operator(KEY, (3, 3), 1.5), "probability"),
    (lambda: S.add_outliers(KEY, jnp.ones(3), 2.0), "fraction"),
])
def test_bad_input_names_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()


@pytest.mark.slow
def test_too_few_measurements_warns():
    with pytest.warns(UserWarning, match="not identifiable"):
        S.make_problem(KEY, 6, 2, 10)  # a rank-2 PSD 6x6 matrix has 11 degrees of freedom
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert S.check_identifiable(11, (6, 6), 2, symmetric=True)
        assert S.check_identifiable(18, (6, 5), 2)
    with pytest.warns(UserWarning, match="not identifiable"):
        assert not S.check_identifiable(17, (6, 5), 2)  # r (n1 + n2 - r) = 18 degrees of freedom

