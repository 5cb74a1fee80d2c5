"""Online (memory-free) point clouds: agreement with the dense path and ott-jax, envelope gradients vs
finite differences and vs the dense implicit gradient, vmap, jit, degenerate inputs."""

import jax
import jax.extend.core
import jax.numpy as jnp
import numpy as np
import pytest
from ott.geometry import costs, pointcloud
from ott.problems.linear.linear_problem import LinearProblem
from ott.solvers.linear import sinkhorn as ott_sinkhorn

from jaxopt_lab.ot import Sinkhorn, SinkhornNewtonSparse
from jaxopt_lab.ot._geom import DENSE_MAX_ENTRIES, DenseCost, OnlineCost, is_online, swapped
from jaxopt_lab.ot.output import validate_problem

ONLINE = Sinkhorn(threshold=1e-6, max_iterations=3000, online=True, block_size=7)
DENSE_KERNEL = Sinkhorn(threshold=1e-6, max_iterations=3000, online=False)
DENSE_LSE = Sinkhorn(threshold=1e-6, max_iterations=3000, online=False, lse_mode=True)


def _problem(key, n=30, m=23, d=3, cost_fn=None, tau=1.0, eps=0.3):
    kx, ky, ka, kb = jax.random.split(key, 4)
    x = jax.random.normal(kx, (n, d))
    y = 0.5 + jax.random.normal(ky, (m, d))
    a = jax.random.uniform(ka, (n,), minval=0.5, maxval=1.5)
    b = jax.random.uniform(kb, (m,), minval=0.5, maxval=1.5)
    geom = pointcloud.PointCloud(x, y, cost_fn=cost_fn or costs.SqEuclidean(), epsilon=eps)
    return LinearProblem(geom, a / a.sum(), b / b.sum(), tau_a=tau, tau_b=tau)


@pytest.mark.parametrize("cost_fn", [costs.SqEuclidean(), pytest.param(costs.Euclidean(), marks=pytest.mark.slow),
                                     pytest.param(costs.Cosine(), marks=pytest.mark.slow)],
                         ids=["sqeuclidean", "euclidean", "cosine"])
@pytest.mark.parametrize("tau", [1.0, pytest.param(0.8, marks=pytest.mark.slow)], ids=["balanced", "unbalanced"])
def test_online_matches_dense_kernel_and_log_modes(cost_fn, tau):
    eps = 0.3 if not isinstance(cost_fn, costs.Cosine) else 0.05
    prob = _problem(jax.random.PRNGKey(0), cost_fn=cost_fn, tau=tau, eps=eps)
    online = ONLINE(prob)
    assert online.online and online.status_name == "converged"
    for dense in (DENSE_KERNEL(prob), DENSE_LSE(prob)):
        assert not dense.online
        np.testing.assert_allclose(online.matrix, dense.matrix, atol=2e-6)
        np.testing.assert_allclose(online.cost, dense.cost, rtol=1e-5)
        np.testing.assert_allclose(online.reg_cost, dense.reg_cost, rtol=1e-5)
        for mo, md in zip(online.marginals, dense.marginals):
            np.testing.assert_allclose(mo, md, atol=1e-6)
        if tau == 1.0:   # potentials agree up to a constant (f + c, g - c)
            shift = jnp.mean(online.f - dense.f)
            np.testing.assert_allclose(online.f - shift, dense.f, atol=1e-4)
            np.testing.assert_allclose(online.g + shift, dense.g, atol=1e-4)
    ref = jax.jit(lambda p: ott_sinkhorn.Sinkhorn(threshold=1e-6, max_iterations=3000)(p).reg_ot_cost)(prob)
    np.testing.assert_allclose(online.reg_cost, ref, rtol=1e-5)


@jax.tree_util.register_pytree_node_class
class _Asymmetric(costs.CostFn):
    """c(x, y) = |x - y/2|^2 + x_0: c(x, y) != c(y, x), so a column log-sum-exp taken as a row one of the
    transposed cost is only right if the arguments are swapped too."""

    def __call__(self, x, y):
        return jnp.sum((x - 0.5 * y) ** 2) + x[0]


@pytest.mark.slow
@pytest.mark.parametrize("cost_fn, block_size", [(costs.SqEuclidean(), None), (costs.Cosine(), 4),
                                                  (_Asymmetric(), 4)])
def test_online_log_sum_exps_match_dense_float64(cost_fn, block_size):
    # col_lse is row_lse of the transposed cost (x and y swapped, and the cost's arguments)
    with jax.enable_x64(True):
        kx, ky, kf, kg = jax.random.split(jax.random.PRNGKey(3), 4)
        x, y = jax.random.normal(kx, (11, 3)), 0.5 + jax.random.normal(ky, (9, 3))
        f, g = jax.random.normal(kf, (11,)), jax.random.normal(kg, (9,))
        op = OnlineCost(x, y, cost_fn, jnp.asarray(0.5), block_size=block_size)
        dense = DenseCost(0.5 * cost_fn.all_pairs(x, y))
        assert swapped(swapped(cost_fn)) is cost_fn
        np.testing.assert_allclose(op.transpose().block_cost(y), dense.cost.T, rtol=1e-12)
        for current in (None, (f, g)):
            cf, cg = current or (None, None)
            np.testing.assert_allclose(op.row_lse(g, 0.3, cf), dense.row_lse(g, 0.3, cf), rtol=1e-12)
            np.testing.assert_allclose(op.col_lse(f, 0.3, cg), dense.col_lse(f, 0.3, cg), rtol=1e-12)


def test_automatic_choice_and_ott_batch_size():
    small = _problem(jax.random.PRNGKey(1))
    assert not is_online(small.geom) and not Sinkhorn()(small).online
    geom = pointcloud.PointCloud(small.geom.x, small.geom.y, epsilon=0.3, batch_size=8)
    assert is_online(geom)   # ott-jax's own online flag is honoured
    big = pointcloud.PointCloud(jnp.zeros((5000, 2)), jnp.zeros((DENSE_MAX_ENTRIES // 5000 + 1, 2)))
    assert is_online(big)


@pytest.mark.slow
def test_envelope_gradient_matches_finite_differences_and_dense_implicit_float64():
    with jax.enable_x64(True):
        key = jax.random.PRNGKey(3)
        base = _problem(key, n=12, m=9, d=2, eps=0.5)
        x, y = base.geom.x.astype(jnp.float64), base.geom.y.astype(jnp.float64)
        a, b = base.a.astype(jnp.float64), base.b.astype(jnp.float64)
        online = Sinkhorn(threshold=1e-12, max_iterations=2000, online=True, block_size=5)
        dense = Sinkhorn(threshold=1e-12, max_iterations=2000, online=False)

        def reg(solver, x, y, a, b):
            return solver(LinearProblem(pointcloud.PointCloud(x, y, epsilon=0.5), a, b)).reg_cost

        g_on = jax.grad(lambda *v: reg(online, *v), argnums=(0, 1, 2, 3))(x, y, a, b)
        g_de = jax.grad(lambda *v: reg(dense, *v), argnums=(0, 1, 2, 3))(x, y, a, b)
        for i in (0, 1):
            np.testing.assert_allclose(g_on[i], g_de[i], rtol=1e-7, atol=1e-9)
        for i in (2, 3):   # weight gradients are potentials, defined up to a constant on the simplex
            np.testing.assert_allclose(g_on[i] - g_on[i].mean(), g_de[i] - g_de[i].mean(), atol=1e-8)
        h = 1e-5
        for i, v in enumerate((x, y)):
            direction = jax.random.normal(jax.random.fold_in(key, i), v.shape, jnp.float64)
            args = [x, y, a, b]
            plus, minus = list(args), list(args)
            plus[i], minus[i] = v + h * direction, v - h * direction
            fd = (reg(online, *plus) - reg(online, *minus)) / (2 * h)
            np.testing.assert_allclose(jnp.sum(g_on[i] * direction), fd, rtol=1e-6)


@pytest.mark.slow
def test_vmap_and_jit_over_online_problems():
    keys = jax.random.split(jax.random.PRNGKey(4), 3)
    probs = [_problem(k) for k in keys]
    batched = jax.tree.map(lambda *xs: jnp.stack(xs), *probs)
    out_b = jax.jit(jax.vmap(lambda p: ONLINE(p).reg_cost))(batched)
    for i, p in enumerate(probs):
        np.testing.assert_allclose(out_b[i], ONLINE(p).reg_cost, rtol=1e-6)


@pytest.mark.slow
def test_zero_weight_duplicates_and_1000_by_10_rectangle():
    prob = _problem(jax.random.PRNGKey(5), n=20, m=20)
    x = prob.geom.x.at[3].set(prob.geom.x[4])   # duplicate points
    a = prob.a.at[0].set(0.0)
    a = a / a.sum()
    p = LinearProblem(pointcloud.PointCloud(x, prob.geom.y, epsilon=0.3), a, prob.b)
    online, dense = ONLINE(p), DENSE_LSE(p)
    assert online.status_name == "converged"
    np.testing.assert_allclose(online.matrix, dense.matrix, atol=2e-6)
    assert float(jnp.max(online.matrix[0])) == 0.0   # the zero-weight point sends nothing
    np.testing.assert_allclose(online.matrix[3], online.matrix[4] * a[3] / a[4], rtol=1e-4)
    rect = _problem(jax.random.PRNGKey(6), n=1000, m=10, eps=0.5)
    on = Sinkhorn(threshold=1e-5, online=True, block_size=128)(rect)
    de = Sinkhorn(threshold=1e-5, online=False)(rect)
    assert on.status_name == de.status_name == "converged"
    np.testing.assert_allclose(on.reg_cost, de.reg_cost, rtol=1e-5)


ONLINE_SNS = SinkhornNewtonSparse(threshold=1e-5, kept_per_row=6, online=True, block_size=7)


@pytest.mark.slow
def test_online_sns_matches_dense_sns_and_sinkhorn():
    prob = _problem(jax.random.PRNGKey(7), eps=0.1)
    online = ONLINE_SNS(prob)
    dense = SinkhornNewtonSparse(threshold=1e-5, kept_per_row=6, online=False)(prob)
    assert online.online and not dense.online
    assert online.status_name == dense.status_name == "converged"
    assert int(online.stats["newton_iterations"]) >= 1   # the Newton stage ran (not only the warm-up)
    shift = jnp.mean(online.f - dense.f)   # potentials agree up to a constant (f + c, g - c)
    np.testing.assert_allclose(online.f - shift, dense.f, atol=1e-4)
    np.testing.assert_allclose(online.g + shift, dense.g, atol=1e-4)
    np.testing.assert_allclose(online.matrix, dense.matrix, atol=2e-6)
    ref = DENSE_LSE(prob)   # an independent solver of the same problem
    for out in (online, dense):
        np.testing.assert_allclose(out.cost, ref.cost, rtol=1e-5)
        np.testing.assert_allclose(out.reg_cost, ref.reg_cost, rtol=1e-5)


@pytest.mark.slow
def test_online_sns_float64_reaches_ott_optimum():
    with jax.enable_x64(True):
        base = _problem(jax.random.PRNGKey(8), n=40, m=31, eps=0.05)
        prob = LinearProblem(pointcloud.PointCloud(base.geom.x.astype(jnp.float64), base.geom.y.astype(jnp.float64),
                                                   epsilon=0.05), base.a.astype(jnp.float64), base.b.astype(jnp.float64))
        out = SinkhornNewtonSparse(threshold=1e-10, kept_per_row=8, online=True, block_size=9)(prob)
        ref = jax.jit(lambda p: ott_sinkhorn.Sinkhorn(threshold=1e-11, max_iterations=50000)(p).reg_ot_cost)(prob)
        assert out.status_name == "converged" and float(out.marginal_error) < 1e-10
        np.testing.assert_allclose(out.reg_cost, ref, rtol=1e-9)


def test_online_sns_keeps_only_blocks_and_top_k():
    n, m, block, k = 40, 30, 8, 4
    prob = _problem(jax.random.PRNGKey(9), n=n, m=m)
    solver = SinkhornNewtonSparse(kept_per_row=k, online=True, block_size=block)
    jaxpr = jax.make_jaxpr(lambda p: solver(p).f)(prob)
    sizes = set()

    def visit(jpr):
        for eqn in jpr.eqns:
            sizes.update(int(np.prod(getattr(v.aval, "shape", ()))) for v in eqn.outvars)
            for sub in jax.extend.core.jaxprs_in_params(eqn.params):
                visit(sub)

    visit(jaxpr.jaxpr)
    # blocks of the cost (block x m) and of its transpose (block x n, the column log-sum-exps), the top-k
    assert max(sizes) <= max(block * m, block * n, n * k) < n * m   # no n x m plan, cost or Hessian


@pytest.mark.slow
def test_online_sns_vmap_and_jit():
    probs = [_problem(k, eps=0.1) for k in jax.random.split(jax.random.PRNGKey(10), 2)]
    batched = jax.tree.map(lambda *xs: jnp.stack(xs), *probs)
    out_b = jax.jit(jax.vmap(lambda p: ONLINE_SNS(p).reg_cost))(batched)
    for i, p in enumerate(probs):
        np.testing.assert_allclose(out_b[i], ONLINE_SNS(p).reg_cost, rtol=1e-6)


def test_large_point_cloud_validates_in_linear_memory(monkeypatch):
    import resource

    def no_dense(self):
        raise AssertionError("validation formed the dense cost")

    n = 100_000   # a dense float32 cost would take 40 GB
    x = jax.random.normal(jax.random.PRNGKey(11), (n, 3))
    w = jnp.full((n,), 1.0 / n)
    monkeypatch.setattr(pointcloud.PointCloud, "cost_matrix", property(no_dense))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    validate_problem(LinearProblem(pointcloud.PointCloud(x, x + 1.0, epsilon=0.1), w, w))
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100 * 2 ** 10   # KiB: < 100 MiB
    with pytest.raises(ValueError, match=r"^points \(geom.y\) must be finite"):
        validate_problem(LinearProblem(pointcloud.PointCloud(x, x.at[5, 1].set(jnp.nan), epsilon=0.1), w, w))
    with pytest.raises(ValueError, match="^epsilon must be finite and > 0"):
        validate_problem(LinearProblem(pointcloud.PointCloud(x, x, epsilon=-1.0), w, w))
    with pytest.raises(ValueError, match="online point cloud needs epsilon given as a number"):
        Sinkhorn(online=True)(LinearProblem(pointcloud.PointCloud(x[:10], x[:10]), w[:10] * n / 10, w[:10] * n / 10))
