"""Retrieval solver: energy descent, attention equivalence, per-query stopping, implicit gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxopt_lab import hopfield


def _memory(seed=0, n=16, d=8, b=6, noise=0.5):
    kx, kq = jax.random.split(jax.random.PRNGKey(seed))
    X = jax.random.normal(kx, (n, d))
    return X, X[:b] + noise * jax.random.normal(kq, (b, d))


@pytest.mark.parametrize("energy", ["mchn", "distance"])
def test_energy_never_increases(energy):
    X, Q = _memory(1, b=16, noise=1.0)
    betas = jnp.array([0.1, 0.5, 4.0])  # beta is a pytree child: one compiled call for all three
    run = jax.jit(jax.vmap(lambda b: hopfield.HopfieldRetrieval(beta=b, threshold=1e-6, max_iterations=30,
                                                                energy=energy)(Q, X)))
    outs = run(betas)
    ref = hopfield.mchn_energy if energy == "mchn" else hopfield.distance_energy
    for j, beta in enumerate(betas.tolist()):
        e = np.asarray(outs.energies[j])
        steps = np.diff(e, axis=-1)
        steps = steps[np.isfinite(steps)]
        assert steps.size > 0 and np.all(steps <= 1e-5 * (1 + np.abs(e[np.isfinite(e)]).max()))
        # the trace is E(xi_0..xi_T): its first entry is the energy of the query, its last of the state
        np.testing.assert_allclose(e[:, 0], ref(Q, X, beta), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(outs.energy[j], ref(outs.state[j], X, beta), rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_one_update_is_softmax_attention():
    X, Q = _memory(2)
    beta = 0.8
    out = hopfield.HopfieldRetrieval(beta=beta, threshold=0.0, max_iterations=1)(Q, X)
    # reference we did not write: jax.nn.dot_product_attention with K = V = X and scale beta
    ref = jax.nn.dot_product_attention(Q[None, :, None], X[None, :, None], X[None, :, None], scale=beta)
    np.testing.assert_allclose(out.state, ref[0, :, 0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out.state, jax.nn.softmax(beta * Q @ X.T) @ X, rtol=1e-5, atol=1e-6)
    assert np.all(np.asarray(out.n_iters) == 1)


def test_hopfield_update_with_values_and_mask_is_attention():
    kq, kk, kv, km = jax.random.split(jax.random.PRNGKey(3), 4)
    q, k, v = (jax.random.normal(kq, (2, 5, 4)), jax.random.normal(kk, (2, 7, 4)),
               jax.random.normal(kv, (2, 7, 4)))
    mask = jax.random.bernoulli(km, 0.7, (2, 5, 7)).at[..., 0].set(True)
    ref = jax.nn.dot_product_attention(q[:, :, None], k[:, :, None], v[:, :, None], scale=0.6,
                                       mask=mask[:, None])[:, :, 0]
    np.testing.assert_allclose(hopfield.hopfield_update(q, k, v, beta=0.6, mask=mask), ref,
                               rtol=1e-5, atol=1e-6)


def test_per_query_stopping_matches_a_loop_over_queries():
    X, Q = _memory(4, b=5, noise=0.8)
    solver = hopfield.HopfieldRetrieval(beta=1.0, threshold=1e-5, max_iterations=60)
    run = jax.jit(lambda q: solver(q, X))
    batched = run(Q)
    assert len(set(np.asarray(batched.n_iters).tolist())) > 1  # queries stop at their own step
    for i in range(Q.shape[0]):
        single = run(Q[i])
        assert int(single.n_iters) == int(batched.n_iters[i])
        np.testing.assert_allclose(single.state, batched.state[i], rtol=1e-5, atol=1e-6)
    assert np.all(np.asarray(batched.converged))


@pytest.mark.slow
def test_well_separated_patterns_are_retrieved_in_one_step():
    # N = 64 random Gaussian patterns of norm ~sqrt(64): separation ~d, so one step at beta = 1 lands
    # exponentially close to the stored pattern (Ramsauer et al., theorem 4).
    kx, kq = jax.random.split(jax.random.PRNGKey(5))
    X = jax.random.normal(kx, (64, 64))
    Q = X + 0.3 * jax.random.normal(kq, X.shape)
    out = hopfield.HopfieldRetrieval(beta=1.0, threshold=0.0, max_iterations=1)(Q, X)
    assert float(jnp.max(jnp.linalg.norm(out.state - X, axis=-1))) < 1e-3


@pytest.mark.slow
def test_mask_equals_the_subset():
    X, Q = _memory(6)
    mask = jnp.arange(X.shape[0]) < 10
    solver = hopfield.HopfieldRetrieval(beta=0.7, threshold=1e-6, max_iterations=40)
    masked, subset = jax.jit(solver)(Q, X, mask), jax.jit(solver)(Q, X[:10])
    np.testing.assert_allclose(masked.state, subset.state, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(masked.energies[:, :3], subset.energies[:, :3], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(masked.energy, subset.energy, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_solver_is_a_pytree_and_vmaps_over_beta():
    X, Q = _memory(7)
    solver = hopfield.HopfieldRetrieval(beta=0.5, threshold=1e-5, max_iterations=20)
    leaves, treedef = jax.tree.flatten(solver)
    assert len(leaves) == 2  # beta and threshold are children; the loop bounds are static
    run = jax.vmap(lambda b: hopfield.HopfieldRetrieval(beta=b, threshold=1e-5, max_iterations=20)(Q, X).state)
    states = run(jnp.array([0.5, 2.0]))
    np.testing.assert_allclose(states[0], solver(Q, X).state, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("energy", ["mchn", "distance"])
def test_implicit_gradient_matches_unrolled_and_finite_differences(energy):
    with jax.enable_x64(True):
        kx, kq, kw = jax.random.split(jax.random.PRNGKey(8), 3)
        X = jax.random.normal(kx, (10, 5), dtype=jnp.float64)
        Q = X[:3] + 0.4 * jax.random.normal(kq, (3, 5), dtype=jnp.float64)
        w = jax.random.normal(kw, (3, 5), dtype=jnp.float64)

        @jax.jit
        def loss_pair(X, beta):
            return loss(X, beta, "implicit")

        def loss(X, beta, differentiation):
            solver = hopfield.HopfieldRetrieval(beta=beta, threshold=1e-13, max_iterations=400,
                                                energy=energy, differentiation=differentiation)
            return jnp.sum(w * jnp.tanh(solver(Q, X).state))

        beta = 0.6
        g_imp = jax.jit(jax.grad(loss, argnums=(0, 1)), static_argnums=2)(X, beta, "implicit")
        g_unr = jax.jit(jax.grad(loss, argnums=(0, 1)), static_argnums=2)(X, beta, "unroll")
        np.testing.assert_allclose(g_imp[0], g_unr[0], rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(g_imp[1], g_unr[1], rtol=1e-6, atol=1e-8)
        # central finite differences along random directions (patterns) and in beta
        eps = 1e-6
        for seed in range(3):
            direction = jax.random.normal(jax.random.PRNGKey(100 + seed), X.shape, dtype=jnp.float64)
            fd = loss_pair(X + eps * direction, beta) - loss_pair(X - eps * direction, beta)
            np.testing.assert_allclose(jnp.sum(g_imp[0] * direction), fd / (2 * eps), rtol=1e-5, atol=1e-7)
        fd_beta = (loss_pair(X, beta + eps) - loss_pair(X, beta - eps)) / (2 * eps)
        np.testing.assert_allclose(g_imp[1], fd_beta, rtol=1e-5, atol=1e-7)


def test_implicit_gradient_of_queries_is_zero_and_unrolled_one_vanishes():
    X, Q = _memory(9, b=2, noise=0.3)
    solver = lambda mode: hopfield.HopfieldRetrieval(beta=1.0, threshold=1e-7, max_iterations=200,
                                                     differentiation=mode)
    g_imp = jax.jit(jax.grad(lambda q: jnp.sum(solver("implicit")(q, X).state)))(Q)
    g_unr = jax.jit(jax.grad(lambda q: jnp.sum(solver("unroll")(q, X).state)))(Q)
    assert np.all(np.asarray(g_imp) == 0)
    assert float(jnp.max(jnp.abs(g_unr))) < 1e-4  # the converged map forgets its start


def test_bad_input():
    X, Q = _memory()
    with pytest.raises(ValueError, match="beta must be > 0"):
        hopfield.HopfieldRetrieval(beta=0.0)
    with pytest.raises(ValueError, match="beta must be > 0"):
        hopfield.hopfield_update(Q, X, beta=-1.0)
    with pytest.raises(ValueError, match="queries has shape"):
        hopfield.HopfieldRetrieval()(Q[:, :3], X)
    with pytest.raises(ValueError, match="empty memory"):
        hopfield.HopfieldRetrieval()(Q, X[:0])
    with pytest.raises(ValueError, match="keys must hold at least one"):
        hopfield.hopfield_update(Q, X[:0], beta=1.0)
    with pytest.raises(ValueError, match="energy must be one of"):
        hopfield.HopfieldRetrieval(energy="cosine")
    with pytest.raises(ValueError, match="max_iterations"):
        hopfield.HopfieldRetrieval(max_iterations=0)
    with pytest.raises(ValueError, match="mask has shape"):
        hopfield.HopfieldRetrieval()(Q, X, jnp.ones((3,), bool))
