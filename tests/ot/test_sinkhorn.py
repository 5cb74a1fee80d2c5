"""Sinkhorn against ott-jax and POT, marginals, unbalanced tau, epsilon scaling, bad input, jit/vmap, gradients."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import ot as pot
import pytest
from ott.geometry import epsilon_scheduler, geometry, pointcloud
from ott.problems.linear import linear_problem
from ott.solvers.linear import acceleration
from ott.solvers.linear import sinkhorn as ott_sinkhorn

from jaxopt_lab.ot import Sinkhorn
from jaxopt_lab.ot.problems import grid_density_problem, point_cloud_problem

N = 40
# One static configuration per mode: the threshold is a pytree child (traced), so the tests below share
# one compiled solver per (mode, problem structure) -- compiles dominate this file's run time.
KERNEL = Sinkhorn(threshold=1e-6, max_iterations=20000)
LSE = Sinkhorn(threshold=1e-6, max_iterations=20000, lse_mode=True)


def with_threshold(solver, threshold):
    return dataclasses.replace(solver, threshold=threshold)


@jax.jit
def ott_reference(prob):
    """ott-jax's Sinkhorn (jitted once per problem structure: ott does not jit itself)."""
    out = ott_sinkhorn.Sinkhorn(threshold=1e-6, max_iterations=5000)(prob)
    return dict(matrix=out.matrix, reg_cost=out.reg_ot_cost, cost=out.primal_cost)


@pytest.fixture(scope="module")
def prob():
    return point_cloud_problem(jax.random.PRNGKey(0), N, epsilon_scale=0.05)


def _np(x):
    return np.asarray(x, dtype=np.float64)


@pytest.mark.parametrize("solver", [pytest.param(KERNEL, marks=pytest.mark.slow), LSE], ids=["kernel", "lse"])
def test_matches_ott_and_pot(prob, solver):
    out = solver(prob)
    ref = ott_reference(prob)
    assert bool(out.converged)
    np.testing.assert_allclose(out.reg_cost, ref['reg_cost'], rtol=1e-5)
    np.testing.assert_allclose(out.cost, ref['cost'], rtol=1e-4)
    np.testing.assert_allclose(out.matrix, ref['matrix'], atol=2e-6)
    # POT (numpy, float64) log-domain Sinkhorn on the same cost matrix and epsilon
    a, b, c, eps = _np(prob.a), _np(prob.b), _np(prob.geom.cost_matrix), float(prob.epsilon)
    plan = pot.sinkhorn(a, b, c, eps, method="sinkhorn_log", stopThr=1e-9, numItermax=3000)
    cost = pot.sinkhorn2(a, b, c, eps, method="sinkhorn_log", stopThr=1e-9, numItermax=3000)
    np.testing.assert_allclose(out.matrix, plan, atol=2e-6)
    np.testing.assert_allclose(out.cost, cost, rtol=1e-4)
    # marginals
    r, col = out.marginals
    np.testing.assert_allclose(r, prob.a, atol=1e-6)
    np.testing.assert_allclose(col, prob.b, atol=1e-5)


@pytest.mark.slow
def test_w1_grid_problem_matches_ott():
    prob = grid_density_problem(jax.random.PRNGKey(3), 6, power=1, epsilon_scale=0.05)
    out = KERNEL(prob)
    ref = ott_reference(prob)
    np.testing.assert_allclose(out.reg_cost, ref['reg_cost'], rtol=1e-5)
    np.testing.assert_allclose(out.matrix, ref['matrix'], atol=1e-6)


@pytest.mark.slow
def test_small_epsilon_cost_matches_exact_emd():
    # float32, epsilon = 1e-3 x median cost: stable (no NaN) and close to the exact LP value.
    prob = point_cloud_problem(jax.random.PRNGKey(1), N, epsilon_scale=1e-3)
    exact = pot.emd2(_np(prob.a), _np(prob.b), _np(prob.geom.cost_matrix))
    for solver in (with_threshold(KERNEL, 1e-3), with_threshold(LSE, 1e-3)):
        out = solver(prob)
        assert bool(out.converged)
        assert np.all(np.isfinite(out.matrix))
        assert abs(float(out.cost) - exact) / exact < 1e-2
        # honest flag: the plan rebuilt from the returned potentials meets the threshold too
        assert float(out.marginal_error) < 2e-3


def test_not_converged_is_reported_not_nan():
    # threshold 0 cannot be met: the solver runs max_iterations and says so
    prob = point_cloud_problem(jax.random.PRNGKey(2), N, epsilon_scale=1e-3)
    for solver in (with_threshold(KERNEL, 0.0), with_threshold(LSE, 0.0)):
        out = solver(prob)
        assert not bool(out.converged)
        assert int(out.n_iters) == solver.max_iterations
        assert np.all(np.isfinite(out.f)) and np.all(np.isfinite(out.g))
        assert np.all(np.isfinite(out.matrix))


@pytest.mark.slow
@pytest.mark.parametrize("taus", [(0.9, 0.8), (1.0, 0.7)], ids=["unbalanced", "semi-relaxed"])
def test_unbalanced_tau_matches_ott(prob, taus):
    tau_a, tau_b = taus
    # unequal masses are allowed once a marginal is relaxed
    uprob = linear_problem.LinearProblem(prob.geom, prob.a, 1.5 * prob.b, tau_a=tau_a, tau_b=tau_b)
    ref = ott_reference(uprob)
    for solver in (KERNEL, LSE) if tau_a < 1 else (KERNEL,):
        out = solver(uprob)
        assert bool(out.converged)
        np.testing.assert_allclose(out.reg_cost, ref['reg_cost'], rtol=1e-4)
        np.testing.assert_allclose(out.matrix, ref['matrix'], atol=1e-5)
    if tau_a == 1.0:
        np.testing.assert_allclose(out.marginals[0], prob.a, atol=1e-5)


@pytest.mark.slow
def test_epsilon_scaling_from_geometry(prob):
    eps = epsilon_scheduler.Epsilon(prob.epsilon, init=100.0, decay=0.9)
    geom = pointcloud.PointCloud(prob.geom.x, prob.geom.y, epsilon=eps)
    sprob = linear_problem.LinearProblem(geom, prob.a, prob.b)
    ref = ott_reference(sprob)
    plain = KERNEL(prob)
    for solver in (KERNEL,):
        out = solver(sprob)
        assert bool(out.converged)
        np.testing.assert_allclose(out.matrix, ref['matrix'], atol=2e-6)
        np.testing.assert_allclose(out.matrix, plain.matrix, atol=2e-6)


def test_zero_mass_entries_match_ott(prob):
    a = prob.a.at[:3].set(0.0)
    a = a / a.sum()
    zprob = linear_problem.LinearProblem(prob.geom, a, prob.b)
    ref = ott_reference(zprob)
    out = KERNEL(zprob)
    assert np.all(out.matrix[:3] == 0)
    np.testing.assert_allclose(out.reg_cost, ref['reg_cost'], rtol=1e-5)
    np.testing.assert_allclose(out.matrix, ref['matrix'], atol=2e-6)


@pytest.mark.parametrize("make, match", [
    (lambda p: linear_problem.LinearProblem(p.geom, p.a.at[0].set(-0.1), p.b), "^a "),
    (lambda p: linear_problem.LinearProblem(p.geom, p.a, p.b.at[1].set(jnp.nan)), "^b "),
    (lambda p: linear_problem.LinearProblem(p.geom, p.a, 2 * p.b), "same total mass"),
    (lambda p: linear_problem.LinearProblem(geometry.Geometry(p.geom.cost_matrix, epsilon=-1.0), p.a, p.b),
     "epsilon"),
    (lambda p: linear_problem.LinearProblem(geometry.Geometry(p.geom.cost_matrix, epsilon=0.0), p.a, p.b),
     "epsilon"),
    (lambda p: linear_problem.LinearProblem(
        geometry.Geometry(p.geom.cost_matrix.at[0, 0].set(-1.0), epsilon=0.1), p.a, p.b), "cost"),
    (lambda p: linear_problem.LinearProblem(
        geometry.Geometry(p.geom.cost_matrix.at[0, 0].set(jnp.inf), epsilon=0.1), p.a, p.b), "cost"),
    (lambda p: linear_problem.LinearProblem(p.geom, p.a, p.b, tau_b=1.5), "tau_b"),
])
def test_bad_input_raises(prob, make, match):
    with pytest.raises(ValueError, match=match):
        KERNEL(make(prob))


def test_bad_hyperparameters_raise():
    with pytest.raises(ValueError, match="threshold"):
        Sinkhorn(threshold=-1.0)
    with pytest.raises(ValueError, match="max_iterations"):
        Sinkhorn(max_iterations=0)


@pytest.mark.slow
def test_jit_matches_eager_and_vmap_matches_loop():
    keys = jax.random.split(jax.random.PRNGKey(5), 3)
    probs = [point_cloud_problem(k, N, epsilon_scale=0.05) for k in keys]
    batched = jax.tree.map(lambda *xs: jnp.stack(xs), *probs)
    out_b = jax.vmap(KERNEL)(batched)
    for i, p in enumerate(probs):
        eager = KERNEL(p)
        jitted = jax.jit(KERNEL)(p)
        np.testing.assert_allclose(jitted.f, eager.f, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(p.geom.transport_from_potentials(out_b.f[i], out_b.g[i]),
                                   eager.matrix, atol=1e-6)
        # batched and single matvecs round differently: the stop may move by one error check
        assert abs(int(out_b.n_iters[i]) - int(eager.n_iters)) <= KERNEL.inner_iterations
        assert bool(out_b.converged[i])


@pytest.mark.slow
def test_threshold_is_a_traced_child(prob):
    # hyperparameters meant to be swept are pytree children: a vmap over thresholds works
    solvers = jax.vmap(lambda t: with_threshold(KERNEL, t))(jnp.array([1e-2, 1e-5]))
    out = jax.vmap(lambda s: s(prob))(solvers)
    assert int(out.n_iters[0]) < int(out.n_iters[1])


def _clouds_f64(key):
    """Two small float64 point clouds (8 and 6 points in R^2) for finite-difference checks."""
    x = jax.random.normal(key, (8, 2), jnp.float64)
    y = jax.random.normal(jax.random.fold_in(key, 1), (6, 2), jnp.float64) + 1.0
    return x, y


@pytest.mark.slow
@pytest.mark.parametrize("implicit", [True, False], ids=["implicit", "unrolled"])
def test_gradients_match_finite_differences(implicit):
    # float64 for a clean finite-difference check (enabled only inside this test)
    with jax.enable_x64(True):
        key = jax.random.PRNGKey(7)
        x, y = _clouds_f64(key)
        solver = Sinkhorn(threshold=1e-11, max_iterations=300, implicit_diff=implicit)

        def objective(x, which):
            out = solver(linear_problem.LinearProblem(pointcloud.PointCloud(x, y, epsilon=0.5)))
            return out.reg_cost if which == "reg" else out.cost

        direction = jax.random.normal(jax.random.fold_in(key, 2), x.shape, jnp.float64)
        h = 1e-5
        # implicit: the regularized cost and the transport cost (which needs dP/dx); unrolled: the latter
        for which in ("reg", "cost") if implicit else ("cost",):
            grad = jax.grad(objective)(x, which)
            fd = (objective(x + h * direction, which) - objective(x - h * direction, which)) / (2 * h)
            np.testing.assert_allclose(jnp.sum(grad * direction), fd, rtol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("implicit", [True, False], ids=["implicit", "unrolled"])
def test_marginal_gradients_match_finite_differences(implicit):
    # d(reg cost)/d(b) alone (a carries no tangent: one block of the implicit system's right-hand side
    # is a constant zero) and d/d(a, b) together, along mass-preserving directions, in float64. Kernel
    # mode: its unrolled loop differentiates through the absorption conditionals.
    with jax.enable_x64(True):
        key = jax.random.PRNGKey(8)
        x, y = _clouds_f64(key)
        a = jax.random.uniform(jax.random.fold_in(key, 2), (8,), jnp.float64, 0.5, 1.5)
        b = jax.random.uniform(jax.random.fold_in(key, 3), (6,), jnp.float64, 0.5, 1.5)
        a, b = a / a.sum(), b / b.sum()
        solver = Sinkhorn(threshold=1e-11, max_iterations=400, implicit_diff=implicit)

        def objective(a, b):
            return solver(linear_problem.LinearProblem(pointcloud.PointCloud(x, y, epsilon=0.5), a, b)).reg_cost

        da = jax.random.normal(jax.random.fold_in(key, 4), a.shape, jnp.float64)
        db = jax.random.normal(jax.random.fold_in(key, 5), b.shape, jnp.float64)
        da, db = da - da.mean(), db - db.mean()
        h = 1e-6
        grad_b = jax.grad(objective, argnums=1)(a, b)
        fd_b = (objective(a, b + h * db) - objective(a, b - h * db)) / (2 * h)
        np.testing.assert_allclose(jnp.vdot(grad_b, db), fd_b, rtol=1e-5)
        grad_a, grad_b2 = jax.grad(objective, argnums=(0, 1))(a, b)
        fd = (objective(a + h * da, b + h * db) - objective(a - h * da, b - h * db)) / (2 * h)
        np.testing.assert_allclose(jnp.vdot(grad_a, da) + jnp.vdot(grad_b2, db), fd, rtol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("lse_mode", [False, True], ids=["kernel", "lse"])
def test_fixed_momentum_iterates_match_ott(prob, lse_mode):
    # Over-relaxed Sinkhorn (Thibault et al.): the same 30 relaxed iterations as ott-jax's Momentum(value).
    ours = Sinkhorn(threshold=0.0, max_iterations=30, momentum=1.6, lse_mode=lse_mode)(prob)
    ref = ott_sinkhorn.Sinkhorn(threshold=0.0, max_iterations=30,
                                momentum=acceleration.Momentum(value=1.6))(prob)
    np.testing.assert_allclose(ours.matrix, ref.matrix, atol=1e-6)
    plain = Sinkhorn(threshold=0.0, max_iterations=30, lse_mode=lse_mode)(prob)
    assert np.abs(np.asarray(plain.matrix - ours.matrix)).max() > 1e-4  # the relaxation did something


@pytest.mark.slow
@pytest.mark.parametrize("lse_mode", [False, True], ids=["kernel", "lse"])
def test_adaptive_momentum_converges_faster_to_the_same_plan(lse_mode):
    # A slow problem (small epsilon): Lehmann et al.'s adaptive weight cuts the iterations and keeps the
    # fixed point (ott-jax's plain Sinkhorn as the reference plan).
    prob = point_cloud_problem(jax.random.PRNGKey(3), N, epsilon_scale=0.01)
    plain = Sinkhorn(threshold=1e-5, max_iterations=20000, lse_mode=lse_mode)(prob)
    fast = Sinkhorn(threshold=1e-5, max_iterations=20000, lse_mode=lse_mode, momentum_start=20)(prob)
    ref = ott_sinkhorn.Sinkhorn(threshold=1e-6, max_iterations=20000)(prob)
    assert bool(plain.converged) and bool(fast.converged)
    assert int(fast.n_iters) < 0.6 * int(plain.n_iters)
    np.testing.assert_allclose(fast.matrix, ref.matrix, atol=2e-5)
    # relaxed updates leave P 1 != a, so the error counts both marginals
    r, c = fast.marginals
    # (recomputed from the output in float32: rounding adds ~1e-6 to the 1e-5 the solver checked)
    assert float(jnp.abs(r - prob.a).sum() + jnp.abs(c - prob.b).sum()) < 2e-5


def _relaxed_sinkhorn_numpy(cost, a, b, eps, omega, warmup, iterations):
    """Log-domain over-relaxed Sinkhorn in float64 numpy: plain steps before ``warmup``, then
    ``x <- (1 - omega) x + omega x_new`` for each potential (g first, as ott-jax)."""
    from scipy.special import logsumexp
    f, g = np.zeros(len(a)), np.zeros(len(b))
    for t in range(iterations):
        w = 1.0 if t < warmup else omega
        g = (1 - w) * g + w * (eps * np.log(b) - eps * logsumexp((f[:, None] - cost) / eps, axis=0))
        f = (1 - w) * f + w * (eps * np.log(a) - eps * logsumexp((g[None, :] - cost) / eps, axis=1))
    return np.exp((f[:, None] + g[None, :] - cost) / eps)


@pytest.mark.parametrize("lse_mode", [False, True], ids=["kernel", "lse"])
def test_momentum_warmup_matches_numpy_reference(prob, lse_mode):
    # 5 plain iterations, then the fixed weight: the plan after 12 iterations, against numpy.
    ours = Sinkhorn(threshold=0.0, max_iterations=12, momentum=1.7, momentum_warmup=5, lse_mode=lse_mode,
                    inner_iterations=4)(prob)
    ref = _relaxed_sinkhorn_numpy(_np(prob.geom.cost_matrix), _np(prob.a), _np(prob.b), float(prob.epsilon),
                                  1.7, 5, 12)
    np.testing.assert_allclose(ours.matrix, ref, atol=1e-6)
    for warmup in (0, 4, 6):   # the warm-up's length shows in the trajectory
        other = _relaxed_sinkhorn_numpy(_np(prob.geom.cost_matrix), _np(prob.a), _np(prob.b),
                                        float(prob.epsilon), 1.7, warmup, 12)
        assert np.abs(ref - other).max() > 1e-5, warmup


def test_bad_momentum_raises():
    with pytest.raises(ValueError, match="momentum must be in"):
        Sinkhorn(momentum=2.0)
    with pytest.raises(ValueError, match="momentum_start"):
        Sinkhorn(momentum_start=1)
    with pytest.raises(ValueError, match="momentum_warmup must be an int >= 0"):
        Sinkhorn(momentum=1.5, momentum_warmup=-1)
    with pytest.raises(ValueError, match="set one of them"):
        Sinkhorn(momentum_warmup=3, momentum_start=20)


@pytest.mark.slow
def test_batches_see_each_other_only_within_a_vmap():
    # Kernel mode absorbs batch-wide under vmap; the answers stay those of a loop over the problems,
    # for partly batched arguments (a shared geometry, batched target weights), nested vmaps, and
    # implicit gradients through a vmapped solve.
    key = jax.random.PRNGKey(11)
    x = jax.random.normal(key, (2, 3, 10, 2))
    y = jax.random.normal(jax.random.fold_in(key, 1), (12, 2)) + 1.0

    def reg_cost(x, b=None):
        return KERNEL(linear_problem.LinearProblem(pointcloud.PointCloud(x, y, epsilon=0.05), b=b)).reg_cost

    single, single_grad = jax.jit(reg_cost), jax.jit(jax.grad(reg_cost))
    loop = np.array([[single(x[i, j]) for j in range(3)] for i in range(2)])
    np.testing.assert_allclose(jax.jit(jax.vmap(jax.vmap(reg_cost)))(x), loop, rtol=1e-5)
    bs = jax.nn.softmax(jax.random.normal(jax.random.fold_in(key, 2), (4, 12)))
    np.testing.assert_allclose(jax.jit(jax.vmap(reg_cost, in_axes=(None, 0)))(x[0, 0], bs),
                               [single(x[0, 0], b) for b in bs], rtol=1e-5)
    grads = jax.jit(jax.grad(lambda xs: jax.vmap(reg_cost)(xs).sum()))(x[0])
    for j in range(3):
        np.testing.assert_allclose(grads[j], single_grad(x[0, j]), atol=1e-5)


@pytest.mark.slow
def test_kernel_mode_absorbs_without_losing_mass_at_the_default_bound():
    # The default absorption bound (-log(tiny)/3, 29 in float32) lets scalings grow large between
    # absorptions at a small epsilon; the kernel-mode plan must stay as accurate as the pure log-domain
    # float32 one, against a float64 log-domain reference on the same cost matrix.
    prob = point_cloud_problem(jax.random.PRNGKey(4), N, epsilon_scale=1e-3)
    kernel = np.asarray(Sinkhorn(threshold=0.0, max_iterations=300)(prob).matrix)
    lse = np.asarray(Sinkhorn(threshold=0.0, max_iterations=300, lse_mode=True)(prob).matrix)
    with jax.enable_x64(True):
        geom = geometry.Geometry(cost_matrix=jnp.asarray(prob.geom.cost_matrix, jnp.float64),
                                 epsilon=float(prob.epsilon))
        a, b = jnp.asarray(prob.a, jnp.float64), jnp.asarray(prob.b, jnp.float64)
        p64 = linear_problem.LinearProblem(geom, a / a.sum(), b / b.sum())
        ref = np.asarray(Sinkhorn(threshold=0.0, max_iterations=300, lse_mode=True)(p64).matrix)
    assert np.all(np.isfinite(kernel))
    err_kernel, err_lse = np.abs(kernel - ref).max(), np.abs(lse - ref).max()
    assert err_kernel <= 2 * err_lse + 1e-6, (err_kernel, err_lse)
