"""Mirror Sinkhorn: converges to the exact OT cost (POT emd2), general objectives (POT's l2-smoothed OT),
noisy gradients, jit, bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import ot as pot
import pytest
from ott.problems.linear import linear_problem

from jaxopt_lab.ot import MirrorSinkhorn
from jaxopt_lab.ot.problems import point_cloud_problem


@pytest.fixture(scope="module")
def prob():
    return point_cloud_problem(jax.random.PRNGKey(0), 15)


def _np(x):
    return np.asarray(x, np.float64)


@pytest.mark.slow
def test_average_converges_to_exact_ot(prob):
    exact = pot.emd2(_np(prob.a), _np(prob.b), _np(prob.geom.cost_matrix))
    short, long = MirrorSinkhorn(max_iterations=200)(prob), MirrorSinkhorn(max_iterations=4000)(prob)
    gap_short, gap_long = abs(float(short.cost) - exact), abs(float(long.cost) - exact)
    assert gap_long < 0.5 * gap_short and gap_long < 0.1 * exact
    assert float(long.marginal_error) < float(short.marginal_error)
    # the error trace is the marginal violation of the running average
    np.testing.assert_allclose(long.errors[-1], long.marginal_error, rtol=1e-3)
    # iterates alternate: the last step (t = T even) normalised rows to a
    np.testing.assert_allclose(long.last_matrix.sum(1), prob.a, atol=1e-6)
    assert np.all(np.isfinite(long.matrix)) and float(long.matrix.min()) >= 0


def test_general_convex_objective_matches_pot_l2_smoothed_ot(prob):
    tau = 1.0
    c = prob.geom.cost_matrix
    ref = pot.smooth.smooth_ot_dual(_np(prob.a), _np(prob.b), _np(c), tau, reg_type="l2", stopThr=1e-12,
                                    numItermax=10000)

    def objective(p):
        return jnp.sum(p * c) + 0.5 * tau * jnp.sum(p ** 2)

    short = MirrorSinkhorn(max_iterations=300)(prob, objective=objective)
    long = MirrorSinkhorn(max_iterations=3000)(prob, objective=objective)
    d_short, d_long = np.abs(_np(short.matrix) - ref).sum(), np.abs(_np(long.matrix) - ref).sum()
    assert d_long < 0.6 * d_short
    assert abs(float(objective(long.matrix)) - float(objective(ref))) < 0.03 * float(objective(ref))


@pytest.mark.slow
def test_noisy_online_gradient_still_converges(prob):
    exact = pot.emd2(_np(prob.a), _np(prob.b), _np(prob.geom.cost_matrix))
    key = jax.random.PRNGKey(1)

    def noisy(t, p):
        return prob.geom.cost_matrix + jax.random.normal(jax.random.fold_in(key, t), p.shape)

    short = MirrorSinkhorn(max_iterations=200)(prob, gradient=noisy)
    long = MirrorSinkhorn(max_iterations=4000)(prob, gradient=noisy)
    assert abs(float(long.cost) - exact) < 0.5 * abs(float(short.cost) - exact)


@pytest.mark.slow
def test_jit_and_vmap(prob):
    solver = MirrorSinkhorn(max_iterations=100)
    eager = solver(prob)
    np.testing.assert_allclose(jax.jit(solver)(prob).matrix, eager.matrix, rtol=1e-5, atol=1e-7)
    probs = [prob, point_cloud_problem(jax.random.PRNGKey(5), 15)]
    batched = jax.vmap(solver)(jax.tree.map(lambda *x: jnp.stack(x), *probs))
    for i, p in enumerate(probs):
        np.testing.assert_allclose(batched.matrix[i], solver(p).matrix, rtol=1e-5, atol=1e-7)


def test_bad_input(prob):
    with pytest.raises(ValueError, match="tau_a"):
        MirrorSinkhorn()(linear_problem.LinearProblem(prob.geom, prob.a, prob.b, tau_a=0.5))
    with pytest.raises(ValueError, match="step_scale"):
        MirrorSinkhorn(step_scale=0.0)
    with pytest.raises(ValueError, match="same total mass"):
        MirrorSinkhorn()(linear_problem.LinearProblem(prob.geom, prob.a, 3 * prob.b))
    with pytest.raises(ValueError, match="at most one"):
        MirrorSinkhorn()(prob, objective=lambda p: jnp.sum(p), gradient=lambda t, p: p)
