"""Sliced Wasserstein / sliced MMD against POT, ott-jax and closed forms."""

import jax
import jax.numpy as jnp
import numpy as np
import ot as pot
import pytest
from ott.tools.sliced import sliced_wasserstein as ott_sliced_wasserstein

from jaxopt_lab.ot import sliced


def _clouds(n=40, m=60, dim=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, dim)).astype(np.float32)
    y = (1.5 * rng.normal(size=(m, dim)) + 0.3).astype(np.float32)
    a = rng.uniform(0.1, 1.0, size=n).astype(np.float32)
    return x, y, a / a.sum(), np.full(m, 1.0 / m, np.float32)


@pytest.mark.slow
def test_wasserstein_1d_matches_pot_with_unequal_weights_and_sorting_closed_form():
    x, y, a, b = _clouds()
    for p in (1.0, 2.0, 3.0):
        ours = sliced.wasserstein_1d(x[:, 0], y[:, 0], a, b, p=p)
        np.testing.assert_allclose(ours, pot.wasserstein_1d(x[:, 0], y[:, 0], a, b, p=p), rtol=1e-5)
    # Equal sizes, uniform weights: the optimal 1-D plan matches sorted points.
    u, v = np.random.default_rng(1).normal(size=(2, 31))
    np.testing.assert_allclose(sliced.wasserstein_1d(u, v), np.mean((np.sort(u) - np.sort(v)) ** 2), rtol=1e-5)


@pytest.mark.slow
def test_sliced_wasserstein_matches_pot_and_ott_on_same_directions():
    x, y, a, b = _clouds()
    key = jax.random.PRNGKey(3)
    theta = np.asarray(sliced.random_directions(key, 3, 32))
    ours = sliced.sliced_wasserstein(key, x, y, a, b, n_projections=32)
    ref_pot = pot.sliced_wasserstein_distance(x, y, a, b, projections=theta.T)
    ref_ott, _ = ott_sliced_wasserstein(jnp.asarray(x), jnp.asarray(y), jnp.asarray(a), jnp.asarray(b),
                                         proj_fn=lambda z: z @ theta.T)
    np.testing.assert_allclose(ours, ref_pot, rtol=1e-4)
    np.testing.assert_allclose(ours**2, ref_ott, rtol=1e-4)  # ott reports SW_2^2


def test_sliced_wasserstein_gaussians_closed_form_and_bound():
    # Per direction theta, W_2^2(N(m1, S1)_theta, N(m2, S2)_theta) = (theta.dm)^2 + (s1 - s2)^2 with
    # s = sqrt(theta^T S theta); SW_2 <= W_2 (Bures closed form, diagonal covariances here).
    dim, n = 2, 4000
    m1, m2 = np.zeros(dim), np.array([1.0, -0.5])
    s1, s2 = np.array([1.0, 0.5]), np.array([0.7, 1.5])
    rng = np.random.default_rng(0)
    x = (m1 + s1 * rng.normal(size=(n, dim))).astype(np.float32)
    y = (m2 + s2 * rng.normal(size=(n, dim))).astype(np.float32)
    key = jax.random.PRNGKey(0)
    theta = np.asarray(sliced.random_directions(key, dim, 64), np.float64)
    closed = np.mean((theta @ (m1 - m2)) ** 2 + (np.sqrt(theta**2 @ s1**2) - np.sqrt(theta**2 @ s2**2)) ** 2)
    ours = sliced.sliced_wasserstein(key, x, y, n_projections=64)
    np.testing.assert_allclose(ours**2, closed, rtol=0.05)
    w2 = np.sqrt(np.sum((m1 - m2) ** 2) + np.sum((s1 - s2) ** 2))
    assert ours < w2


@pytest.mark.slow
def test_monte_carlo_error_shrinks_like_inverse_sqrt_projections():
    x, y, _, _ = _clouds(n=64, m=64, dim=8)
    keys = jax.random.split(jax.random.PRNGKey(0), 64)

    def spread(n_proj):
        values = jax.vmap(lambda k: sliced.sliced_wasserstein(k, x, y, n_projections=n_proj) ** 2)(keys)
        return float(jnp.std(values))

    ratio = spread(8) / spread(128)  # sqrt(128 / 8) = 4
    assert 2.5 < ratio < 6.5, ratio


def test_energy_distance_1d_equals_dense_riesz_mmd():
    x, y, a, b = _clouds()
    np.testing.assert_allclose(sliced.energy_distance_1d(x[:, 0], y[:, 0], a, b),
                               sliced.riesz_mmd(x[:, :1], y[:, :1], a, b), rtol=1e-4)


def test_riesz_mmd_matches_numpy_energy_distance():
    x, y, a, b = _clouds(dim=4)
    d = lambda p, q: np.linalg.norm(p[:, None] - q[None], axis=-1)
    expected = 2 * a @ d(x, y) @ b - a @ d(x, x) @ a - b @ d(y, y) @ b
    np.testing.assert_allclose(sliced.riesz_mmd(x, y, a, b), expected, rtol=1e-4)


def test_sliced_mmd_is_unbiased_for_full_riesz_mmd():
    # Hertrich et al.: for r = 1 the sliced kernel is the full kernel up to the constant c_d.
    x, y, a, b = _clouds(dim=5)
    estimate = sliced.sliced_mmd(jax.random.PRNGKey(1), x, y, a, b, n_projections=4096)
    np.testing.assert_allclose(estimate, sliced.riesz_mmd(x, y, a, b), rtol=0.03)


@pytest.mark.slow
def test_jit_vmap_and_same_key_same_result():
    x, y, _, _ = _clouds()
    key = jax.random.PRNGKey(7)
    first = sliced.sliced_wasserstein(key, x, y, n_projections=16)
    np.testing.assert_array_equal(first, sliced.sliced_wasserstein(key, x, y, n_projections=16))
    jitted = jax.jit(lambda k, x, y: sliced.sliced_wasserstein(k, x, y, n_projections=16))
    np.testing.assert_allclose(jitted(key, x, y), first, rtol=1e-6)
    batch = jax.vmap(lambda yy: sliced.sliced_mmd(key, x, yy, n_projections=16))(jnp.stack([y, y + 1.0]))
    assert batch.shape == (2,) and batch[1] > batch[0]


@pytest.mark.slow
def test_gradient_is_finite_and_moves_points_closer():
    x, y, _, _ = _clouds()
    key = jax.random.PRNGKey(0)
    loss = lambda z: sliced.sliced_wasserstein(key, z, y, n_projections=16) ** 2
    grad = jax.grad(loss)(jnp.asarray(x))
    assert np.all(np.isfinite(grad))
    assert loss(x - 0.5 * grad) < loss(x)


@pytest.mark.parametrize("kwargs, name", [
    (dict(x=np.ones(3)), "x"),
    (dict(y=np.ones((4, 2))), "x and y"),
    (dict(a=-np.ones(5)), "a"),
    (dict(b=np.ones(3)), "b"),
    (dict(x=np.full((5, 3), np.nan)), "x"),
    (dict(n_projections=0), "n_projections"),
    (dict(p=0.5), "p"),
])
def test_bad_input_names_the_argument(kwargs, name):
    args = dict(x=np.ones((5, 3)), y=np.zeros((4, 3)), a=None, b=None, n_projections=4, p=2.0)
    args.update(kwargs)
    with pytest.raises(ValueError, match=name):
        sliced.sliced_wasserstein(jax.random.PRNGKey(0), args.pop("x"), args.pop("y"), args.pop("a"),
                                  args.pop("b"), **args)
