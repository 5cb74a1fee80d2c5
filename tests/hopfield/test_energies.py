"""Hopfield energies against numpy closed forms, jax.grad, and their bounds."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxopt_lab import hopfield


def _np_lse(a, axis=-1):
    m = np.max(a, axis=axis, keepdims=True)
    return (m + np.log(np.sum(np.exp(a - m), axis=axis, keepdims=True)))[..., 0]


def _problem(seed=0, n=12, d=6, b=4):
    kx, kq = jax.random.split(jax.random.PRNGKey(seed))
    return jax.random.normal(kx, (n, d)), jax.random.normal(kq, (b, d))


def test_mchn_energy_matches_numpy_closed_form():
    X, xi = _problem()
    beta = 0.7
    Xn, xin = np.asarray(X, np.float64), np.asarray(xi, np.float64)
    expected = (-_np_lse(beta * xin @ Xn.T) / beta + 0.5 * np.sum(xin**2, -1) + np.log(len(Xn)) / beta
                + 0.5 * np.max(np.sum(Xn**2, -1)))
    np.testing.assert_allclose(hopfield.mchn_energy(xi, X, beta), expected, rtol=1e-5)


def test_distance_energy_matches_numpy_closed_form_and_softmin_bounds():
    X, xi = _problem(1)
    beta = 2.0
    Xn, xin = np.asarray(X, np.float64), np.asarray(xi, np.float64)
    sq = np.sum((xin[:, None, :] - Xn[None]) ** 2, -1)
    expected = -_np_lse(-0.5 * beta * sq) / beta
    energy = np.asarray(hopfield.distance_energy(xi, X, beta))
    np.testing.assert_allclose(energy, expected, rtol=1e-5, atol=1e-5)
    nearest = 0.5 * sq.min(-1)
    assert np.all(energy <= nearest + 1e-5) and np.all(energy >= nearest - np.log(len(Xn)) / beta - 1e-5)


@pytest.mark.slow
def test_mchn_energy_is_nonnegative():
    X, xi = _problem(2, n=30, d=5, b=64)
    for beta in (0.1, 1.0, 10.0):
        assert np.all(np.asarray(hopfield.mchn_energy(3 * xi, X, beta)) >= -1e-5)


@pytest.mark.parametrize("energy, update", [(hopfield.mchn_energy, hopfield.mchn_update),
                                            (hopfield.distance_energy, hopfield.distance_update)])
def test_update_is_xi_minus_energy_gradient(energy, update):
    # CCCP step = xi - grad E(xi) (Ramsauer et al.); checked against jax.grad of the energy.
    X, xi = _problem(3)
    grad = jax.vmap(jax.grad(lambda x: energy(x, X, 1.3)))(xi)
    np.testing.assert_allclose(update(xi, X, 1.3), xi - grad, rtol=1e-5, atol=1e-5)


def test_update_is_attention():
    X, xi = _problem(4)
    ref = jax.nn.dot_product_attention(xi[None, :, None, :], X[None, :, None, :], X[None, :, None, :],
                                       scale=0.9)[0, :, 0, :]
    np.testing.assert_allclose(hopfield.mchn_update(xi, X, 0.9), ref, rtol=1e-5, atol=1e-6)


def test_mask_equals_the_subset_of_patterns():
    X, xi = _problem(5)
    mask = jnp.arange(X.shape[0]) < 7
    for energy in (hopfield.mchn_energy, hopfield.distance_energy):
        np.testing.assert_allclose(energy(xi, X, 0.5, mask), energy(xi, X[:7], 0.5), rtol=1e-5)
    np.testing.assert_allclose(hopfield.mchn_update(xi, X, 0.5, mask), hopfield.mchn_update(xi, X[:7], 0.5),
                               rtol=1e-5, atol=1e-6)


def test_distance_step_majorizer_and_descent():
    X, xi = _problem(6, b=32)
    beta = 0.8
    new = hopfield.distance_update(xi, X, beta)
    assert np.all(np.asarray(hopfield.distance_energy(new, X, beta))
                  <= np.asarray(hopfield.distance_energy(xi, X, beta)) + 1e-5)


@pytest.mark.slow
def test_layered_energy_is_sandwiched_and_matches_explicit_sum():
    keys = jax.random.split(jax.random.PRNGKey(7), 4)
    memories = [jax.random.normal(k, (n, 5)) for k, n in zip(keys[:3], (6, 9, 4))]
    x0 = jax.random.normal(keys[3], (10, 5))
    beta = 1.5
    xs, layer_energies, _ = hopfield.layered_forward(x0, memories, beta)
    total = np.asarray(hopfield.layered_energy(x0, memories, beta))
    before = sum(np.asarray(e[0]) for e in layer_energies)
    after = sum(np.asarray(e[1]) for e in layer_energies)
    assert np.all(after <= total + 1e-4) and np.all(total <= before + 1e-4)
    # explicit numpy: Q_l(x_l | x_{l-1}) = 1/2|x_l|^2 - lse(a_l(x_{l-1}))/beta - x_l.(x_l - x_{l-1})
    expected = 0.0
    for l, R in enumerate(memories):
        y, x, R = (np.asarray(v, np.float64) for v in (xs[l], xs[l + 1], R))
        a = beta * (y @ R.T - 0.5 * np.sum(R**2, -1))
        p = np.exp(a - _np_lse(a)[:, None])
        np.testing.assert_allclose(x, p @ R, rtol=1e-4, atol=1e-5)
        expected = expected + 0.5 * np.sum(x**2, -1) - _np_lse(a) / beta - np.sum(x * (x - y), -1)
    np.testing.assert_allclose(total, expected, rtol=1e-4, atol=1e-4)


def test_dense_energy_power_two_is_classical_hopfield():
    kx, ks = jax.random.split(jax.random.PRNGKey(8))
    X = jnp.sign(jax.random.normal(kx, (7, 20)))
    s = jnp.sign(jax.random.normal(ks, (5, 20)))
    n, d = X.shape
    np.testing.assert_allclose(hopfield.classical_energy(s, X),
                               0.5 * hopfield.dense_energy(s, X, "polynomial", 2) + n * d / 2, rtol=1e-6)
    Xn, sn = np.asarray(X), np.asarray(s)
    np.testing.assert_allclose(hopfield.dense_energy(s, X, "exponential"), -np.exp(sn @ Xn.T).sum(-1),
                               rtol=1e-5)
    np.testing.assert_allclose(hopfield.dense_energy(s, X, "rectified_polynomial", 3),
                               -(np.maximum(sn @ Xn.T, 0) ** 3).sum(-1), rtol=1e-6)


@pytest.mark.parametrize("fn", [hopfield.mchn_energy, hopfield.mchn_update, hopfield.distance_energy,
                                hopfield.distance_update])
def test_bad_input(fn):
    X, xi = _problem()
    with pytest.raises(ValueError, match="beta must be > 0"):
        fn(xi, X, 0.0)
    with pytest.raises(ValueError, match="beta must be > 0"):
        fn(xi, X, -1.0)
    with pytest.raises(ValueError, match="last dimension"):
        fn(xi[:, :3], X, 1.0)
    with pytest.raises(ValueError, match="empty memory"):
        fn(xi, X[:0], 1.0)
    with pytest.raises(ValueError, match=r"memories\[1\]"):
        hopfield.layered_energy(xi, [X, X[:, :2]], 1.0)
    with pytest.raises(ValueError, match="kind must be one of"):
        hopfield.dense_energy(jnp.sign(xi), X, "cubic")


def test_traced_beta_is_not_validated():
    X, xi = _problem()
    # validation only touches concrete Python numbers, so jit/vmap over beta work
    out = jax.vmap(lambda b: hopfield.mchn_energy(xi, X, b))(jnp.array([0.5, 1.0]))
    assert out.shape == (2, 4)
