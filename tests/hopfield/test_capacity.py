"""Binary memories: asynchronous dynamics vs a numpy reference, equivalences, masks, the protocol."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxopt_lab import hopfield

# jitted once per (static arguments, shapes): eager calls would retrace the loops every time
_dense = jax.jit(hopfield.dense_retrieve, static_argnames=("kind", "power", "max_sweeps"))
_classical = jax.jit(hopfield.classical_retrieve, static_argnames=("max_sweeps",))


def _numpy_async(key, sigma, patterns, f, max_sweeps):
    """Reference: coordinate-by-coordinate sign update of sum_mu F(overlaps) in float64, same orders."""
    sigma, patterns = np.array(sigma, np.float64), np.asarray(patterns, np.float64)
    d = sigma.shape[-1]
    for sweep in range(max_sweeps):
        order = np.asarray(jax.random.permutation(jax.random.fold_in(key, sweep), d))
        flips = 0
        for j in order:
            rest = patterns @ sigma - patterns[:, j] * sigma[j]
            delta = np.sum(f(rest + patterns[:, j]) - f(rest - patterns[:, j]))
            new = 1.0 if delta > 0 else (-1.0 if delta < 0 else sigma[j])
            flips += new != sigma[j]
            sigma[j] = new
        if flips == 0:
            return sigma, sweep + 1
    return sigma, max_sweeps


def _setup(seed=0, n=6, d=16, b=5, c=0.25):
    kp, kc = jax.random.split(jax.random.PRNGKey(seed))
    patterns = hopfield.random_binary_patterns(kp, n, d)
    return patterns, hopfield.corrupt(kc, patterns[:b], c)


@pytest.mark.parametrize("kind, power, f", [
    ("polynomial", 2, lambda x: x**2),
    pytest.param("polynomial", 3, lambda x: x**3, marks=pytest.mark.slow),
    pytest.param("rectified_polynomial", 3, lambda x: np.maximum(x, 0) ** 3, marks=pytest.mark.slow),
    ("exponential", 1, np.exp),
])
def test_dense_retrieve_matches_numpy_reference(kind, power, f):
    patterns, queries = _setup(1, n=12, d=16, c=0.3)
    key = jax.random.PRNGKey(7)
    out = _dense(key, queries, patterns, kind=kind, power=power, max_sweeps=10)
    for i in range(queries.shape[0]):
        ref, sweeps = _numpy_async(key, queries[i], patterns, f, 10)
        np.testing.assert_array_equal(out.state[i], ref)
        assert int(out.n_iters[i]) == sweeps


@pytest.mark.slow
def test_classical_equals_dense_power_two_and_hebbian_fixed_points():
    patterns, queries = _setup(2, n=20, d=32, b=8, c=0.2)
    key = jax.random.PRNGKey(3)
    classical = _classical(key, queries, patterns, max_sweeps=10)
    dense = _dense(key, queries, patterns, kind="polynomial", power=2, max_sweeps=10)
    np.testing.assert_array_equal(classical.state, dense.state)
    # a converged state is a fixed point of sign(W sigma) with the Hebbian W (ties aside)
    w = np.asarray(hopfield.hebbian_weights(patterns))
    for s, ok in zip(np.asarray(classical.state), np.asarray(classical.converged)):
        field = w @ s
        assert ok and np.all((field == 0) | (np.sign(field) == s))


@pytest.mark.slow
def test_energy_never_increases_and_low_load_patterns_are_fixed_points():
    patterns, queries = _setup(3, n=4, d=32, b=4, c=0.15)
    key = jax.random.PRNGKey(0)
    for kind, power in (("polynomial", 2), ("polynomial", 3), ("exponential", 1)):
        out = _dense(key, queries, patterns, kind=kind, power=power)
        assert np.all(np.asarray(hopfield.dense_energy(out.state, patterns, kind, power))
                      <= np.asarray(hopfield.dense_energy(queries, patterns, kind, power)) + 1e-3)
        np.testing.assert_array_equal(out.state, patterns)  # 4 patterns in d = 32: all retrieved
        assert np.all(np.asarray(hopfield.overlap(out.state, patterns)) == 1.0)


@pytest.mark.slow
def test_mask_equals_the_subset():
    patterns, queries = _setup(4, n=10, d=16, b=4, c=0.2)
    key = jax.random.PRNGKey(1)
    mask = jnp.arange(10) < 6
    for kind in ("polynomial", "exponential"):
        a = _dense(key, queries, patterns, kind=kind, mask=mask)
        b = _dense(key, queries, patterns[:6], kind=kind)
        np.testing.assert_array_equal(a.state, b.state)


def test_corrupt_flips_exactly_the_requested_fraction():
    patterns = hopfield.random_binary_patterns(jax.random.PRNGKey(0), 50, 40)
    noisy = hopfield.corrupt(jax.random.PRNGKey(1), patterns, 0.1)
    np.testing.assert_array_equal(np.sum(np.asarray(noisy != patterns), axis=-1), 4)
    np.testing.assert_allclose(hopfield.overlap(noisy, patterns), 0.8)


def test_capacity_curve_shapes_and_capacity_from_curve():
    res = hopfield.binary_capacity_curve(jax.random.PRNGKey(0), "mchn", 16, [2, 4, 64], num_queries=8,
                                         beta=4.0, one_step=True)
    assert set(res) == {"success", "overlap", "iterations"} and res["success"].shape == (3,)
    assert float(res["success"][0]) == 1.0 and np.all(np.asarray(res["iterations"]) == 1.0)
    assert hopfield.capacity_from_curve([2, 4, 8, 16], [1.0, 0.95, 0.5, 0.95], 0.9) == 4
    assert hopfield.capacity_from_curve([2, 4], [0.1, 1.0], 0.9) == 0


def test_bad_input():
    patterns, queries = _setup()
    key = jax.random.PRNGKey(0)
    with pytest.raises(ValueError, match="kind must be one of"):
        hopfield.dense_retrieve(key, queries, patterns, kind="cubic")
    with pytest.raises(ValueError, match="power must be an int >= 1"):
        hopfield.dense_retrieve(key, queries, patterns, power=0)
    with pytest.raises(ValueError, match="queries has shape"):
        hopfield.dense_retrieve(key, queries[:, :3], patterns)
    with pytest.raises(ValueError, match="empty memory"):
        hopfield.classical_retrieve(key, queries, patterns[:0])
    with pytest.raises(ValueError, match="fraction must be in"):
        hopfield.corrupt(key, patterns, 1.5)
    with pytest.raises(ValueError, match="memory must be one of"):
        hopfield.binary_capacity_curve(key, "hebb", 8, [2])
    with pytest.raises(ValueError, match="sizes must be"):
        hopfield.binary_capacity_curve(key, "classical", 8, [])
    with pytest.raises(ValueError, match="beta must be > 0"):
        hopfield.binary_capacity_curve(key, "mchn", 8, [2], beta=0.0)
