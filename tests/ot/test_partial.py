"""Unbalanced, partial OT, P^2OT / SP^2OT and SeLa against ott-jax, POT and the papers' reference algorithms."""

import jax
import jax.numpy as jnp
import numpy as np
import ot as pot
import pytest
from ott.geometry import geometry, pointcloud
from ott.problems.linear import linear_problem
from ott.solvers.linear import sinkhorn as ott_sinkhorn

from jaxopt_lab.ot import partial
from jaxopt_lab.ot.problems import point_cloud_problem
from jaxopt_lab.ot.sinkhorn import Sinkhorn


def _logits(n=60, k=4, seed=0, scale=3.0):
    return scale * jax.random.normal(jax.random.PRNGKey(seed), (n, k))


# ------------------------------------------------------------------------------ unbalanced / semi-relaxed
@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::UserWarning")  # POT: convergence / reg_type notes
def test_unbalanced_matches_ott_and_pot_with_same_tau():
    prob = point_cloud_problem(jax.random.PRNGKey(0), 20, 30, epsilon_scale=0.1)
    up = partial.unbalanced_problem(prob.geom, prob.a, prob.b, rho_a=0.5, rho_b=0.2)
    eps = float(prob.geom.epsilon)
    np.testing.assert_allclose(up.tau_b, 0.2 / (0.2 + eps), rtol=1e-6)
    ours = Sinkhorn(threshold=1e-6, lse_mode=True)(up)
    ref = ott_sinkhorn.Sinkhorn(threshold=1e-6)(up)
    np.testing.assert_allclose(ours.matrix, ref.matrix, atol=1e-5)
    np.testing.assert_allclose(ours.reg_cost, ref.reg_ot_cost, rtol=1e-4)
    # POT's KL-relaxed Sinkhorn with the (reference-free) entropy is the same problem.
    a, b, c = (np.asarray(v, np.float64) for v in (prob.a, prob.b, prob.geom.cost_matrix))
    plan = pot.unbalanced.sinkhorn_unbalanced(a, b, c, eps, (0.5, 0.2), reg_type="entropy", numItermax=20000,
                                              stopThr=1e-12)
    np.testing.assert_allclose(ours.matrix, plan, atol=1e-5)


@pytest.mark.slow
def test_outlier_mass_decreases_as_target_marginal_relaxes():
    # Unbalanced OT's robustness to outliers: source Gaussian, target Gaussian + a 10% far-away outlier cluster.
    kx, ky, ko = jax.random.split(jax.random.PRNGKey(0), 3)
    x = jax.random.normal(kx, (60, 2))
    y = jnp.concatenate([jax.random.normal(ky, (54, 2)) + 0.5, jax.random.normal(ko, (6, 2)) * 0.3 + 6.0])
    geom = pointcloud.PointCloud(x, y, epsilon=0.5)
    outlier_mass = []
    for tau_b in (1.0, 0.99, 0.9, 0.5):
        out = Sinkhorn(threshold=1e-5, max_iterations=5000)(linear_problem.LinearProblem(geom, tau_b=tau_b))
        assert bool(out.converged)
        outlier_mass.append(float(out.matrix[:, 54:].sum() / out.matrix.sum()))
    assert outlier_mass[0] == pytest.approx(0.1, abs=1e-3)
    assert all(later < earlier for earlier, later in zip(outlier_mass, outlier_mass[1:])), outlier_mass


# --------------------------------------------------------------------------------------------- partial OT
@pytest.mark.slow
def test_partial_matches_pot_exact_partial_wasserstein_at_small_epsilon():
    with jax.enable_x64(True):
        prob = point_cloud_problem(jax.random.PRNGKey(0), 30, 40, epsilon_scale=0.002, dtype=jnp.float64)
        a, b, c = (np.asarray(v) for v in (prob.a, prob.b, prob.geom.cost_matrix))
        eps = float(prob.geom.epsilon)
        for mass in (0.3, 0.6, 0.9):
            out = partial.PartialTransport(mass=mass, sinkhorn=Sinkhorn(threshold=1e-9, max_iterations=30000))(prob)
            exact = pot.partial.partial_wasserstein(a, b, c, m=mass)
            assert bool(out.converged)
            np.testing.assert_allclose(out.transported_mass, mass, rtol=1e-7)
            rows, cols = out.marginals
            assert np.all(np.asarray(rows) <= a + 1e-9) and np.all(np.asarray(cols) <= b + 1e-9)
            lp = float(np.sum(exact * c))
            # Feasible plan => cost >= LP optimum; entropic gap <= eps * log(n m) * mass.
            assert lp - 1e-7 <= float(out.cost) <= lp + eps * np.log(30 * 40) * mass
            np.testing.assert_allclose(out.cost, lp, rtol=0.02 if mass > 0.5 else 0.15)


@pytest.mark.slow
def test_partial_mass_marginals_and_lp_bounds():
    prob = point_cloud_problem(jax.random.PRNGKey(2), 20, 30, epsilon_scale=0.05)
    a, b, c = (np.asarray(v, np.float64) for v in (prob.a, prob.b, prob.geom.cost_matrix))
    eps = float(prob.geom.epsilon)
    out = partial.PartialTransport(mass=0.5, sinkhorn=Sinkhorn(threshold=1e-6))(prob)
    assert bool(out.converged)
    np.testing.assert_allclose(out.transported_mass, 0.5, rtol=1e-4)
    rows, cols = out.marginals
    assert np.all(np.asarray(rows) <= a + 1e-5) and np.all(np.asarray(cols) <= b + 1e-5)
    # POT's exact partial OT (LP) bounds the entropic cost: lp <= cost <= lp + eps log(n m) mass.
    lp = float(np.sum(pot.partial.partial_wasserstein(a, b, c, m=0.5) * c))
    assert lp - 1e-5 <= float(out.cost) <= lp + eps * np.log(20 * 30) * 0.5
    # Splitting the dummy mass over two dummy points only adds a constant to the entropy: same plan.
    two = partial.PartialTransport(mass=0.5, n_dummies=2, sinkhorn=Sinkhorn(threshold=1e-6))(prob)
    np.testing.assert_allclose(two.matrix, out.matrix, atol=1e-6)


@pytest.mark.slow
def test_online_partial_matches_dense():
    # the extension on points (flag coordinate, DummyPointCost) streamed in row blocks, vs the dense one;
    # n_dummies = 2 and unequal masses exercise the dummy rows / columns
    prob = point_cloud_problem(jax.random.PRNGKey(2), 20, 30, epsilon_scale=0.05)
    prob = linear_problem.LinearProblem(prob.geom, prob.a, 1.2 * prob.b)
    dense = partial.PartialTransport(mass=0.5, n_dummies=2, sinkhorn=Sinkhorn(threshold=1e-6, online=False))(prob)
    online = partial.PartialTransport(mass=0.5, n_dummies=2,
                                      sinkhorn=Sinkhorn(threshold=1e-6, online=True, block_size=7))(prob)
    assert online.extended.online and not dense.extended.online
    assert online.status_name == dense.status_name == "converged"
    np.testing.assert_allclose(online.matrix, dense.matrix, atol=1e-6)
    np.testing.assert_allclose(online.cost, dense.cost, rtol=1e-5)
    np.testing.assert_allclose(online.transported_mass, 0.5, rtol=1e-4)
    np.testing.assert_allclose(online.transported_mass, jnp.sum(dense.matrix), rtol=1e-5)
    for mo, md in zip(online.marginals, dense.marginals):
        np.testing.assert_allclose(mo, md, atol=1e-6)


@pytest.mark.slow
def test_partial_nonconvergence_is_reported_not_nan():
    prob = point_cloud_problem(jax.random.PRNGKey(4), 20, 30, epsilon_scale=1e-3)
    out = partial.PartialTransport(mass=0.5, sinkhorn=Sinkhorn(threshold=1e-9, max_iterations=20))(prob)
    assert not bool(out.converged)
    assert np.all(np.isfinite(out.matrix)) and np.isfinite(out.cost)


# ------------------------------------------------------------------------------------------------ P^2OT
def _ppot_reference(cost, rho, eps, gamma, iters=20000):
    """rhfeiyang/PPOT SemiCurrSinkhornKnopp (kernel domain), transcribed in float64 numpy."""
    n, k = cost.shape
    q = np.exp(-np.concatenate([cost, np.zeros((n, 1))], axis=1) / eps)
    pa = np.full((n, 1), 1.0 / n)
    pb = np.full((k + 1, 1), rho / k)
    pb[-1] = 1 - rho
    b = np.full((k + 1, 1), 1.0 / (k + 1))
    fi = gamma / (gamma + eps)
    for _ in range(iters):
        last = b.copy()
        a = pa / (q @ b)
        b = pb / (q.T @ a)
        b[:-1] = b[:-1] ** fi
        if np.linalg.norm(b - last) < 1e-14:
            break
    return (a * q * b.T)[:, :-1]


def test_p2ot_matches_reference_scaling_and_kkt():
    logits = _logits()
    eps, rho, gamma = 0.5, 0.4, 1.0
    prob = partial.labelling_problem(logits, epsilon=eps)
    out = partial.P2OT(rho=rho, gamma=gamma, threshold=1e-6)(prob)
    assert bool(out.converged)
    ref = _ppot_reference(np.asarray(prob.geom.cost_matrix, np.float64), rho, eps, gamma)
    np.testing.assert_allclose(out.matrix, ref, atol=1e-6)
    # KKT: rows exact (real + dummy), dummy column exact, real columns fit rho b exp(-g / gamma).
    k = logits.shape[1]
    dummy = np.exp((np.asarray(out.f) + float(out.g[k])) / eps)
    np.testing.assert_allclose(np.asarray(out.matrix).sum(1) + dummy, 1 / 60, rtol=1e-4)
    np.testing.assert_allclose(dummy.sum(), 1 - rho, rtol=1e-4)
    np.testing.assert_allclose(out.cluster_masses, rho / k * np.exp(-np.asarray(out.g[:k]) / gamma), rtol=1e-4)
    np.testing.assert_allclose(out.matrix.sum(), rho, rtol=1e-4)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::UserWarning")  # POT: convergence / reg_type notes
def test_p2ot_hard_clusters_is_our_sinkhorn_and_pots_on_the_extended_problem():
    logits = _logits(seed=1)
    prob = partial.labelling_problem(logits, epsilon=0.2)
    out = partial.P2OT(rho=0.3, gamma=None, threshold=1e-7)(prob)
    ext_cost = jnp.concatenate([prob.geom.cost_matrix, jnp.zeros((60, 1))], axis=1)
    b_ext = jnp.concatenate([0.3 * prob.b, jnp.array([0.7])])
    ours = Sinkhorn(threshold=1e-7)(linear_problem.LinearProblem(
        geometry.Geometry(cost_matrix=ext_cost, epsilon=0.2), prob.a, b_ext))
    np.testing.assert_allclose(out.matrix, ours.matrix[:, :4], atol=1e-6)
    ref = pot.sinkhorn(np.asarray(prob.a, np.float64), np.asarray(b_ext, np.float64), np.asarray(ext_cost, np.float64),
                       0.2, method="sinkhorn_log", numItermax=3000, stopThr=1e-10)
    np.testing.assert_allclose(out.matrix, ref[:, :4], atol=1e-6)
    np.testing.assert_allclose(out.cluster_masses, 0.3 / 4, rtol=1e-4)


@pytest.mark.filterwarnings("ignore::UserWarning")  # POT: convergence / reg_type notes
def test_p2ot_full_mass_is_semi_relaxed_ot():
    logits = _logits(seed=2)
    eps, gamma = 0.2, 1.0
    prob = partial.labelling_problem(logits, epsilon=eps)
    out = partial.P2OT(rho=1.0, gamma=gamma, threshold=1e-7)(prob)
    # POT's semi-relaxed Sinkhorn: hard first marginal (reg_m = inf), KL weight gamma on the second.
    a, b, c = (np.asarray(v, np.float64) for v in (prob.a, prob.b, prob.geom.cost_matrix))
    ref = pot.unbalanced.sinkhorn_unbalanced(a, b, c, eps, (float("inf"), gamma), reg_type="entropy",
                                             numItermax=20000, stopThr=1e-13)
    np.testing.assert_allclose(out.matrix, ref, atol=1e-6)
    assert bool(out.selected.all())
    # The same problem in ott-jax's parameterisation.
    sr = partial.semi_relaxed_problem(prob.geom, prob.a, prob.b, rho_b=gamma)
    assert sr.tau_a == 1.0 and sr.tau_b == pytest.approx(gamma / (gamma + eps))


@pytest.mark.slow
def test_p2ot_selection_and_vmap_over_rho():
    logits = _logits(seed=3)
    prob = partial.labelling_problem(logits, epsilon=0.2)
    rhos = jnp.array([0.1, 0.5, 0.9])
    batched = jax.vmap(lambda r: partial.P2OT(rho=r)(prob).matrix)(rhos)
    for i, rho in enumerate(np.asarray(rhos)):
        single = partial.P2OT(rho=float(rho))(prob)
        np.testing.assert_allclose(batched[i], single.matrix, atol=1e-6)
        sel = np.asarray(single.selected)
        assert sel.sum() == int(np.floor(rho * 60 + 1e-6))
        w = np.asarray(single.sample_weights)
        assert w[sel].min() >= w[~sel].max() - 1e-6 if (~sel).any() else True
    # More transported mass -> every sample sends at least as much to real clusters.
    w = np.asarray(jax.vmap(lambda r: partial.P2OT(rho=r)(prob).sample_weights)(rhos))
    assert np.all(np.diff(w, axis=0) >= -1e-5)


def test_rho_schedule_ramp():
    t = np.arange(0, 101)
    rho = np.asarray(partial.rho_schedule(t, 100, rho_base=0.1, rho_upper=1.0))
    np.testing.assert_allclose(rho[0], 0.1 + 0.9 * np.exp(-5.0), rtol=1e-6)
    np.testing.assert_allclose(rho[-1], 1.0, rtol=1e-6)
    np.testing.assert_allclose(rho[50], 0.1 + 0.9 * np.exp(-1.25), rtol=1e-6)
    assert np.all(np.diff(rho) > 0)
    assert float(partial.rho_schedule(150, 100)) == pytest.approx(1.0)


def test_p2ot_nonconvergence_reported_not_nan():
    prob = partial.labelling_problem(_logits(scale=30.0), epsilon=1e-3)
    out = partial.P2OT(rho=0.5, threshold=1e-12, max_iterations=20)(prob)
    assert not bool(out.converged)
    assert np.all(np.isfinite(out.matrix)) and np.all(np.isfinite(out.pseudo_labels))


# ----------------------------------------------------------------------------------------------- SP^2OT
@pytest.mark.slow
def test_sp2ot_without_semantics_is_p2ot_and_mm_decreases_objective():
    logits = _logits(seed=4)
    prob = partial.labelling_problem(logits, epsilon=0.3)
    p2ot = partial.P2OT(rho=0.4, threshold=1e-6)
    feats = jax.random.normal(jax.random.PRNGKey(9), (60, 3))
    gram = feats @ feats.T / 60.0  # PSD => the semantic term is concave => MM descends
    plain = partial.SP2OT(p2ot, semantic_weight=0.0)(prob, gram)
    np.testing.assert_allclose(plain.matrix, p2ot(prob).matrix, atol=1e-6)
    one_step = partial.SP2OT(p2ot, semantic_weight=2.0, threshold=0.0, max_iterations=1)
    converged = partial.SP2OT(p2ot, semantic_weight=2.0, threshold=1e-5, max_iterations=30)
    first, last = one_step(prob, gram), converged(prob, gram)
    assert bool(last.converged)
    # The semantic term pulls similar samples together: the objective falls below the first MM step's.
    assert float(converged.objective(prob, gram, last)) <= float(converged.objective(prob, gram, first)) + 1e-7
    knn = partial.knn_similarity(feats, 5)
    np.testing.assert_allclose(knn.sum(1), 1.0, rtol=1e-6)
    assert float(jnp.trace(knn)) == 0.0


# ------------------------------------------------------------------------------------------------- SeLa
def _sela_reference(logits, lamb, iters=100000):
    """yukimasano/self-label optimize_L_sk, transcribed in float64 numpy (run to a tight tolerance)."""
    p = np.exp(logits - logits.max(1, keepdims=True))
    ps = (p / p.sum(1, keepdims=True)).T ** lamb  # K x N
    k, n = ps.shape
    c = np.full((n, 1), 1.0 / n)
    for _ in range(iters):
        r = (1.0 / k) / (ps @ c)
        c_new = (1.0 / n) / (r.T @ ps).T
        if np.sum(np.abs(c / c_new - 1)) < 1e-13:
            break
        c = c_new
    return np.argmax(ps * c.ravel() * r, axis=0)


def test_sela_matches_reference_labels_and_equipartitions():
    logits = np.asarray(_logits(seed=5, scale=1.0), np.float64)
    lamb = 10.0
    out = partial.SeLa()(partial.labelling_problem(jnp.asarray(logits, jnp.float32), epsilon=1.0 / lamb))
    assert bool(out.converged)
    ref = _sela_reference(logits, lamb)
    assert np.mean(np.asarray(out.labels) == ref) >= 0.98
    np.testing.assert_allclose(out.cluster_masses, 0.25, rtol=1e-4)


def test_sela_prevents_collapse_that_argmax_suffers():
    # A collapsing classifier: every sample prefers cluster 0.
    logits = _logits(seed=6, scale=0.5).at[:, 0].add(3.0)
    assert np.all(np.asarray(jnp.argmax(logits, 1)) == 0)
    out = partial.SeLa()(partial.labelling_problem(logits, epsilon=1.0 / 25))
    counts = np.bincount(np.asarray(out.labels), minlength=4)
    assert counts.min() >= 11 and counts.max() <= 19, counts  # equipartition: 15 each


# ------------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("make, name", [
    (lambda: partial.PartialTransport(mass=-0.1), "mass"),
    (lambda: partial.PartialTransport(mass=1.5)(point_cloud_problem(jax.random.PRNGKey(0), 5)), "mass"),
    (lambda: partial.PartialTransport(n_dummies=0), "n_dummies"),
    (lambda: partial.P2OT(rho=0.0), "rho"),
    (lambda: partial.P2OT(rho=1.2), "rho"),
    (lambda: partial.P2OT(gamma=-1.0), "gamma"),
    (lambda: partial.labelling_problem(jnp.ones(5), epsilon=0.1), "logits"),
    (lambda: partial.labelling_problem(jnp.ones((5, 3)), epsilon=0.0), "epsilon"),
    (lambda: partial.labelling_problem(jnp.ones((5, 3)), epsilon=0.1, prior=-jnp.ones(3)), "prior"),
    (lambda: partial.labelling_problem(jnp.full((5, 3), jnp.nan), epsilon=0.1), "logits"),
    (lambda: partial.rho_schedule(1, 10, rho_base=0.5, rho_upper=0.2), "rho_upper"),
    (lambda: partial.unbalanced_problem(geometry.Geometry(jnp.ones((2, 2)), epsilon=0.1), rho_a=-1.0), "rho_a"),
    (lambda: partial.SP2OT()(partial.labelling_problem(jnp.ones((5, 3)), epsilon=0.1), jnp.ones((4, 4))),
     "similarity"),
    (lambda: partial.knn_similarity(jnp.ones((5, 2)), 5), "k"),
])
def test_bad_input_names_the_argument(make, name):
    with pytest.raises(ValueError, match=name):
        make()


def test_bad_weights_rejected_by_problem_validation():
    geom = geometry.Geometry(jnp.ones((3, 3)), epsilon=0.1)
    prob = linear_problem.LinearProblem(geom, a=jnp.array([0.5, -0.1, 0.6]), b=jnp.ones(3) / 3)
    with pytest.raises(ValueError, match="a"):
        partial.PartialTransport(mass=0.2)(prob)
    with pytest.raises(ValueError, match="tau"):
        partial.PartialTransport(mass=0.2)(linear_problem.LinearProblem(geom, tau_b=0.5))
