"""Solver status, throw=True, traced inputs (jit/grad/vmap over the weights), invalid traced epsilon,
wrong marginal lengths, half precision, and the unbalanced objective's reference measure (vs POT)."""

import jax
import jax.numpy as jnp
import numpy as np
import ot as pot
import pytest
from ott.geometry import geometry, pointcloud
from ott.problems.linear.linear_problem import LinearProblem

from jaxopt_lab import _loop
from jaxopt_lab.ot import MirrorSinkhorn, OTSolverError, Sinkhorn, SinkhornNewtonSparse, unbalanced_problem

N = 24


@pytest.fixture(scope="module")
def clouds():
    kx, ky = jax.random.split(jax.random.PRNGKey(0))
    x = jax.random.normal(kx, (N, 2))
    return x, x + 1.0 + 0.3 * jax.random.normal(ky, (N, 2))


def _prob(x, y, a=None, b=None, eps=0.5):
    a = jnp.full((x.shape[0],), 1.0 / x.shape[0]) if a is None else a
    b = jnp.full((y.shape[0],), 1.0 / y.shape[0]) if b is None else b
    return LinearProblem(pointcloud.PointCloud(x, y, epsilon=eps), a, b)


@pytest.mark.slow
@pytest.mark.parametrize("make", [lambda: Sinkhorn(), lambda: Sinkhorn(lse_mode=True),
                                  lambda: SinkhornNewtonSparse(threshold=1e-4, kept_per_row=6)],
                         ids=["kernel", "lse", "sns"])
def test_jit_grad_vmap_over_weights_with_points_closed_over(clouds, make):
    # Failed before: validation called np.asarray on the cost traced inside the caller's jit.
    x, y = clouds
    solver = make()
    b = jnp.full((N,), 1.0 / N)

    def reg(a):
        return solver(_prob(x, y, a, b)).reg_cost

    eager = reg(b)
    np.testing.assert_allclose(jax.jit(reg)(b), eager, rtol=1e-5)
    if isinstance(solver, Sinkhorn):   # SNS's Newton loop has no reverse-mode rule
        grad = jax.jit(jax.grad(reg))(b)
        assert np.all(np.isfinite(grad))
    batch = jnp.stack([b, jnp.roll(b.at[0].add(0.01).at[1].add(-0.01), 3)])
    np.testing.assert_allclose(jax.vmap(reg)(batch)[0], eager, rtol=1e-5)


def test_mirror_sinkhorn_under_jit_with_weights_closed_over(clouds):
    # Failed before: a Python `if` on jnp.all(w > 0) traced inside the caller's jit.
    x, y = clouds
    solver = MirrorSinkhorn(max_iterations=50)
    out = jax.jit(lambda a: solver(_prob(x, y, a)).cost)(jnp.full((N,), 1.0 / N))
    assert np.isfinite(out)


@pytest.mark.slow
def test_negative_traced_epsilon_is_nonfinite_not_converged(clouds):
    # Failed before: eps < 0 under jit gave converged=True and a finite cost.
    x, y = clouds
    a = jnp.full((N,), 1.0 / N)
    for solver in (Sinkhorn(), Sinkhorn(lse_mode=True)):
        out = jax.jit(lambda eps: solver(_prob(x, y, a, a, eps)))(-0.5)
        assert not bool(out.converged)
        assert int(out.status) == _loop.NONFINITE, _loop.STATUS_NAMES[int(out.status)]


@pytest.mark.parametrize("which", ["a", "b"])
def test_marginal_of_wrong_length_names_the_argument(clouds, which):
    x, y = clouds
    w = jnp.full((N + 1,), 1.0 / (N + 1))
    prob = _prob(x, y, a=w) if which == "a" else _prob(x, y, b=w)
    with pytest.raises(ValueError, match=rf"^{which} \(marginal weights\) must have shape \({N},\)"):
        Sinkhorn()(prob)
    with pytest.raises(ValueError, match=rf"^{which} "):   # also when traced
        jax.jit(lambda p: Sinkhorn()(p).cost)(prob)


@pytest.mark.slow
def test_status_max_iterations_nonfinite_and_throw(clouds):
    x, y = clouds
    prob = _prob(x, y)
    out = Sinkhorn(threshold=0.0, max_iterations=30)(prob)
    assert out.status_name == "max_iterations" and not bool(out.converged)
    nan_cost = LinearProblem(geometry.Geometry(jnp.full((N, N), jnp.nan), epsilon=0.5), prob.a, prob.b)
    # a NaN cost is rejected up front when concrete; traced, the loop stops with status nonfinite
    for lse in (False, True):
        out = jax.jit(lambda p: Sinkhorn(lse_mode=lse)(p))(nan_cost)
        assert out.status_name == "nonfinite"
        assert int(out.n_iters) <= Sinkhorn().inner_iterations
    with pytest.raises(OTSolverError, match="status max_iterations after 30 iterations"):
        Sinkhorn(threshold=0.0, max_iterations=30, throw=True)(prob)
    with pytest.raises(Exception, match="did not converge"):
        jax.block_until_ready(jax.jit(lambda p: Sinkhorn(throw=True)(p).f)(nan_cost))
    assert Sinkhorn(throw=True)(prob).status_name == "converged"


@pytest.mark.parametrize("dtype", [pytest.param(jnp.bfloat16, marks=pytest.mark.slow), jnp.float16])
def test_half_precision_marginals_accepted_and_solved_in_float32(clouds, dtype):
    # Failed before: marginals summing to 1 +- 2e-4 after rounding to bfloat16 were rejected as unbalanced.
    x, y = clouds
    w = jax.random.uniform(jax.random.PRNGKey(3), (N,), minval=0.5, maxval=1.5)
    a, b = (w / w.sum()).astype(dtype), (w[::-1] / w.sum()).astype(dtype)
    prob = LinearProblem(pointcloud.PointCloud(x.astype(dtype), y.astype(dtype), epsilon=0.5), a, b)
    out = Sinkhorn(lse_mode=True)(prob)
    assert out.f.dtype == jnp.float32
    ref = Sinkhorn(lse_mode=True)(LinearProblem(pointcloud.PointCloud(
        x.astype(dtype).astype(jnp.float32), y.astype(dtype).astype(jnp.float32), epsilon=0.5),
        a.astype(jnp.float32), b.astype(jnp.float32) * (a.astype(jnp.float32).sum() / b.astype(jnp.float32).sum())))
    np.testing.assert_allclose(out.reg_cost, ref.reg_cost, rtol=1e-2)


@pytest.mark.slow
def test_unbalanced_reference_measure_is_ones_and_product_option_matches_pot_kl(clouds):
    # POT's sinkhorn_unbalanced: reg_type='entropy' is the all-ones reference measure (our default, as
    # ott-jax), reg_type='kl' the product a b^T (reference='product').
    with jax.enable_x64(True):
        x, y = (np.asarray(v, np.float64) for v in clouds)
        rng = np.random.default_rng(0)
        a, b = rng.uniform(0.5, 1.5, N), rng.uniform(0.5, 1.5, N)
        a, b = a / a.sum(), 1.3 * b / b.sum()
        eps, rho = 0.5, 2.0
        geom = pointcloud.PointCloud(jnp.asarray(x), jnp.asarray(y), epsilon=eps)
        c = np.asarray(geom.cost_matrix)
        solver = Sinkhorn(threshold=1e-12, max_iterations=5000, lse_mode=True)
        for reference, reg_type in (("ones", "entropy"), ("product", "kl")):
            prob = unbalanced_problem(geom, jnp.asarray(a), jnp.asarray(b), rho_a=rho, rho_b=rho,
                                      reference=reference)
            ours = np.asarray(solver(prob).matrix)
            ref = pot.unbalanced.sinkhorn_unbalanced(a, b, c, eps, rho, method="sinkhorn_stabilized",
                                                      reg_type=reg_type, stopThr=1e-14, numItermax=20000)
            np.testing.assert_allclose(ours, ref, rtol=1e-6, atol=1e-12)


@pytest.mark.slow
def test_float32_log_mode_reaches_1e6_on_a_1000_by_10_problem_and_warns_below_the_floor():
    # Failed before: log mode stalled at 1.1e-6 on this problem (marginals summed from the plan's entries).
    from jaxopt_lab.ot import point_cloud_problem
    prob = point_cloud_problem(jax.random.PRNGKey(0), 1000, 10, epsilon_scale=0.05)
    out = Sinkhorn(threshold=1e-6, max_iterations=1000, lse_mode=True)(prob)
    assert out.status_name == "converged"
    with pytest.warns(UserWarning, match="below the float32 log-domain floor"):
        Sinkhorn(threshold=1e-8, max_iterations=10, lse_mode=True)(prob)
