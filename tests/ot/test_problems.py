"""Problem generators: shapes, masses, epsilon relative to the median cost, long-tailed class sizes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxopt_lab.ot import problems


def test_point_cloud_problem():
    prob = problems.point_cloud_problem(jax.random.PRNGKey(0), 30, 20, dim=3, epsilon_scale=0.02)
    assert prob.geom.shape == (30, 20)
    np.testing.assert_allclose([prob.a.sum(), prob.b.sum()], [1.0, 1.0], rtol=1e-6)
    assert float(prob.a.min()) > 0 and float(prob.a.std()) > 0  # non-uniform weights by default
    c = np.asarray(prob.geom.cost_matrix)
    np.testing.assert_allclose(prob.epsilon, 0.02 * np.median(c), rtol=1e-5)
    # cost is the squared Euclidean distance by default
    x, y = np.asarray(prob.geom.x), np.asarray(prob.geom.y)
    np.testing.assert_allclose(c, ((x[:, None] - y[None]) ** 2).sum(-1), rtol=1e-4, atol=1e-5)
    w1 = problems.point_cloud_problem(jax.random.PRNGKey(0), 30, 20, dim=3, cost="euclidean",
                                      uniform_weights=True)
    np.testing.assert_allclose(w1.geom.cost_matrix, np.sqrt(((x[:, None] - y[None]) ** 2).sum(-1)),
                               rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(w1.a, np.full(30, 1 / 30), rtol=1e-6)


@pytest.mark.parametrize("power", [1, 2])
def test_grid_density_problem(power):
    prob = problems.grid_density_problem(jax.random.PRNGKey(1), 6, power=power)
    assert prob.geom.shape == (36, 36)
    for w in (prob.a, prob.b):
        assert float(w.min()) >= 1e-12 * 0.99  # floored: log a stays finite
        np.testing.assert_allclose(w.sum(), 1.0, rtol=1e-6)
    pts = np.asarray(problems.grid_points(6))
    assert pts.min() > 0 and pts.max() < 1
    d = np.sqrt(((pts[:, None] - pts[None]) ** 2).sum(-1))
    np.testing.assert_allclose(prob.geom.cost_matrix, d ** power, atol=1e-5)


@pytest.mark.slow
def test_imbalanced_mixture():
    mix = problems.imbalanced_mixture(jax.random.PRNGKey(2), n_head=200, n_classes=5, imbalance_ratio=0.05,
                                      dim=4)
    sizes = mix.class_sizes
    assert sizes[0] == 200 and sizes[-1] == 10  # ratio n_tail / n_head = 0.05
    assert all(s1 >= s2 for s1, s2 in zip(sizes, sizes[1:]))
    assert mix.x.shape == (sum(sizes), 4)
    np.testing.assert_array_equal(np.bincount(np.asarray(mix.labels)), sizes)
    np.testing.assert_allclose(mix.proportions.sum(), 1.0, rtol=1e-6)
    # samples sit around their class mean
    means = jnp.stack([mix.x[mix.labels == k].mean(0) for k in range(5)])
    assert float(jnp.abs(means - mix.means).max()) < 1.5


def test_bad_arguments():
    with pytest.raises(ValueError, match="imbalance_ratio"):
        problems.long_tailed_class_sizes(100, 10, 0.0)
    with pytest.raises(ValueError, match="epsilon_scale"):
        problems.point_cloud_problem(jax.random.PRNGKey(0), 10, epsilon_scale=-1.0)
    with pytest.raises(ValueError, match="power"):
        problems.grid_density_problem(jax.random.PRNGKey(0), 4, power=3)
    with pytest.raises(ValueError, match="^n "):
        problems.point_cloud_problem(jax.random.PRNGKey(0), 0)
