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


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
@pytest.mark.parametrize("projector_bits", [4, 8, None])
def test_q_galore_projector_storage(projector_bits):
    """The basis is held as packed codes (4-bit: two per byte), the moments as int8; the first
    step equals GaLore's with Q-GaLore's Adam and the decoded basis."""
    params = {"w": jnp.zeros((64, 32))}
    tx = optim.q_galore(1e-2, rank=8, min_size=128, projector_bits=projector_bits,
                        weight_bits=None)
    state = tx.init(params)[0]
    stored = state.projectors["w"].projector
    if projector_bits is None:
        assert stored.basis.dtype == jnp.float32
    else:  # reference side: P is 32 x 8, one group of 256 entries
        assert stored.codes.dtype == jnp.uint8
        assert stored.codes.size == 256 * projector_bits // 8 and stored.scales.shape == (1,)
    assert state.inner_state.mu["w"].codes.dtype == jnp.int8
    g = {"w": jax.random.normal(jax.random.PRNGKey(0), (64, 32))}
    u, new = tx.update(g, tx.init(params), params)
    proj = optim.Projector("svd", 8, transposed=True, bits=projector_bits)
    basis = proj.basis(new[0].projectors["w"].projector, 32)
    if projector_bits is not None:  # the decoded basis is the SVD basis to half a grid step
        exact = proj.basis(optim.BasisState(jnp.linalg.svd(g["w"])[2][:8].T), 32)
        step = float(jnp.max(exact) - jnp.min(exact)) / (2 ** projector_bits - 1)
        assert float(jnp.max(jnp.abs(basis - exact))) <= 0.5 * step * (1 + 1e-5)
    low = g["w"] @ basis
    adam, _ = optax.adam(1e-2, eps=1e-8).update(low, optax.adam(1e-2).init(low))
    np.testing.assert_allclose(u["w"], 0.25 * adam @ basis.T, rtol=1e-4, atol=1e-7)


def test_minmax_codes_round_trip_and_match_the_official_grid():
    """Encode/decode is (q − z)·s of the official min-max rule, for packed 4-bit and 8-bit codes,
    group sizes that divide the size, -1 (per row) and one that does not (padded)."""
    from jaxopt_lab.optim import minmax
    x = np.asarray(jax.random.normal(jax.random.PRNGKey(1), (6, 10)), np.float64)
    for bits, group in ((4, 4), (8, -1), (4, 7)):
        with jax.enable_x64(True):
            codec = jax.jit(lambda x: minmax.minmax_decode(minmax.minmax_encode(x, bits, group),
                                                           x.shape, bits, group))
            got = np.asarray(codec(jnp.asarray(x)))
            fake = np.asarray(jax.jit(lambda x: minmax.fake_quantize(x, bits, group))(x))
        width = x.shape[1] if group == -1 else group
        flat = np.concatenate([x.reshape(-1), np.full(-x.size % width, x.reshape(-1)[-1])])
        w = flat.reshape(-1, width)
        top = 2 ** bits - 1
        s = np.maximum(w.max(1, keepdims=True) - w.min(1, keepdims=True), 1e-5) / top
        z = np.clip(-np.round(w.min(1, keepdims=True) / s), 0, top)
        want = ((np.clip(np.round(w / s) + z, 0, top) - z) * s).reshape(-1)[:x.size]
        # XLA may fold the division by 2ᵇ − 1 into a product: agreement to an ulp
        np.testing.assert_allclose(got, want.reshape(x.shape), rtol=1e-15, atol=1e-15)
        np.testing.assert_array_equal(fake, got)


@pytest.mark.slow
def test_stochastic_rounding_is_unbiased_and_on_the_grid():
    """E[SR(w)] = w inside the clip range: the mean over 4000 draws is within 4 standard errors of
    w for every entry but each group's minimum and maximum (which the official rule may round
    past the clip [0, 2ᵇ − 1] of the codes, and clips), and each draw is a neighbouring grid
    point."""
    from jaxopt_lab.optim import minmax
    w = jax.random.uniform(jax.random.PRNGKey(2), (4, 16), minval=-1.0, maxval=1.0)
    keys = jax.random.split(jax.random.PRNGKey(3), 4000)
    draws = np.asarray(jax.jit(jax.vmap(lambda k: minmax.fake_quantize(w, 8, 16, k)))(keys))
    w = np.asarray(w)
    s = (w.max(1, keepdims=True) - w.min(1, keepdims=True)) / 255
    assert np.all(np.abs(draws - w) <= s * (1 + 1e-5))               # a neighbouring grid point
    inner = (w > w.min(1, keepdims=True)) & (w < w.max(1, keepdims=True))
    stderr = s / 2 / np.sqrt(len(keys))                               # rounding noise <= s/2
    assert np.all((np.abs(draws.mean(0) - w) <= 4 * stderr + 1e-7)[inner])
    assert (draws != draws[0]).any()                                  # it is stochastic


def test_round_weights_leaves_params_on_their_grid():
    """After optax.apply_updates the selected weights sit on the 8-bit grid of w + u: (q − z)·s
    with integer codes q in [0, 255] and s, z from the groups of w + u; unselected leaves get
    the plain update; a fresh key per step."""
    params = {"w": jax.random.normal(jax.random.PRNGKey(4), (32, 16)),
              "b": jax.random.normal(jax.random.PRNGKey(5), (16,))}
    g = jax.tree.map(lambda x: 1e-3 * jnp.ones_like(x), params)
    tx = optim.round_weights(8, 64, mask={"w": True, "b": False})
    state = tx.init(params)
    step = jax.jit(tx.update)
    u1, state = step(g, state, params)
    u2, state = step(g, state, params)
    np.testing.assert_array_equal(u1["b"], g["b"])
    new = optax.apply_updates(params, u1)
    target = np.asarray(params["w"] + g["w"]).reshape(-1, 64)
    s = (target.max(1, keepdims=True) - target.min(1, keepdims=True)) / 255
    z = np.clip(-np.round(target.min(1, keepdims=True) / s), 0, 255)
    q = np.asarray(new["w"]).reshape(-1, 64) / s + z
    np.testing.assert_allclose(q, np.round(q), atol=1e-3)
    assert q.min() > -1e-3 and q.max() < 255 + 1e-3
    assert not np.array_equal(u1["w"], u2["w"]) and int(state.count) == 2
    with pytest.raises(ValueError, match="needs params"):
        tx.update(g, state)


def test_bad_input():
    with pytest.raises(ValueError, match="projector_bits"):
        optim.q_galore(1e-3, projector_bits=9)
    with pytest.raises(ValueError, match="weight_group_size"):
        optim.q_galore(1e-3, weight_group_size=0)
    with pytest.raises(ValueError, match="cos_threshold"):
        optim.q_galore(1e-3, cos_threshold=1.5)
    with pytest.raises(ValueError, match="projector"):
        optim.q_galore(1e-3, projector="dct")
    with pytest.raises(ValueError, match="beta"):
        optim.smmf(1e-3, beta=1.5)
    with pytest.raises(ValueError, match="reduce"):
        optim.subset_norm(1e-3, reduce="max")
    with pytest.raises(ValueError, match="block_size"):
        optim.adam_8bit(1e-3, block_size=0)
    with pytest.raises(ValueError, match="rank"):
        optim.subset_norm(1e-3, rank=0)
