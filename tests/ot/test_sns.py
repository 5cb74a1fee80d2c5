"""Sinkhorn-Newton-Sparse: same optimum as Sinkhorn / ott-jax, fast Newton convergence, no dense Hessian."""

import jax
import jax.extend.core
import jax.numpy as jnp
import numpy as np
import pytest
from ott.problems.linear import linear_problem
from ott.solvers.linear import sinkhorn as ott_sinkhorn

from jaxopt_lab.ot import Sinkhorn, SinkhornNewtonSparse
from jaxopt_lab.ot.problems import grid_density_problem, point_cloud_problem


@pytest.mark.slow
def test_reaches_sinkhorn_optimum_float64():
    # float64 (enabled only here) so that both solvers can reach 1e-10
    with jax.enable_x64(True):
        prob = grid_density_problem(jax.random.PRNGKey(0), 7, power=2, epsilon_scale=0.02, dtype=jnp.float64)
        sns = SinkhornNewtonSparse(threshold=1e-10, max_iterations=50)(prob)
        sk = Sinkhorn(threshold=1e-10, max_iterations=20000)(prob)
        ref = jax.jit(lambda p: ott_sinkhorn.Sinkhorn(threshold=1e-10, max_iterations=20000)(p).reg_ot_cost)(prob)
        assert bool(sns.converged) and bool(sk.converged)
        np.testing.assert_allclose(sns.reg_cost, sk.reg_cost, rtol=1e-9)
        np.testing.assert_allclose(sns.reg_cost, ref, rtol=1e-9)
        np.testing.assert_allclose(sns.matrix, sk.matrix, atol=1e-9)
        assert float(sns.marginal_error) < 1e-10
        # far fewer iterations than Sinkhorn, and Newton converges superlinearly
        newton = int(sns.stats["newton_iterations"])
        assert int(sns.n_iters) < int(sk.n_iters) / 5
        errs = np.asarray(sns.errors[:newton])
        assert newton <= 12
        assert errs[-1] < 1e-3 * errs[max(newton - 4, 0)]


@pytest.mark.slow
def test_float32_point_cloud_and_vmap():
    keys = jax.random.split(jax.random.PRNGKey(1), 2)
    probs = [point_cloud_problem(k, 20, epsilon_scale=0.05) for k in keys]
    solver = SinkhornNewtonSparse(threshold=1e-5, max_iterations=30)
    batched = jax.vmap(solver)(jax.tree.map(lambda *x: jnp.stack(x), *probs))
    for i, p in enumerate(probs):
        out = solver(p)
        assert bool(out.converged)
        assert np.all(np.isfinite(out.matrix))
        assert float(out.marginal_error) < 1e-4
        np.testing.assert_allclose(p.geom.transport_from_potentials(batched.f[i], batched.g[i]), out.matrix,
                                   atol=1e-6)


def test_never_forms_a_dense_hessian():
    n, m = 30, 20
    prob = point_cloud_problem(jax.random.PRNGKey(2), n, m, epsilon_scale=0.05)
    solver = SinkhornNewtonSparse(kept_per_row=4)
    jaxpr = jax.make_jaxpr(lambda p: solver(p).f)(prob)
    shapes = set()

    def visit(jpr):
        for eqn in jpr.eqns:
            for v in eqn.outvars:
                shapes.add(tuple(getattr(v.aval, "shape", ())))
            for sub in jax.extend.core.jaxprs_in_params(eqn.params):
                visit(sub)

    visit(jaxpr.jaxpr)
    assert (n + m, n + m) not in shapes
    assert (n, 4) in shapes  # the kept entries: values / indices per row
    assert max(int(np.prod(s)) for s in shapes) <= n * m


def test_bad_input():
    prob = point_cloud_problem(jax.random.PRNGKey(3), 10, epsilon_scale=0.05)
    with pytest.raises(ValueError, match="balanced"):
        SinkhornNewtonSparse()(linear_problem.LinearProblem(prob.geom, prob.a, prob.b, tau_b=0.5))
    with pytest.raises(ValueError, match="^a "):
        a = prob.a.at[0].set(0.0)
        SinkhornNewtonSparse()(linear_problem.LinearProblem(prob.geom, a / a.sum(), prob.b))
    with pytest.raises(ValueError, match="kept_per_row"):
        SinkhornNewtonSparse(kept_per_row=0)
    with pytest.raises(ValueError, match="kept_per_row"):
        SinkhornNewtonSparse(kept_per_row=1.5)


@pytest.mark.slow
def test_early_stopped_accelerated_warmup_and_inexact_newton_reach_the_same_optimum():
    # Stage 1 stopped by error with over-relaxed Sinkhorn steps, and CG solved only to a forcing term:
    # the same optimum (ott-jax's reg cost) with far fewer CG iterations than the exact solves.
    with jax.enable_x64(True):
        prob = point_cloud_problem(jax.random.PRNGKey(3), 200, epsilon_scale=0.01, dtype=jnp.float64)
        ref = jax.jit(lambda p: ott_sinkhorn.Sinkhorn(threshold=1e-10, max_iterations=50000)(p).reg_ot_cost)(prob)
        exact = SinkhornNewtonSparse(threshold=1e-9, warmup_iterations=1000, warmup_threshold=1e-3,
                                     warmup_momentum_start=20)(prob)
        fast = SinkhornNewtonSparse(threshold=1e-9, warmup_iterations=1000, warmup_threshold=1e-3,
                                    warmup_momentum_start=20, cg_forcing=0.1)(prob)
        for out in (exact, fast):
            assert bool(out.converged)
            np.testing.assert_allclose(out.reg_cost, ref, rtol=1e-8)
            assert float(out.marginal_error) < 1e-9
        warm = int(fast.stats["warmup_iterations"])
        assert warm < 1000 and float(fast.stats["warmup_errors"][warm // 10 - 1]) < 1e-3   # stopped by error
        newton = int(fast.stats["newton_iterations"])
        cg = lambda o: int(np.sum(o.stats["cg_iterations"]))  # noqa: E731
        assert 1 <= newton <= 6
        assert cg(fast) < cg(exact)


def test_bad_stage_options_raise():
    with pytest.raises(ValueError, match="warmup_threshold"):
        SinkhornNewtonSparse(warmup_threshold=-1.0)
    with pytest.raises(ValueError, match="cg_forcing"):
        SinkhornNewtonSparse(cg_forcing=1.0)
