"""Method-specific tests of the sharpness family (jaxopt_lab/optim/sharpness.py, curvature.py).

References we did not write: closed-form gradients of quadratics (numpy), optax.contrib.sam, the
double-backprop gradient of the gradient-regularized loss (jax.grad), numpy's eigvalsh, and numpy
transcriptions of the reference implementations (xxgege/GAM, big_vision's GSAM).

A useful probe: with ``grad_fn(w) = w`` (the gradient of ``||w||^2 / 2``) the SAM-type direction is
``w + epsilon``, so ``direction - w`` reads off the perturbation a method took.
"""

import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
import optax.contrib
import pytest

from jaxopt_lab import optim
from jaxopt_lab.optim import sharpness as sh

A = np.diag([1.0, 3.0, 10.0]).astype(np.float32)
W0 = np.array([1.0, -2.0, 0.5], np.float32)


def quadratic(w):
    return 0.5 * w @ (jnp.asarray(A) @ w)


GRAD = jax.grad(quadratic)


def identity_grad(w):  # the gradient of ||w||^2 / 2
    return w


def step(tx, w=W0, grads=None, grad_fn=GRAD, state=None, **extra):
    w = jax.tree.map(jnp.asarray, w)
    grads = grad_fn(w) if grads is None else grads
    state = tx.init(w) if state is None else state
    return tx.update(grads, state, w, grad_fn=grad_fn, **extra)


def perturbation(transform, w, g):
    direction, _ = step(transform, w=w, grads=g, grad_fn=identity_grad)
    return jax.tree.map(lambda d, p: np.asarray(d) - np.asarray(p), direction, w)


# ------------------------------------------------------------------------------------------------
# SAM


def test_sam_first_step_closed_form():
    lr, rho = 0.1, 0.05
    g = A @ W0
    expected = W0 - lr * (A @ (W0 + rho * g / np.linalg.norm(g)))
    updates, _ = step(optim.sam(lr, rho))
    np.testing.assert_allclose(W0 + np.asarray(updates), expected, rtol=1e-6)


def test_sam_rho_schedule_is_evaluated_at_the_step_count():
    rho = optax.linear_schedule(0.0, 0.3, 3)
    tx = sh.scale_by_sam(rho, eps=0.0)
    g = jnp.asarray(A @ W0)
    state = tx.init(jnp.asarray(W0))
    for k in range(3):
        direction, state = tx.update(g, state, jnp.asarray(W0), grad_fn=identity_grad)
        eps = np.asarray(direction) - W0
        np.testing.assert_allclose(np.linalg.norm(eps), 0.1 * k, atol=1e-6)


@pytest.mark.parametrize("base", [None, "adam"])
def test_sam_matches_optax_contrib_sam(base):
    """Ours == optax.contrib.sam(opt, chain(normalize(), sgd(rho)), sync_period=2, opaque_mode)."""
    lr, rho = 0.05, 0.1
    ours = optim.sam(lr, rho, base=base, eps=0.0)
    outer = optax.sgd(lr) if base is None else optax.adam(lr)
    theirs = optax.contrib.sam(outer, optax.chain(optax.contrib.normalize(), optax.sgd(rho)),
                               sync_period=2, opaque_mode=True)
    w_ours = w_theirs = jnp.asarray(W0)
    s_ours, s_theirs = ours.init(w_ours), theirs.init(w_theirs)
    for _ in range(5):
        u, s_ours = ours.update(GRAD(w_ours), s_ours, w_ours, grad_fn=GRAD)
        w_ours = optax.apply_updates(w_ours, u)
        u, s_theirs = theirs.update(GRAD(w_theirs), s_theirs, w_theirs,
                                    grad_fn=lambda p, _: GRAD(p))
        w_theirs = optax.apply_updates(w_theirs, u)
        np.testing.assert_allclose(w_ours, w_theirs, rtol=1e-6, atol=1e-7)


def test_scale_by_sam_composes_first_in_a_chain():
    tx = optax.chain(sh.scale_by_sam(0.05), optax.adam(1e-2))
    ref = optim.sam(1e-2, 0.05, base=optax.scale_by_adam())
    w = jnp.asarray(W0)
    np.testing.assert_allclose(step(tx)[0], step(ref)[0], rtol=1e-6)
    assert w.shape == step(tx)[0].shape


@pytest.mark.parametrize("name", optim.names(family="sharpness"))
def test_no_nan_when_gradient_is_exactly_zero(name):
    """At a stationary point every method returns a zero direction (optax.contrib.normalize: NaN)."""
    kwargs = {"num_chunks": 1} if name == "m_sam" else {}
    tx = optim.get(name, learning_rate=0.1, **kwargs)
    w = jnp.zeros(3)
    updates, _ = tx.update(jnp.zeros(3), tx.init(w), w, grad_fn=GRAD)
    assert np.all(np.isfinite(updates)) and np.all(np.asarray(updates) == 0)
    # the bug we avoid, in the optax version pinned here
    nan_updates, _ = optax.contrib.normalize().update(jnp.zeros(3), optax.EmptyState())
    assert np.all(np.isnan(nan_updates))


def test_sam_jit_and_inject_hyperparams_rho():
    tx = optax.inject_hyperparams(optim.sam)(learning_rate=0.1, rho=0.05)
    w = jnp.asarray(W0)
    state = tx.init(w)
    update = jax.jit(lambda g, s, p: tx.update(g, s, p, grad_fn=GRAD))
    u1, _ = update(GRAD(w), state, w)
    np.testing.assert_allclose(u1, step(optim.sam(0.1, 0.05))[0], rtol=1e-6)
    state.hyperparams["rho"] = jnp.asarray(0.2)
    u2, _ = update(GRAD(w), state, w)
    np.testing.assert_allclose(u2, step(optim.sam(0.1, 0.2))[0], rtol=1e-6)


# ------------------------------------------------------------------------------------------------
# ASAM, Fisher SAM, SAM-ON, FSAM: the perturbation each method takes


def test_asam_perturbation_closed_form_and_identity_scaling_is_sam():
    rho, eta = 0.5, 0.01
    g = A @ W0
    t = np.abs(W0) + eta
    expected = rho * t ** 2 * g / np.linalg.norm(t * g)
    np.testing.assert_allclose(perturbation(sh.scale_by_asam(rho, eta=eta, eps=0.0), W0, g),
                               expected, rtol=1e-5, atol=2e-7)
    none = lambda p: jax.tree.map(lambda _: False, p)  # noqa: E731  T = 1 everywhere
    np.testing.assert_allclose(step(optim.asam(0.1, 0.05, mask=none))[0],
                               step(optim.sam(0.1, 0.05))[0], rtol=1e-6)


def _samsung_asam_ascent(named_params, named_grads, rho, eta):
    """float64 transcription of SamsungLabs/ASAM asam.py, ASAM.ascent_step (lines 13-38 of commit
    dc9b513): ``t_w = |p| + eta`` and ``grad *= t_w`` only ``if 'weight' in n`` (lines 22-25);
    ``wgrad_norm = ||[||t_w g||]|| + 1e-16`` (line 27); ``grad *= t_w`` again for weights (32-33);
    ``eps = grad * rho / wgrad_norm`` (35-36)."""
    scaled = {}
    for n, p in named_params.items():
        g = np.asarray(named_grads[n], np.float64)
        scaled[n] = (np.abs(np.asarray(p, np.float64)) + eta) * g if "weight" in n else g
    wgrad_norm = np.linalg.norm([np.linalg.norm(v) for v in scaled.values()]) + 1e-16
    eps = {}
    for n, p in named_params.items():
        v = scaled[n] * (np.abs(np.asarray(p, np.float64)) + eta) if "weight" in n else scaled[n]
        eps[n] = v * rho / wgrad_norm
    return eps


def test_asam_weight_mask_matches_the_authors_ascent_step_on_a_cnn_tree():
    """ASAM (arXiv:2102.11600) with ``mask=weight_mask`` is the authors' ascent step on a CNN-like
    tree (conv / LayerNorm / head, biases included): biases get ``T = 1``. The default (every leaf
    adaptive, davda54/sam's scope) differs from it exactly on the biases."""
    rng = np.random.default_rng(0)
    params = {"convs": {0: {"kernel": rng.normal(0, 0.3, (3, 3, 1, 4)), "bias": rng.normal(0, 2, 4)}},
              "norms": {0: {"scale": 1 + 0.1 * rng.normal(size=4), "bias": rng.normal(0, 0.1, 4)}},
              "head": {"kernel": rng.normal(0, 0.1, (4, 3)), "bias": np.zeros(3)}}
    grads = jax.tree.map(lambda p: rng.normal(size=p.shape), params)
    # PyTorch names: kernels and norm scales are ``weight``, offsets ``bias``
    torch_names = {"convs.0.kernel": "conv.weight", "convs.0.bias": "conv.bias",
                   "norms.0.scale": "norm.weight", "norms.0.bias": "norm.bias",
                   "head.kernel": "head.weight", "head.bias": "head.bias"}

    def named(tree):
        flat = jax.tree_util.tree_flatten_with_path(tree)[0]
        return {torch_names[".".join(str(getattr(k, "key", k)) for k in path)]: v for path, v in flat}

    expected = _samsung_asam_ascent(named(params), named(grads), rho=0.5, eta=0.01)
    p32, g32 = (jax.tree.map(lambda a: np.asarray(a, np.float32), t) for t in (params, grads))
    ours = named(perturbation(sh.scale_by_asam(0.5, eta=0.01, mask=sh.weight_mask), p32, g32))
    assert sh.weight_mask(params)["convs"][0] == {"bias": False, "kernel": True}
    for name, e in expected.items():
        np.testing.assert_allclose(ours[name], e, rtol=2e-5, atol=1e-7, err_msg=name)
    every_leaf = named(perturbation(sh.scale_by_asam(0.5, eta=0.01), p32, g32))
    assert not np.allclose(every_leaf["conv.bias"], expected["conv.bias"], rtol=0.1)


def test_sharpness_experiment_maps_the_asam_mask_name():
    """experiments/sharpness.py: an entry's ``mask: "weights"`` is the authors' scope, a wrong name
    is a ConfigError naming the key."""
    from jaxopt_lab.lab.config import ConfigError, load_config_module
    from jaxopt_lab.lab.project import load_experiment
    from jaxopt_lab.lab.run import check_experiment

    experiment = load_experiment("sharpness")
    root = pathlib.Path(__file__).resolve().parents[2]
    cfg = load_config_module(root / "configs" / "reproduce" / "sam_asam_ranking.py").get_config()
    assert cfg.optimizers.asam.mask == "weights"
    params = {"conv": {"kernel": jnp.ones(2), "bias": jnp.array([2.0, -3.0])}}
    grads = {"conv": {"kernel": jnp.ones(2), "bias": jnp.ones(2)}}
    kw = {"learning_rate": 1.0, "rho": 0.5, "eta": 0.0}
    ours = step(experiment.build_optimizer("asam", dict(kw, mask="weights")), w=params, grads=grads,
                grad_fn=identity_grad)[0]
    ref = step(optim.asam(1.0, 0.5, 0.0, mask=sh.weight_mask), w=params, grads=grads,
               grad_fn=identity_grad)[0]
    every_leaf = step(optim.asam(1.0, 0.5, 0.0), w=params, grads=grads, grad_fn=identity_grad)[0]
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), ours, ref)
    assert not np.allclose(ours["conv"]["bias"], every_leaf["conv"]["bias"])
    cfg.optimizers.asam.mask = "biases"
    with pytest.raises(ConfigError, match="optimizers.asam.mask"):
        check_experiment(experiment, cfg)


@pytest.mark.slow
def test_asam_is_invariant_to_layer_rescaling():
    """ASAM (arXiv:2102.11600), scale invariance: rescaling a bias-free ReLU pair (W1 c, W2 / c) leaves ASAM's (eta = 0)
    perturbed loss unchanged; SAM's changes."""
    key1, key2, key3 = jax.random.split(jax.random.PRNGKey(0), 3)
    x = jax.random.normal(key1, (16, 4))
    y = jax.random.normal(key2, (16,))
    params = {"w1": jax.random.normal(key3, (4, 5)), "w2": jnp.linspace(-1, 1, 5)}

    def loss(p):
        return jnp.mean((jax.nn.relu(x @ p["w1"]) @ p["w2"] - y) ** 2)

    def perturbed_loss(transform, p):
        eps = perturbation(transform, p, jax.grad(loss)(p))
        return float(loss(jax.tree.map(lambda a, e: a + e, p, eps)))

    scaled = {"w1": params["w1"] * 4.0, "w2": params["w2"] / 4.0}
    assert np.isclose(float(loss(params)), float(loss(scaled)), rtol=1e-5)
    asam = sh.scale_by_asam(0.5, eta=0.0)
    assert np.isclose(perturbed_loss(asam, params), perturbed_loss(asam, scaled), rtol=1e-4)
    sam = sh.scale_by_sam(0.5)
    assert not np.isclose(perturbed_loss(sam, params), perturbed_loss(sam, scaled), rtol=1e-2)


def test_fisher_sam_perturbation_closed_form():
    rho, eta = 0.1, 1.0
    g = A @ W0
    f_inv_g = g / (1 + eta * g ** 2)
    expected = rho * f_inv_g / np.sqrt(np.sum(g * f_inv_g))
    # direction - w reads epsilon off at |w| ~ 1: float32 cancellation leaves ~1e-7 absolute
    np.testing.assert_allclose(perturbation(sh.scale_by_fisher_sam(rho, eta=eta), W0, g),
                               expected, rtol=1e-5, atol=2e-7)
    np.testing.assert_allclose(perturbation(sh.scale_by_fisher_sam(rho, eta=0.0), W0, g),
                               rho * g / np.linalg.norm(g), rtol=1e-5, atol=2e-7)


def test_sam_on_perturbs_only_normalization_leaves():
    params = {"layers": {0: {"kernel": jnp.ones((2, 2))}}, "norms": {0: {"scale": jnp.ones(2),
                                                                        "bias": jnp.zeros(2)}}}
    grads = {"layers": {0: {"kernel": jnp.full((2, 2), 5.0)}},
             "norms": {0: {"scale": jnp.array([3.0, 0.0]), "bias": jnp.array([0.0, 4.0])}}}
    eps = perturbation(sh.scale_by_sam_on(0.5), params, grads)
    np.testing.assert_allclose(eps["layers"][0]["kernel"], 0.0)
    # the norm runs over the perturbed leaves only: ||(3, 0, 0, 4)|| = 5
    np.testing.assert_allclose(eps["norms"][0]["scale"], [0.3, 0.0], rtol=1e-6)
    np.testing.assert_allclose(eps["norms"][0]["bias"], [0.0, 0.4], rtol=1e-6)
    assert sh.normalization_mask(params) == {"layers": {0: {"kernel": False}},
                                             "norms": {0: {"scale": True, "bias": True}}}
    # an explicit mask selecting everything is SAM
    everything = sh.scale_by_sam_on(0.5, mask=lambda p: jax.tree.map(lambda _: True, p))
    flat = np.concatenate([np.ravel(x) for x in jax.tree.leaves(grads)])
    got = np.concatenate([np.ravel(x) for x in jax.tree.leaves(perturbation(everything, params,
                                                                            grads))])
    np.testing.assert_allclose(got, 0.5 * flat / np.linalg.norm(flat), rtol=1e-6)


def test_fsam_fisher_mask_keeps_the_top_fraction():
    g = jnp.array([0.1, -3.0, 0.2, 2.0, -0.05, 0.3, 0.0, 1.0, 0.4, -0.5])
    w = jnp.zeros(10)
    eps = perturbation(sh.scale_by_fsam_fisher_mask(1.0, sparsity=0.8), w, g)
    masked = np.where(np.isin(np.arange(10), [1, 3]), np.asarray(g), 0.0)  # top 20% of g^2
    np.testing.assert_allclose(eps, masked / np.linalg.norm(masked), rtol=1e-6)
    eps0 = perturbation(sh.scale_by_fsam_fisher_mask(1.0, sparsity=0.0), w, g)
    np.testing.assert_allclose(eps0, np.asarray(g) / np.linalg.norm(g), rtol=1e-6)


# ------------------------------------------------------------------------------------------------
# GSAM, GAM, finite-difference GR: the combination


def test_gsam_alpha_zero_constant_rho_is_sam():
    np.testing.assert_allclose(step(optim.gsam(0.1, rho=0.05, alpha=0.0))[0],
                               step(optim.sam(0.1, 0.05))[0], rtol=1e-6)


def test_gsam_matches_big_vision_decomposition():
    rho, alpha = 0.05, 0.4
    g = A @ W0
    g_r = A @ (W0 + rho * g / np.linalg.norm(g))
    unit = g_r / np.linalg.norm(g_r)
    expected = g_r - alpha * (g - (g @ unit) * unit)
    np.testing.assert_allclose(step(sh.scale_by_gsam(rho, alpha, eps=0.0))[0], expected, rtol=1e-5)


def test_gsam_rho_follows_the_learning_rate_schedule():
    lr = optax.linear_schedule(0.1, 0.0, 10)
    rho = sh.gsam_rho_schedule(lr, rho_max=0.2, rho_min=0.02, lr_max=0.1, lr_min=0.0)
    for k in (0, 5, 10):
        np.testing.assert_allclose(rho(k), 0.02 + 0.18 * float(lr(k)) / 0.1, rtol=1e-6)
    assert sh.gsam_rho_schedule(0.1, 0.2, 0.02) == 0.2  # constant lr: constant rho (no 0/0)
    with pytest.raises(ValueError, match="lr_max"):
        optim.gsam(lr, rho=0.2, rho_min=0.02)


def test_gam_matches_numpy_transcription_of_reference():
    """xxgege/GAM (accelerated) transcribed in numpy on the quadratic; 3 extra gradients a step."""
    rho, norm_rho, gamma = 0.02, 0.2, 0.03
    b1, b2, b3 = 1.0, -1.0, 1.0
    grad = lambda w: A @ w  # noqa: E731
    unit = lambda v: v / np.linalg.norm(v)  # noqa: E731
    g0 = grad(W0)
    g1 = grad(W0 + rho * unit(g0))
    w2 = W0 + norm_rho * unit(g1 - g0)
    g2 = grad(w2)
    g3 = grad(w2 + rho * unit(g2))
    pro_m = g0 + abs(b2) * g2
    new = b1 * g1 + b3 * g3
    cosine = pro_m @ new / (np.linalg.norm(new) * np.linalg.norm(pro_m))
    vertical = pro_m - cosine * np.linalg.norm(pro_m) * new / np.linalg.norm(new)
    expected = new - gamma * vertical

    calls = []

    def counting_grad(w):
        calls.append(1)
        return GRAD(w)

    direction, _ = step(sh.scale_by_gam(rho, norm_rho, gamma=gamma), grads=jnp.asarray(g0),
                        grad_fn=counting_grad)
    np.testing.assert_allclose(direction, expected, rtol=1e-5)
    assert len(calls) == 3


@pytest.mark.parametrize("normalize", [True, False])
def test_fd_gr_equals_double_backprop_gradient_on_a_quadratic(normalize):
    """On a quadratic the finite difference H g is exact, so FD-GR's direction is the gradient of
    L + (gamma/2)||grad L||^2 computed by double backprop."""
    gamma, rho = 0.05, 0.01
    regularized = lambda w: quadratic(w) + 0.5 * gamma * jnp.sum(GRAD(w) ** 2)  # noqa: E731
    direction, _ = step(sh.scale_by_fd_gr(gamma, rho, normalize=normalize))
    np.testing.assert_allclose(direction, jax.grad(regularized)(jnp.asarray(W0)), rtol=1e-4)


def test_fd_gr_with_gamma_equal_to_step_is_unnormalized_sam():
    rho = 0.05
    direction, _ = step(sh.scale_by_fd_gr(gamma=rho, rho=rho, normalize=False))
    np.testing.assert_allclose(direction, A @ (W0 + rho * (A @ W0)), rtol=1e-6)
    unnormalized, _ = step(sh.scale_by_sam(rho, normalize=False))
    np.testing.assert_allclose(unnormalized, A @ (W0 + rho * (A @ W0)), rtol=1e-6)


def test_unnormalized_sam_edge_of_stability_on_a_quadratic():
    """w <- (1 - eta lam (1 + rho lam)) w: below the predicted edge the iterates shrink, above it
    they grow (the formula the sam-far-from-home reproduction checks)."""
    eta, rho = 0.2, 0.1
    edge = (np.sqrt(1 + 8 * rho / eta) - 1) / (2 * rho)
    for lam, shrinks in ((0.95 * edge, True), (1.05 * edge, False)):
        tx = optim.sam(eta, rho, normalize=False)
        grad = lambda w, lam=lam: lam * w  # noqa: E731
        w, state = jnp.ones(1), tx.init(jnp.ones(1))
        for _ in range(50):
            u, state = tx.update(grad(w), state, w, grad_fn=grad)
            w = w + u
        assert (abs(float(w[0])) < 1.0) == shrinks


# ------------------------------------------------------------------------------------------------
# m-sharpness


def _regression(n=12, d=3):
    key1, key2 = jax.random.split(jax.random.PRNGKey(1))
    return jax.random.normal(key1, (n, d)), jax.random.normal(key2, (n,))


def _mse(w, batch):
    x, y = batch
    return 0.5 * jnp.mean((x @ w - y) ** 2)


@pytest.mark.slow
def test_m_sharpness_is_the_mean_of_per_chunk_sam_gradients():
    x, y = _regression()
    w = jnp.asarray(W0)
    rho, chunks = 0.1, 3
    expected = []
    for c in range(chunks):
        part = (x[4 * c: 4 * c + 4], y[4 * c: 4 * c + 4])
        g_c = jax.grad(_mse)(w, part)
        expected.append(jax.grad(_mse)(w + rho * g_c / jnp.linalg.norm(g_c), part))
    expected = np.mean(np.stack(expected), axis=0)
    tx = sh.scale_by_m_sam(rho, chunks, eps=0.0)
    chunk_grad_fn = sh.chunked_grad_fn(_mse, (x, y), chunks)
    full = jax.grad(_mse)(w, (x, y))
    direction, _ = tx.update(full, tx.init(w), w, chunk_grad_fn=chunk_grad_fn, value=1.0)
    np.testing.assert_allclose(direction, expected, rtol=1e-5)
    # one chunk is SAM on the whole batch, and differs from three
    sam_direction, _ = step(sh.scale_by_sam(rho, eps=0.0), w=w, grads=full,
                            grad_fn=lambda p: jax.grad(_mse)(p, (x, y)))
    one, _ = step(sh.scale_by_m_sam(rho, 1, eps=0.0), w=w, grads=full,
                  grad_fn=lambda p: jax.grad(_mse)(p, (x, y)))
    np.testing.assert_allclose(one, sam_direction, rtol=1e-6)
    assert not np.allclose(direction, sam_direction, rtol=1e-3)


# ------------------------------------------------------------------------------------------------
# bad input


@pytest.mark.parametrize("name", ["sam", "asam", "gsam", "gam", "fisher_sam", "sam_on", "m_sam",
                                  "fsam_fisher_mask"])
def test_negative_rho_is_rejected(name):
    with pytest.raises(ValueError, match="rho must be in"):
        optim.get(name, learning_rate=0.1, rho=-0.1)


def test_bad_hyperparameters_are_rejected():
    with pytest.raises(ValueError, match="rho must be in \\(0"):
        optim.fd_gr(0.1, rho=0.0)
    with pytest.raises(ValueError, match="num_chunks must be an int >= 1"):
        optim.m_sam(0.1, num_chunks=0)
    with pytest.raises(ValueError, match="sparsity must be in"):
        optim.fsam_fisher_mask(0.1, sparsity=1.0)
    with pytest.raises(ValueError, match="learning_rate must be in"):
        optim.sam(-1.0)


def test_unknown_base_lists_close_matches():
    with pytest.raises(ValueError, match="unknown optimizer 'adma'.*'adam'"):
        optim.sam(0.1, base="adma")
    with pytest.raises(ValueError, match="base must be None, an optax GradientTransformation"):
        optim.sam(0.1, base=3)


@pytest.mark.parametrize("name", optim.names(family="sharpness"))
def test_missing_grad_fn_is_a_clear_error(name):
    tx = optim.get(name, learning_rate=0.1)
    w = jnp.asarray(W0)
    with pytest.raises(ValueError, match="grad_fn"):
        tx.update(GRAD(w), tx.init(w), w, value=1.0)


def test_m_sam_with_chunks_needs_chunk_grad_fn():
    tx = optim.m_sam(0.1, num_chunks=2)
    w = jnp.asarray(W0)
    with pytest.raises(ValueError, match="chunk_grad_fn"):
        tx.update(GRAD(w), tx.init(w), w, grad_fn=GRAD)
    with pytest.raises(ValueError, match="divisible by num_chunks=5"):
        sh.chunked_grad_fn(_mse, _regression(), 5)


def test_registry_entries():
    for name in ("sam", "asam", "gsam", "gam", "fisher_sam", "fsam_fisher_mask", "sam_on",
                 "m_sam", "fd_gr"):
        info = optim.info(name)
        assert info.family == "sharpness" and "grad_fn" in info.extra_args and "arXiv" in info.paper


# ------------------------------------------------------------------------------------------------
# curvature


@pytest.mark.slow
def test_top_hessian_eigenvalue_matches_eigvalsh():
    key = jax.random.PRNGKey(0)
    q = np.linalg.qr(np.asarray(jax.random.normal(key, (6, 6))))[0]
    h = (q * np.array([0.5, 1.0, 2.0, 3.0, 4.0, 9.0])) @ q.T
    out = sh.top_hessian_eigenvalue(lambda w: 0.5 * w @ (jnp.asarray(h, jnp.float32) @ w),
                                    jnp.ones(6), key, max_iterations=200, threshold=1e-7)
    np.testing.assert_allclose(out.eigenvalue, np.linalg.eigvalsh(h)[-1], rtol=1e-4)
    assert bool(out.converged)


@pytest.mark.slow
def test_top_hessian_eigenvalue_of_a_small_net_matches_dense_hessian():
    x, y = _regression(n=20, d=3)
    params = {"w1": 0.5 * jnp.ones((3, 4)) + 0.1 * jnp.arange(12.0).reshape(3, 4),
              "w2": jnp.linspace(-1.0, 1.0, 4)}

    def loss(p):
        return jnp.mean((jnp.tanh(x @ p["w1"]) @ p["w2"] - y) ** 2)

    flat, unravel = jax.flatten_util.ravel_pytree(params)
    dense = jax.hessian(lambda v: loss(unravel(v)))(flat)
    eigenvalues = np.linalg.eigvalsh(np.asarray(dense, np.float64))
    top = eigenvalues[np.argmax(np.abs(eigenvalues))]
    out = jax.jit(lambda p: sh.top_hessian_eigenvalue(loss, p, jax.random.PRNGKey(3),
                                                      max_iterations=300, threshold=1e-6))(params)
    np.testing.assert_allclose(out.eigenvalue, top, rtol=1e-3)


# ------------------------------------------------------------------------------------------------
# robustness: huge gradients, empty trees, unsupported leaves, complex parameters


def _linear_grad(c):
    return lambda w: jax.tree.map(lambda _: c, w)  # the gradient of <c, w>: constant


@pytest.mark.parametrize("name, factor", [("sam", 1.0), ("gam", 2.0), ("fd_gr", 1.0),
                                          ("gsam", 1.0)])
def test_float32_gradient_near_1e20_gives_the_exact_finite_direction(name, factor):
    """A constant gradient c with entries ~1e20 (its squares overflow float32): every probe sees c,
    so SAM, GSAM and finite-difference GR return c and GAM b1 c + b3 c = 2c -- finite, exact.
    The global norm is taken of x / max|x| and rescaled; GAM's cosine is formed from unit
    vectors; fd_gr adds w (a - g) instead of mixing (1 - w) g + w a."""
    c = jnp.asarray([1e20, -2e20, 3e20], jnp.float32)
    w = jnp.zeros(3, jnp.float32)
    tx = getattr(sh, f"scale_by_{name}")()
    direction, _ = tx.update(c, tx.init(w), w, grad_fn=_linear_grad(c))
    assert np.all(np.isfinite(np.asarray(direction)))
    np.testing.assert_allclose(direction, factor * np.asarray(c), rtol=1e-6)
    assert float(sh.global_norm(c)) == pytest.approx(np.sqrt(14.0) * 1e20, rel=1e-6)


def test_fsam_fisher_mask_on_an_empty_tree():
    tx = optim.fsam_fisher_mask(0.1)
    updates, state = tx.update({}, tx.init({}), {}, grad_fn=lambda p: {})
    assert updates == {}
    assert int(jax.tree.leaves(state)[0]) == 1  # the step count advanced


@pytest.mark.parametrize("name", optim.names(family="sharpness"))
def test_integer_leaves_are_one_clear_type_error(name):
    tx = optim.get(name, learning_rate=0.1)
    with pytest.raises(TypeError, match=r"params\['steps'\] has dtype int32; allowed: floating"):
        tx.init({"w": jnp.ones(3), "steps": jnp.arange(3)})


@pytest.mark.parametrize("name", ["sam", "gsam", "gam", "fd_gr"])
def test_complex_parameters_follow_the_real_pair_geometry(name):
    """Complex z = x + iy optimised with the gradient ∂f/∂x + i ∂f/∂y (= conj of jax.grad) takes
    the same step as the method on the real pair (x, y): norms count |z|^2 and inner products
    Re<a, b>, so no conjugate is lost. (ASAM, Fisher SAM and FSAM weigh each complex entry by
    its modulus, a different geometry from the real pair's.)"""
    a = jnp.asarray([[1.0 + 2.0j, 0.5j], [0.3, 2.0 - 1.0j], [1.0j, -1.0]], jnp.complex64)
    b = jnp.asarray([1.0, -1.0j, 0.5 + 0.5j], jnp.complex64)

    def f_complex(z):
        return jnp.sum(jnp.abs(a @ z - b) ** 2)

    def f_real(pair):
        return f_complex(pair[0] + 1j * pair[1])

    def grad_complex(z):
        return jnp.conj(jax.grad(f_complex)(z))

    z = jnp.asarray([0.3 - 0.2j, -0.5 + 1.0j], jnp.complex64)
    pair = jnp.stack([z.real, z.imag])
    np.testing.assert_allclose(grad_complex(z), (lambda g: g[0] + 1j * g[1])(jax.grad(f_real)(pair)),
                               rtol=1e-5)
    tx = getattr(sh, f"scale_by_{name}")()
    d_complex, _ = tx.update(grad_complex(z), tx.init(z), z, grad_fn=grad_complex)
    d_real, _ = tx.update(jax.grad(f_real)(pair), tx.init(pair), pair, grad_fn=jax.grad(f_real))
    assert d_complex.dtype == jnp.complex64
    np.testing.assert_allclose(d_complex, d_real[0] + 1j * d_real[1], rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------------------------------
# flax nnx: the functional way and nnx.Optimizer


@pytest.mark.slow
def test_sam_with_flax_nnx_functional_and_nnx_optimizer_agree():
    """SAM on a flax nnx model, written the two ways users write it: functionally (nnx.split, then
    optax on the Param state) and through ``nnx.Optimizer`` (whose update hands the transform plain
    arrays while ``nnx.grad`` returns ``nnx.Param`` variables). Both take the same step, equal to
    SAM's formula w - lr grad L(w + rho g/||g||) computed by hand."""
    from flax import nnx

    x = jax.random.normal(jax.random.PRNGKey(0), (8, 3))
    y = jax.random.normal(jax.random.PRNGKey(1), (8, 2))

    def loss_fn(model, x, y):
        return jnp.mean((model(x) - y) ** 2)

    lr, rho = 0.1, 0.05
    model = nnx.Linear(3, 2, rngs=nnx.Rngs(0))
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)

    # by hand, on plain arrays
    def loss(p):
        return loss_fn(nnx.merge(graphdef, p, rest), x, y)

    w = jax.tree.map(jnp.asarray, nnx.to_pure_dict(params))
    plain_loss = lambda p: loss(nnx.State(p))  # noqa: E731
    g = jax.grad(plain_loss)(w)
    eps = jax.tree.map(lambda v: rho * v / sh.global_norm(g), g)
    g_adv = jax.grad(plain_loss)(jax.tree.map(jnp.add, w, eps))
    expected = jax.tree.map(lambda v, d: v - lr * d, w, g_adv)

    # functional: optax on the Param state
    tx = optim.sam(lr, rho=rho)
    grads = jax.grad(loss)(params)
    updates, _ = tx.update(grads, tx.init(params), params, grad_fn=jax.grad(loss))
    functional = nnx.to_pure_dict(optax.apply_updates(params, updates))

    # nnx.Optimizer, under nnx.jit
    optimizer = nnx.Optimizer(model, optim.sam(lr, rho=rho), wrt=nnx.Param)

    @nnx.jit
    def train_step(model, optimizer, x, y):
        graphdef, _, rest = nnx.split(model, nnx.Param, ...)

        def grad_fn(params):  # the gradient at other weights, on the same batch
            return nnx.grad(loss_fn)(nnx.merge(graphdef, params, rest), x, y)

        grads = nnx.grad(loss_fn)(model, x, y)
        optimizer.update(model, grads, grad_fn=grad_fn)

    train_step(model, optimizer, x, y)
    through_optimizer = nnx.to_pure_dict(nnx.state(model, nnx.Param))

    for name in ("kernel", "bias"):
        np.testing.assert_allclose(functional[name], expected[name], rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(through_optimizer[name], expected[name], rtol=1e-5, atol=1e-7)


def test_docstring_examples():
    import doctest

    result = doctest.testmod(sh, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 10 and result.failed == 0
