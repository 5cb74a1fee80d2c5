"""SMMF, Subset-Norm + Subspace-Momentum and the 8-bit state wrapper, against numpy re-derivations
of the papers' rules and optax.adam."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxopt_lab import optim
from jaxopt_lab.optim import factored
from jaxopt_lab.optim.memory import most_square


def _numpy_smmf(grads, beta=0.9, eps=1e-8, decay_rate=-0.5, growth_rate=0.999):
    """SMMF (arXiv:2412.08894, its update rule) in numpy, on an already square-matricized gradient sequence."""
    m_row = m_col = v_row = v_col = None
    sign = None
    out = []
    for t, g in enumerate(grads, start=1):
        beta_m = beta * growth_rate ** (t - 1)
        beta_v = 1.0 - t ** decay_rate
        if m_row is None:
            m_prev = v_prev = np.zeros_like(g)
        else:
            m_prev = np.where(sign, 1.0, -1.0) * np.outer(m_row, m_col)
            v_prev = np.outer(v_row, v_col)
        m = beta_m * m_prev + (1 - beta_m) * g
        v = beta_v * v_prev + (1 - beta_v) * g * g
        out.append(m / (np.sqrt(v) + eps))
        a = np.abs(m)
        m_row, m_col = a.sum(1), a.sum(0) / a.sum()
        v_row, v_col = v.sum(1), v.sum(0) / v.sum()
        sign = m > 0
    return out


def test_smmf_matches_numpy_over_three_steps():
    rng = np.random.default_rng(0)
    grads = [rng.normal(size=(6, 4)).astype(np.float32) for _ in range(3)]
    tx = factored.scale_by_smmf()
    state = tx.init({"w": jnp.zeros((6, 4))})  # 24 entries -> most-square 6 x 4 (rows: larger)
    expected = _numpy_smmf([g.reshape(6, 4).astype(np.float64) for g in grads])
    for g, e in zip(grads, expected):
        u, state = tx.update({"w": jnp.asarray(g)}, state)
        np.testing.assert_allclose(u["w"], e.reshape(6, 4), rtol=2e-4, atol=1e-5)
    assert state.moments["w"].m_sign.dtype == jnp.uint8
    assert state.moments["w"].m_sign.shape == (3,)  # 24 sign bits in 3 bytes


def test_most_square():
    assert most_square(24) == (4, 6)
    assert most_square(4096 * 11008) == (5504, 8192)  # the SMMF paper's example (arXiv:2412.08894)
    assert most_square(7) == (1, 7)


def _numpy_subset_norm(grads, basis, b1=0.9, b2=0.999, eps=1e-6):
    """SN + SM (arXiv:2411.07120) for a tall matrix whose short side (columns) is projected by the
    fixed ``basis``; v per long-side index (row) sums over the short side."""
    m = np.zeros((basis.shape[1], grads[0].shape[0]))
    v = np.zeros(grads[0].shape[0])
    out = []
    for t, g in enumerate(grads, start=1):
        gc = g.T                                   # (short, long)
        low = basis.T @ gc
        m = b1 * m + (1 - b1) * low
        v = b2 * v + (1 - b2) * np.sum(gc * gc, axis=0)
        numerator = basis @ m + (gc - basis @ low)
        step = np.sqrt(1 - b2 ** t) / (1 - b1 ** t)  # timmytonga/sn-sm GenericOptim.py L127-130
        out.append((step * numerator / (np.sqrt(v) + eps)).T)
    return out


def test_subset_norm_subspace_momentum_matches_numpy():
    rng = np.random.default_rng(1)
    grads = [rng.normal(size=(12, 6)).astype(np.float32) for _ in range(3)]
    tx = factored.scale_by_subset_norm(rank=2, update_proj_gap=100)
    state = tx.init({"w": jnp.zeros((12, 6))})
    outs = []
    for g in grads:
        u, state = tx.update({"w": jnp.asarray(g)}, state)
        outs.append(np.asarray(u["w"]))
    basis = np.asarray(state.projectors["w"].basis, np.float64)  # refreshed at step 0 only
    exact = np.linalg.svd(grads[0].T.astype(np.float64), full_matrices=False)[0][:, :2]
    assert np.linalg.svd(exact.T @ basis, compute_uv=False).min() > 0.999
    for ours, e in zip(outs, _numpy_subset_norm([g.astype(np.float64) for g in grads], basis)):
        np.testing.assert_allclose(ours, e, rtol=1e-4, atol=1e-5)
    assert state.nu["w"].shape == (12,) and state.momentum["w"].shape == (2, 12)


def test_subset_norm_flat_leaf_uses_sqrt_d_subsets():
    g = jnp.arange(1.0, 13.0)  # d = 12: subsets of 3 (largest divisor <= √12)
    tx = factored.scale_by_subset_norm(rank=None, b1=0.0, b2=0.5)
    u, state = tx.update({"b": g}, tx.init({"b": g}))
    sums = np.asarray(g).reshape(4, 3) ** 2
    v = 0.5 * sums.sum(1)
    expected = np.sqrt(0.5) * np.asarray(g).reshape(4, 3) / (np.sqrt(v)[:, None] + 1e-6)
    np.testing.assert_allclose(u["b"], expected.reshape(-1), rtol=1e-5)
    assert state.nu["b"].shape == (4,)


def test_quantized_state_round_trip_error():
    x = jax.random.normal(jax.random.PRNGKey(0), (1000,)) * jnp.logspace(-4, 0, 1000)
    linear = factored._decode(factored._encode(x, 64, False), x, False)
    companded = factored._decode(factored._encode(x, 64, True), x, True)
    blocks = np.pad(np.abs(np.asarray(x)), (0, 24)).reshape(-1, 64).max(1)
    bound = np.repeat(blocks, 64)[:1000] / 127 * 0.5 + 1e-12
    assert np.all(np.abs(np.asarray(linear - x)) <= bound * 1.0001)
    small = np.abs(np.asarray(x)) < 0.01 * np.repeat(blocks, 64)[:1000]
    # companding resolves entries far below the block maximum better than the linear code
    assert np.abs(companded - x)[small].mean() < 0.5 * np.abs(linear - x)[small].mean()


def test_adam_8bit_tracks_optax_adam():
    params = {"w": jnp.zeros((64, 32)), "b": jnp.zeros(8)}
    tx8 = optim.adam_8bit(1e-2, min_size=256)
    ref = optax.adam(1e-2)
    s8, sr = tx8.init(params), ref.init(params)
    leaves = jax.tree.leaves(s8)
    assert any(x.dtype == jnp.int8 for x in leaves)
    for i in range(4):
        g = {"w": jax.random.normal(jax.random.PRNGKey(i), (64, 32)), "b": jnp.ones(8)}
        u8, s8 = tx8.update(g, s8, params)
        ur, sr = ref.update(g, sr, params)
        if i == 0:  # the first step is computed from the exact zero state
            np.testing.assert_allclose(u8["w"], ur["w"], rtol=1e-6)
        np.testing.assert_allclose(u8["b"], ur["b"], rtol=1e-6)  # small leaf: kept float32
    rel = jnp.linalg.norm(u8["w"] - ur["w"]) / jnp.linalg.norm(ur["w"])
    assert rel < 0.05


@pytest.mark.parametrize("quantize_projector", [True, False])
def test_q_galore_projector_dtype(quantize_projector):
    params = {"w": jnp.zeros((64, 32))}
    tx = optim.q_galore(1e-2, rank=8, min_size=128, quantize_projector=quantize_projector)
    state = tx.init(params)[0]
    basis = state.projectors["w"].basis
    if quantize_projector:
        assert isinstance(basis, factored.Quantized) and basis.codes.dtype == jnp.int8
    else:
        assert basis.dtype == jnp.float32
    assert state.inner_state.mu["w"].codes.dtype == jnp.int8
    g = {"w": jax.random.normal(jax.random.PRNGKey(0), (64, 32))}
    u, _ = tx.update(g, tx.init(params), params)
    ref, _ = optim.galore(1e-2, rank=8).update(g, optim.galore(1e-2, rank=8).init(params), params)
    np.testing.assert_allclose(u["w"], ref["w"], rtol=1e-5, atol=1e-7)  # exact first step


def test_bad_input():
    with pytest.raises(ValueError, match="beta"):
        optim.smmf(1e-3, beta=1.5)
    with pytest.raises(ValueError, match="reduce"):
        optim.subset_norm(1e-3, reduce="max")
    with pytest.raises(ValueError, match="block_size"):
        optim.adam_8bit(1e-3, block_size=0)
    with pytest.raises(ValueError, match="rank"):
        optim.subset_norm(1e-3, rank=0)
