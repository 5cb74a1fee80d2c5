"""Tests of the adaptive family (jaxopt_lab.optim.adaptive and its modules): hand-computed first and second updates (numpy, float64) for every
optimizer, reductions to optax's own optimizers (adam, sgd, lion, polyak_sgd), invariants the papers state
(Lion's box, SANIA's scale invariance, AdamP's orthogonal update) and bad input."""

import doctest
import importlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxopt_lab import optim
from jaxopt_lab.optim import adaptive

RTOL, ATOL = 2e-5, 1e-7


def run_steps(tx, params, grad_fn, n=2, value_fn=None, pass_grad_fn=False):
    """``n`` jitted steps; returns the list of updates (numpy) and the final params."""
    state = tx.init(params)

    @jax.jit
    def step(params, state):
        extra = {}
        if value_fn is not None:
            extra["value"] = value_fn(params)
        if pass_grad_fn:
            extra["grad_fn"] = grad_fn
        updates, state = tx.update(grad_fn(params), state, params, **extra)
        return optax.apply_updates(params, updates), state, updates

    out = []
    for _ in range(n):
        params, state, updates = step(params, state)
        out.append(jax.tree.map(np.asarray, updates))
    return out, params


def sequence_grads(grads):
    """A 'grad_fn' that returns the given gradients in turn (the tiny problem is the gradient sequence)."""
    it = iter(grads)
    return lambda params: jax.tree.map(jnp.asarray, next(it))


def run_sequence(tx, params, grads, **extra):
    """Updates for a fixed gradient sequence, eager (no jit), params updated in between."""
    state = tx.init(params)
    out = []
    for g in grads:
        updates, state = tx.update(jax.tree.map(jnp.asarray, g), state, params, **extra)
        params = optax.apply_updates(params, updates)
        out.append(jax.tree.map(np.asarray, updates))
    return out, params


def assert_close(a, b, rtol=RTOL, atol=ATOL):
    np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(b, np.float64), rtol=rtol,
                               atol=atol)


def adam_np(grads, b1=0.9, b2=0.999, eps=1e-8):
    """Directions m_hat / (sqrt(v_hat) + eps) for a gradient sequence (numpy, float64)."""
    m = v = 0.0
    out = []
    for t, g in enumerate(grads, 1):
        g = np.asarray(g, np.float64)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        out.append((m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps))
    return out


# ------------------------------------------------------------------------------------------------
# The docstring examples are tests too.

@pytest.mark.slow
def test_doctests():
    attempted = 0
    for name in (*adaptive.MODULES, "_common"):
        module = importlib.import_module(f"jaxopt_lab.optim.{name}")
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert result.failed == 0, name
        attempted += result.attempted
    assert attempted > 30


# ------------------------------------------------------------------------------------------------
# AdamP / SGDP

def adamp_projection_np(w_flax, g_flax, u_flax, delta=0.1, eps=1e-8):
    """The reference's projection written in PyTorch's layout (out, in): flax's (in, out) transposed."""
    w, g, u = w_flax.T, g_flax.T, u_flax.T.copy()
    for view in (lambda x: x.reshape(x.shape[0], -1), lambda x: x.reshape(1, -1)):
        wv, gv = view(w), view(g)
        cos = np.abs(np.sum(wv * gv, 1)) / np.maximum(
            np.linalg.norm(wv, axis=1) * np.linalg.norm(gv, axis=1), eps)
        if cos.max() < delta / np.sqrt(wv.shape[1]):
            norms = np.linalg.norm(wv, axis=1) + eps
            wn = w / norms.reshape((-1,) + (1,) * (w.ndim - 1))
            u = u - wn * view(wn * u).sum(1).reshape((-1,) + (1,) * (w.ndim - 1))
            return u.T, True
    return u.T, False


@pytest.mark.slow
def test_adamp_two_steps_by_hand():
    rng = np.random.default_rng(0)
    w0 = rng.normal(size=(3, 2))
    # gradients orthogonal to each output column of w (a scale-invariant weight's gradient is)
    def orth(w, r):
        return r - w * np.sum(w * r, 0) / np.sum(w * w, 0)
    r1, r2 = rng.normal(size=(3, 2)), rng.normal(size=(3, 2))
    lr, wd, wd_ratio = 0.1, 0.05, 0.1
    tx = adaptive.adamp(lr, weight_decay=wd, wd_ratio=wd_ratio)
    state = tx.init(jnp.asarray(w0, jnp.float32))
    w = w0.copy()
    dirs = []
    for t, r in enumerate((r1, r2), 1):
        g = orth(w, r)
        dirs.append(g)
        u_adam = adam_np(dirs)[-1]
        u_ref, projected = adamp_projection_np(w, g, u_adam)
        assert projected
        expected = -lr * (u_ref + wd * wd_ratio * w)
        upd, state = tx.update(jnp.asarray(g, jnp.float32), state, jnp.asarray(w, jnp.float32))
        assert_close(upd, expected, rtol=1e-4, atol=1e-6)
        # the projected direction has no radial part in any column
        np.testing.assert_allclose(np.sum(u_ref * w, 0), 0.0, atol=1e-6)
        w = w + np.asarray(upd, np.float64)


def test_adamp_reduces_to_adam_on_non_scale_invariant_weights():
    rng = np.random.default_rng(1)
    params = {"b": jnp.asarray(rng.normal(size=4), jnp.float32),
              "w": jnp.asarray(rng.normal(size=(3, 2)), jnp.float32)}
    # f = ||params||^2: the gradient is parallel to w (|cos| = 1 >> delta/sqrt(dim)): no projection
    grad_fn = jax.grad(lambda p: sum(jnp.sum(x ** 2) for x in jax.tree.leaves(p)))
    ours, _ = run_steps(adaptive.adamp(0.05), params, grad_fn, n=4)
    ref, _ = run_steps(optax.adam(0.05), params, grad_fn, n=4)
    for a, b in zip(ours, ref):
        jax.tree.map(lambda x, y: assert_close(x, y, rtol=1e-5, atol=1e-7), a, b)


@pytest.mark.slow
def test_adamp_projection_follows_channel_axis():
    # conv-like 4-D kernel (h, w, in, out); the projection is per output channel (last axis)
    rng = np.random.default_rng(2)
    w = rng.normal(size=(2, 2, 3, 4))
    r = rng.normal(size=w.shape)
    g = r - w * np.sum(w * r, (0, 1, 2)) / np.sum(w * w, (0, 1, 2))
    upd, _ = adaptive.scale_by_adamp().update(jnp.asarray(g, jnp.float32),
                                              adaptive.scale_by_adamp().init(jnp.asarray(w)),
                                              jnp.asarray(w, jnp.float32))
    np.testing.assert_allclose(np.sum(np.asarray(upd) * w, (0, 1, 2)), 0.0, atol=1e-5)


@pytest.mark.slow
def test_sgdp_two_steps_by_hand_and_reduction_to_sgd():
    w0 = np.array([[1.0, 0.0], [0.0, 2.0]])
    g1 = np.array([[0.0, 1.0], [3.0, 0.0]])  # each column orthogonal to w's column: projected
    lr, mom, wd = 0.1, 0.5, 0.01
    tx = adaptive.sgdp(lr, momentum=mom, weight_decay=wd)
    ups, _ = run_sequence(tx, jnp.asarray(w0, jnp.float32), [g1, g1])
    # step 1: b = g1, u = g1 (already orthogonal to w, projection leaves it), decay scaled by 0.1/(1-mom)
    assert_close(ups[0], -lr * (g1 + wd * 0.1 / (1 - mom) * w0))
    w1 = w0 + ups[0]
    b2 = mom * g1 + g1
    wn = w1 / np.linalg.norm(w1, axis=0)
    # is the step-2 gradient still (nearly) orthogonal to w1? compute the reference test honestly
    u2, projected = adamp_projection_np(w1, g1, b2)
    ratio = 0.1 if projected else 1.0
    assert_close(ups[1], -lr * (u2 + wd * ratio / (1 - mom) * w1), rtol=1e-5, atol=1e-6)
    del wn
    # non-scale-invariant weights: SGDP is SGD with (nesterov) momentum
    params = {"b": jnp.array([1.0, -2.0]), "w": jnp.array([[1.0, 2.0], [3.0, 4.0]])}
    grad_fn = jax.grad(lambda p: jnp.sum(p["b"] ** 2) + jnp.sum(p["w"] ** 2))
    for nesterov in (False, True):
        ours, _ = run_steps(adaptive.sgdp(0.05, momentum=0.9, nesterov=nesterov), params, grad_fn, 3)
        ref, _ = run_steps(optax.sgd(0.05, momentum=0.9, nesterov=nesterov), params, grad_fn, 3)
        for a, b in zip(ours, ref):
            jax.tree.map(assert_close, a, b)


# ------------------------------------------------------------------------------------------------
# Grams

def test_grams_two_steps_by_hand():
    g1, g2 = np.array([1.0, -2.0, 0.5]), np.array([-0.5, -1.0, 0.0])
    ups, _ = run_sequence(adaptive.grams(0.1), jnp.zeros(3), [g1, g2])
    a = adam_np([g1, g2])
    assert_close(ups[0], -0.1 * np.sign(g1) * np.abs(a[0]))
    assert_close(ups[1], -0.1 * np.sign(g2) * np.abs(a[1]))
    assert ups[1][2] == 0.0  # sign(0) = 0: a zero gradient does not move the coordinate
    assert a[1][0] > 0 and ups[1][0] > 0  # m_hat > 0 (Adam would step down) but sign(g) < 0 wins


def test_grams_equals_adam_when_momentum_and_gradient_agree():
    params = jnp.array([3.0, -2.0, 1.5])
    grad_fn = jax.grad(lambda x: jnp.sum(x ** 2))  # lr small: no sign change of the gradient
    ours, _ = run_steps(adaptive.grams(1e-2), params, grad_fn, n=5)
    ref, _ = run_steps(optax.adam(1e-2), params, grad_fn, n=5)
    for a, b in zip(ours, ref):
        assert_close(a, b)


# ------------------------------------------------------------------------------------------------
# MARS

def mars_np(grads, prev_grads, b1=0.95, b2=0.99, eps=1e-8, gamma=0.025):
    m = v = 0.0
    out = []
    for t, (g, gp) in enumerate(zip(grads, prev_grads), 1):
        c = g + gamma * b1 / (1 - b1) * (g - gp)
        c = c / max(1.0, np.linalg.norm(c))
        m = b1 * m + (1 - b1) * c
        v = b2 * v + (1 - b2) * c * c
        out.append((m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps))
    return out


def test_mars_approx_two_steps_by_hand():
    g1 = np.array([[3.0, -4.0], [0.0, 1.0]])  # norm > 1: clipped
    g2 = np.array([[0.1, 0.2], [-0.1, 0.05]])  # small: c not clipped at step 2
    ups, _ = run_sequence(adaptive.mars(0.01), {"w": jnp.zeros((2, 2))}, [{"w": g1}, {"w": g2}])
    ref = mars_np([g1, g2], [np.zeros((2, 2)), g1])  # approx: previous *step's* gradient, 0 first
    assert_close(ups[0]["w"], -0.01 * ref[0])
    assert_close(ups[1]["w"], -0.01 * ref[1])


def test_mars_exact_uses_grad_fn_at_previous_params():
    a = np.array([[2.0, 0.5], [0.5, 1.0]])
    grad_fn = lambda w: jnp.asarray(a, jnp.float32) @ w  # noqa: E731  f = w^T A w / 2
    w0 = np.array([[0.3, -0.2], [0.1, 0.4]])
    lr = 0.05
    ups, _ = run_steps(adaptive.mars(lr, exact=True), jnp.asarray(w0, jnp.float32), grad_fn, n=2,
                       pass_grad_fn=True)
    w1 = w0 - lr * mars_np([a @ w0], [a @ w0])[0]  # first step: previous params = initial ones
    ref = mars_np([a @ w0, a @ w1], [a @ w0, a @ w0])
    assert_close(ups[0], -lr * ref[0])
    assert_close(ups[1], -lr * ref[1], rtol=1e-4)
    with pytest.raises(ValueError, match="grad_fn"):
        tx = adaptive.mars(lr, exact=True)
        tx.update(jnp.ones((2, 2)), tx.init(jnp.ones((2, 2))), jnp.ones((2, 2)))


def test_mars_gamma_zero_is_adam_on_clipped_gradients_and_1d_is_adam():
    params = jnp.asarray(np.random.default_rng(3).normal(size=(3, 3)) * 2, jnp.float32)
    grad_fn = jax.grad(lambda w: jnp.sum(w ** 2))
    ours, _ = run_steps(adaptive.mars(1e-2, gamma=0.0), params, grad_fn, n=3)
    ref, _ = run_steps(optax.chain(optax.clip_by_global_norm(1.0), optax.adam(1e-2, b1=0.95, b2=0.99)),
                       params, grad_fn, n=3)
    for a, b in zip(ours, ref):
        assert_close(a, b)
    bias = jnp.array([1.0, -3.0])
    ours, _ = run_steps(adaptive.mars(1e-2), bias, grad_fn, n=3)
    ref, _ = run_steps(optax.adam(1e-2, b1=0.9, b2=0.95), bias, grad_fn, n=3)
    for a, b in zip(ours, ref):
        assert_close(a, b)


# ------------------------------------------------------------------------------------------------
# FAdam

def fadam_np(grads, params, b1=0.9, b2=0.999, clip=1.0, p=0.5, eps=1e-7, eps2=1e-3, wd=0.01):
    m, f = 0.0, np.ones_like(grads[0])
    out = []
    for t, (g, w) in enumerate(zip(grads, params), 1):
        bt = b2 * (1 - b2 ** (t - 1)) / (1 - b2 ** t)
        f = bt * f + (1 - bt) * g * g
        rms = lambda x: np.sqrt(np.mean(x * x))  # noqa: E731
        d = f ** p + min(eps, eps2 * rms(g))
        gn = g / d
        gn = gn / (max(1.0, rms(gn)) / clip)
        m = b1 * m + (1 - b1) * gn
        wn = w / d
        wn = wn / (max(1.0, rms(wn)) / clip)
        out.append(m + wd * wn)
    return out


def test_fadam_two_steps_by_hand():
    g1, g2 = np.array([0.5, -2.0, 1e-3]), np.array([1.0, 0.3, -0.2])
    w0 = np.array([1.0, -1.0, 0.5])
    lr = 0.1
    ups, _ = run_sequence(adaptive.fadam(lr), jnp.asarray(w0, jnp.float32), [g1, g2])
    w1 = w0 + ups[0]
    ref = fadam_np([g1, g2], [w0, w1])
    assert_close(ups[0], -lr * ref[0])
    assert_close(ups[1], -lr * ref[1], rtol=1e-4)


def test_fadam_zero_gradient_leaf_gives_zero_step_not_nan():
    tx = adaptive.fadam(0.1)
    u, _ = tx.update({"a": jnp.zeros(2), "b": jnp.ones(2)}, tx.init({"a": jnp.ones(2), "b": jnp.ones(2)}),
                     {"a": jnp.ones(2), "b": jnp.ones(2)})
    assert np.all(np.isfinite(np.asarray(u["a"]))) and np.all(np.asarray(u["a"]) == 0.0)


# ------------------------------------------------------------------------------------------------
# diffGrad

def test_diffgrad_two_steps_by_hand_and_its_friction_over_adam():
    g1, g2 = np.array([1.0, -2.0, 0.0]), np.array([0.5, 3.0, 0.0])
    ups, _ = run_sequence(adaptive.diffgrad(0.1), jnp.zeros(3), [g1, g2])
    a = adam_np([g1, g2])
    sig = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    assert_close(ups[0], -0.1 * sig(np.abs(g1)) * a[0])  # previous gradient 0 at the first step
    assert_close(ups[1], -0.1 * sig(np.abs(g1 - g2)) * a[1])
    ref, _ = run_sequence(optax.adam(0.1), jnp.zeros(3), [g1, g2])
    ratio = ups[1][:2] / ref[1][:2]  # xi in [0.5, 1): smaller steps where the gradient changes less
    assert_close(ratio, sig(np.abs(g1 - g2))[:2], rtol=1e-5)


# ------------------------------------------------------------------------------------------------
# Lion-kappa

def test_lion_kappa_l1_equals_optax_lion():
    rng = np.random.default_rng(4)
    params = {"a": jnp.asarray(rng.normal(size=(3, 2)), jnp.float32),
              "b": jnp.asarray(rng.normal(size=3), jnp.float32)}
    grad_fn = jax.grad(lambda p: jnp.sum(jnp.sin(p["a"])) + jnp.sum(p["b"] ** 3))
    ours, p1 = run_steps(adaptive.lion_kappa(0.03, weight_decay=0.1), params, grad_fn, n=6)
    ref, p2 = run_steps(optax.lion(0.03, weight_decay=0.1), params, grad_fn, n=6)
    for a, b in zip(ours, ref):
        jax.tree.map(assert_close, a, b)
    jax.tree.map(assert_close, p1, p2)


def test_lion_kappa_l2_and_l2_squared_two_steps_by_hand():
    g1, g2 = np.array([3.0, -4.0]), np.array([1.0, 1.0])
    b1, b2, lr = 0.9, 0.99, 0.1
    c1 = (1 - b1) * g1
    m1 = (1 - b2) * g1
    c2 = b1 * m1 + (1 - b1) * g2
    ups, _ = run_sequence(adaptive.lion_kappa(lr, weight_decay=0.0, kappa="l2"), jnp.zeros(2), [g1, g2])
    assert_close(ups[0], -lr * c1 / np.linalg.norm(c1))
    assert_close(ups[1], -lr * c2 / np.linalg.norm(c2))
    ups, _ = run_sequence(adaptive.lion_kappa(lr, weight_decay=0.0, kappa="l2_squared"), jnp.zeros(2),
                          [g1, g2])
    assert_close(ups[0], -lr * c1)
    assert_close(ups[1], -lr * c2)
    # a callable kappa gradient: here the l-infinity norm's (sign of the largest entry)
    linf = lambda c: jax.tree.map(  # noqa: E731
        lambda x: jnp.where(jnp.abs(x) == jnp.max(jnp.abs(x)), jnp.sign(x), 0.0), c)
    ups, _ = run_sequence(adaptive.lion_kappa(lr, weight_decay=0.0, kappa=linf), jnp.zeros(2), [g1, g2])
    assert_close(ups[0], [0.0, lr])


def test_lion_box_is_invariant_and_is_entered():
    """Lion-kappa (arXiv:2310.05898), derived: x <- (1 - lr lam) x - lr sign(c); the box ||x||_inf <= 1/lam is invariant
    once entered, and outside it the excess shrinks by at least (1 - lr lam) per step."""
    lam, lr = 2.0, 0.01
    tx = adaptive.lion_kappa(lr, weight_decay=lam)
    key = jax.random.PRNGKey(0)
    x = jnp.array([3.0, -2.0, 0.1, 0.4])  # two coordinates outside the box [-0.5, 0.5]
    state = tx.init(x)

    def step(carry, k):
        x, state = carry
        g = 5.0 * jax.random.normal(k, x.shape)  # arbitrary (adversarial-ish) gradients
        u, state = tx.update(g, state, x)
        x_new = optax.apply_updates(x, u)
        return (x_new, state), (jnp.abs(x), jnp.abs(x_new))

    (_, _), (before, after) = jax.lax.scan(step, (x, state), jax.random.split(key, 400))
    before, after = np.asarray(before), np.asarray(after)
    box = 1 / lam + 1e-6
    inside = before <= box
    assert np.all(after[inside] <= box)  # invariant
    excess_before, excess_after = before - 1 / lam, after - 1 / lam
    out = ~inside
    assert np.all(excess_after[out] <= (1 - lr * lam) * excess_before[out] + 1e-6)
    assert np.all(after[-1] <= box)  # entered after enough steps


# ------------------------------------------------------------------------------------------------
# SANIA

@pytest.mark.parametrize("preconditioner", ["adagrad", "adam"])
def test_sania_two_steps_by_hand_quadratic(preconditioner):
    f = lambda x: 0.5 * jnp.sum(jnp.array([1.0, 10.0]) * x ** 2)  # noqa: E731
    x0 = np.array([1.0, 0.1])
    ups, _ = run_steps(adaptive.sania(preconditioner=preconditioner), jnp.asarray(x0, jnp.float32),
                       jax.grad(f), n=2, value_fn=f)
    d, b2 = np.array([1.0, 10.0]), 0.999
    acc, x, expected = 0.0, x0, []
    for t in (1, 2):
        g = d * x
        fx = 0.5 * np.sum(d * x * x)
        if preconditioner == "adagrad":
            acc = acc + g * g
            diag = acc
        else:
            acc = b2 * acc + (1 - b2) * g * g
            diag = acc / (1 - b2 ** t)
        s = g / (diag + 1e-8)
        q = np.sum(g * s)
        alpha = 1 - np.sqrt(1 - 2 * fx / q) if 2 * fx <= q else 1.0
        expected.append(-alpha * s)
        x = x - alpha * s
    assert_close(ups[0], expected[0])
    assert_close(ups[1], expected[1], rtol=1e-4)


def test_sania_identity_linear_is_optax_polyak_sgd():
    f = lambda x: jnp.sum((x - 1.0) ** 2) + 0.5  # noqa: E731
    x0 = jnp.array([0.0, 3.0, -1.0])
    ours, _ = run_steps(adaptive.sania(preconditioner="identity", step_rule="linear", eps=0.0), x0,
                        jax.grad(f), n=4, value_fn=f)
    ref, _ = run_steps(optax.polyak_sgd(max_learning_rate=1e9), x0, jax.grad(f), n=4, value_fn=f)
    for a, b in zip(ours, ref):
        assert_close(a, b)


@pytest.mark.parametrize("preconditioner",
                         ["adagrad", pytest.param("adam", marks=pytest.mark.slow)])
def test_sania_is_scale_invariant_and_adam_is_not(preconditioner):
    """Logistic regression with features rescaled by a diagonal D: SANIA's iterates transform exactly
    (y_t = D^{-1} x_t), Adam's do not (SANIA, arXiv:2312.17369)."""
    rng = np.random.default_rng(5)
    a = rng.normal(size=(40, 4))
    labels = np.sign(a @ rng.normal(size=4) + 0.1 * rng.normal(size=40))
    scales = np.array([1e-2, 1.0, 30.0, 1e2])

    def loss(features):
        return lambda x: jnp.mean(jnp.logaddexp(0.0, -labels * (features @ x)))

    x0 = np.array([0.1, -0.2, 0.3, 0.05])
    with jax.enable_x64(True):  # exact transformation: compare in float64
        f_plain, f_scaled = loss(jnp.asarray(a)), loss(jnp.asarray(a * scales))
        for name, tx_fn, must_match in (
                ("sania", lambda: adaptive.sania(preconditioner=preconditioner, eps=0.0), True),
                ("adam", lambda: optax.adam(0.1), False)):
            _, x_t = run_steps(tx_fn(), jnp.asarray(x0), jax.grad(f_plain), n=5, value_fn=f_plain)
            _, y_t = run_steps(tx_fn(), jnp.asarray(x0 / scales), jax.grad(f_scaled), n=5,
                               value_fn=f_scaled)
            matches = np.allclose(np.asarray(y_t) * scales, np.asarray(x_t), rtol=1e-9, atol=1e-12)
            assert matches == must_match, name


def test_sania_needs_value():
    tx = adaptive.sania()
    with pytest.raises(ValueError, match="value"):
        tx.update(jnp.ones(2), tx.init(jnp.ones(2)), jnp.ones(2))


# ------------------------------------------------------------------------------------------------
# Gravity

def test_gravity_two_steps_by_hand():
    lr, alpha, beta = 0.1, 0.01, 0.9
    g1, g2 = np.array([1.0, -0.5, 0.0]), np.array([2.0, 0.1, -0.3])
    tx = adaptive.gravity(lr, alpha=alpha, beta=beta, seed=3)
    state = tx.init(jnp.zeros(3))
    v = np.asarray(state[0].velocity, np.float64)  # the random initial velocity, std alpha / lr
    assert v.shape == (3,) and np.all(np.abs(v) < 10 * alpha / lr) and np.any(v != 0)
    ups = []
    params = jnp.zeros(3)
    for g in (g1, g2):
        u, state = tx.update(jnp.asarray(g, jnp.float32), state, params)
        ups.append(np.asarray(u))
    expected = []
    for t, g in enumerate((g1, g2), 1):
        mx = 1 / np.max(np.abs(g))
        zeta = g / (1 + (g / mx) ** 2)
        bh = (beta * t + 1) / (t + 2)
        v = bh * v + (1 - bh) * zeta
        expected.append(-lr * v)
    assert_close(ups[0], expected[0], rtol=1e-5)
    assert_close(ups[1], expected[1], rtol=1e-5)
    # the same seed gives the same initial velocity; the std matches alpha / lr over a large tensor
    big = adaptive.gravity(lr, alpha=alpha, seed=3).init(jnp.zeros(20000))[0].velocity
    assert abs(float(jnp.std(big)) - alpha / lr) < 0.03 * alpha / lr


# ------------------------------------------------------------------------------------------------
# XGrad

def test_xgrad_adam_two_steps_by_hand():
    a = np.array([1.0, 4.0])
    grad_np = lambda w: a * w  # noqa: E731
    grad_fn = lambda w: jnp.asarray(a, jnp.float32) * w  # noqa: E731
    lr, b1, b2, eps = 0.1, 0.9, 0.999, 1e-8
    w0 = np.array([1.0, -1.0])
    ups, _ = run_steps(adaptive.xgrad(lr), jnp.asarray(w0, jnp.float32), grad_fn, n=2,
                       pass_grad_fn=True)
    # step 1: no moments yet, the prediction is w0 itself
    g1 = grad_np(w0)
    m, v = (1 - b1) * g1, (1 - b2) * g1 ** 2
    u1 = (m / (1 - b1)) / (np.sqrt(v / (1 - b2)) + eps)
    assert_close(ups[0], -lr * u1)
    w1 = w0 - lr * u1
    # step 2: predict with the frozen moments of step 1, take the gradient there
    w_hat = w1 - lr * (m / (1 - b1)) / (np.sqrt(v / (1 - b2)) + eps)
    g2 = grad_np(w_hat)
    m, v = b1 * m + (1 - b1) * g2, b2 * v + (1 - b2) * g2 ** 2
    u2 = (m / (1 - b1 ** 2)) / (np.sqrt(v / (1 - b2 ** 2)) + eps)
    assert_close(ups[1], -lr * u2)


def test_xgrad_sgdm_two_steps_by_hand_and_needs_grad_fn():
    grad_fn = lambda w: 2.0 * w ** 3  # noqa: E731
    lr, mom = 0.05, 0.9
    w0 = np.array([1.0, -0.5])
    ups, _ = run_steps(adaptive.xgrad(lr, base="sgdm", momentum=mom, weight_decay=0.1),
                       jnp.asarray(w0, jnp.float32), grad_fn, n=2, pass_grad_fn=True)
    b = 2 * w0 ** 3
    assert_close(ups[0], -lr * (b + 0.1 * w0))
    w1 = w0 - lr * (b + 0.1 * w0)
    w_hat = w1 - lr * b  # the prediction uses the frozen momentum only (as the reference's)
    b = mom * b + 2 * w_hat ** 3
    assert_close(ups[1], -lr * (b + 0.1 * w1))
    tx = adaptive.xgrad(lr)
    with pytest.raises(ValueError, match="grad_fn"):
        tx.update(jnp.ones(2), tx.init(jnp.ones(2)), jnp.ones(2))


# ------------------------------------------------------------------------------------------------
# Bad input: a ValueError naming the argument; traced values are not checked (inject_hyperparams).

ALIASES = ["adamp", "sgdp", "grams", "mars", "fadam", "diffgrad", "lion_kappa", "sania", "gravity",
           "xgrad"]
BETAS = {"adamp": ("b1", "b2"), "sgdp": ("momentum",), "grams": ("b1", "b2"),
         "mars": ("b1", "b2", "b1_1d", "b2_1d"), "fadam": ("b1", "b2"), "diffgrad": ("b1", "b2"),
         "lion_kappa": ("b1", "b2"), "sania": ("b2",), "gravity": ("beta",),
         "xgrad": ("b1", "b2", "momentum")}


@pytest.mark.parametrize("name", ALIASES)
def test_bad_hyperparameters_raise_naming_the_argument(name):
    with pytest.raises(ValueError, match="learning_rate"):
        optim.get(name, learning_rate=-0.1)
    with pytest.raises(ValueError, match="weight_decay"):
        optim.get(name, learning_rate=0.1, weight_decay=-1e-3)
    for beta in BETAS[name]:
        for bad in (1.0, -0.1, 1.5):
            with pytest.raises(ValueError, match=beta):
                optim.get(name, learning_rate=0.1, **{beta: bad})


def test_bad_choices_raise():
    for fn, kw, arg in ((adaptive.lion_kappa, {"kappa": "l3"}, "kappa"),
                        (adaptive.sania, {"preconditioner": "hessian"}, "preconditioner"),
                        (adaptive.sania, {"step_rule": "cubic"}, "step_rule"),
                        (adaptive.xgrad, {"base": "rmsprop"}, "base"),
                        (adaptive.fadam, {"clip": 0.0}, "clip"),
                        (adaptive.gravity, {"learning_rate": 0.0}, "learning_rate")):
        with pytest.raises(ValueError, match=arg):
            fn(**kw)


def test_adamp_needs_params():
    tx = adaptive.adamp()
    with pytest.raises(ValueError, match="params"):
        tx.update(jnp.ones((2, 2)), tx.init(jnp.ones((2, 2))))


@pytest.mark.parametrize("name", ["adamp"] + [pytest.param(n, marks=pytest.mark.slow)
                                  for n in ["mars", "fadam", "gravity", "xgrad", "sania"]])
def test_inject_hyperparams_with_traced_values(name):
    """Validation never branches on traced hyperparameters: inject_hyperparams + jit work and give the
    same first update as the plain optimizer."""
    params = {"w": jnp.array([[0.5, -1.0], [2.0, 0.3]]), "b": jnp.array([0.1, -0.2])}
    f = lambda p: jnp.sum(p["w"] ** 2) + jnp.sum(jnp.sin(p["b"]))  # noqa: E731
    factory = optim.info(name).factory
    plain, _ = run_steps(factory(learning_rate=0.05, weight_decay=0.01), params, jax.grad(f), n=2,
                         value_fn=f, pass_grad_fn=True)
    injected = optax.inject_hyperparams(factory)(learning_rate=0.05, weight_decay=0.01)
    inj, _ = run_steps(injected, params, jax.grad(f), n=2, value_fn=f, pass_grad_fn=True)
    for a, b in zip(plain, inj):
        jax.tree.map(lambda x, y: assert_close(x, y, rtol=1e-5, atol=1e-7), a, b)


# ------------------------------------------------------------------------------------------------
# Robustness: containers, complex and integer leaves, schedules, dtypes, one state structure.

_MATRIX_PARAMS = (jnp.array([[1.0, -0.5], [0.3, 2.0]]), jnp.array([0.2, -1.0, 0.7]),
                  jnp.array([[0.5, 0.1, -0.4]]))


def _updates_for(name, params, steps=3, **kwargs):
    """Updates of ``steps`` eager steps of ``name`` on f = sum w^4/4 + sum sin(w) (both extra args)."""
    tx = optim.get(name, learning_rate=0.05, **kwargs)
    f = lambda p: sum(jnp.sum(w ** 4) / 4 + jnp.sum(jnp.sin(w)) for w in jax.tree.leaves(p))  # noqa
    state, out = tx.init(params), []
    for _ in range(steps):
        updates, state = tx.update(jax.grad(f)(params), state, params, value=f(params),
                                   grad_fn=jax.grad(f))
        params = optax.apply_updates(params, updates)
        out.append(updates)
    return out


@pytest.mark.parametrize("name", [n if n == "grams" else pytest.param(n, marks=pytest.mark.slow) for n in ALIASES])
def test_tuple_params_give_the_same_updates_as_a_list(name):
    """Tuple containers are ordinary pytree nodes (no ``is_leaf=tuple`` anywhere)."""
    as_tuple = _updates_for(name, tuple(_MATRIX_PARAMS))
    as_list = _updates_for(name, list(_MATRIX_PARAMS))
    for t, l in zip(as_tuple, as_list):
        assert isinstance(t, tuple)
        for a, b in zip(t, l):
            assert np.all(np.isfinite(a))
            assert_close(a, b, rtol=1e-6, atol=1e-8)


def test_mars_and_fadam_on_the_reported_tuples():
    p = (jnp.ones((2, 2)), -2 * jnp.ones((2, 2)))
    tx = optim.get("mars", learning_rate=0.1)
    u, _ = tx.update(p, tx.init(p), p, grad_fn=lambda q: q)  # grads = params
    u_list, _ = tx.update(list(p), tx.init(list(p)), list(p))
    for a, b in zip(u, u_list):
        assert np.all(np.isfinite(a))
        assert_close(a, b)
    vectors = (jnp.array([1.0, 2.0]), jnp.array([-3.0, 0.5]), jnp.array([0.1, 4.0]))
    tx = optim.get("fadam", learning_rate=1.0)
    u, _ = tx.update(vectors, tx.init(vectors), vectors)
    u_list, _ = tx.update(list(vectors), tx.init(list(vectors)), list(vectors))
    for a, b in zip(u, u_list):
        assert_close(a, b)


@pytest.mark.parametrize("name", ALIASES)
def test_optax_masked_freezes_the_masked_leaves_and_leaves_the_rest_unchanged(name):
    params = {"a": _MATRIX_PARAMS[0], "b": _MATRIX_PARAMS[1], "c": _MATRIX_PARAMS[2]}
    mask = {"a": True, "b": False, "c": True}
    factory = optim.info(name).factory
    masked = optax.masked(factory(learning_rate=0.05), mask)
    plain = factory(learning_rate=0.05)
    grads = jax.tree.map(lambda w: jnp.cos(w) + w, params)
    f = lambda p: jnp.sum(p["a"] ** 2) + jnp.sum(p["c"] ** 2)  # noqa: E731
    sub = {"a": params["a"], "c": params["c"]}
    u_masked, _ = masked.update(grads, masked.init(params), params, value=f(params),
                                grad_fn=lambda p: jax.tree.map(lambda w: jnp.cos(w) + w, p))
    u_plain, _ = plain.update({"a": grads["a"], "c": grads["c"]}, plain.init(sub), sub,
                              value=f(params),
                              grad_fn=lambda p: jax.tree.map(lambda w: jnp.cos(w) + w, p))
    assert_close(u_masked["b"], grads["b"])  # masked-out leaves pass through untouched
    for key in ("a", "c"):
        assert_close(u_masked[key], u_plain[key], rtol=1e-6)


@pytest.mark.parametrize("name", ALIASES)
def test_complex_and_integer_params_raise_a_type_error_at_init(name):
    tx = optim.get(name, learning_rate=0.1)
    with pytest.raises(TypeError, match=r"params\['z'\] has dtype complex64.*split_real_and_imaginary"):
        tx.init({"w": jnp.ones(2), "z": jnp.ones(2, jnp.complex64)})
    with pytest.raises(TypeError, match=r"params\['i'\] has dtype int32"):
        tx.init({"i": jnp.ones(2, jnp.int32)})


def test_complex_params_through_split_real_and_imaginary_converge():
    target = jnp.array([1.0 + 2.0j, -0.5 + 0.25j])
    loss = lambda z: jnp.sum(jnp.abs(z - target) ** 2)  # noqa: E731
    tx = optax.contrib.split_real_and_imaginary(optim.get("grams", learning_rate=0.05))
    z = jnp.zeros(2, jnp.complex64)

    def step(carry, _):
        z, state = carry
        updates, state = tx.update(jnp.conj(jax.grad(loss)(z)), state, z)
        return (optax.apply_updates(z, updates), state), None

    (z, _), _ = jax.jit(lambda c: jax.lax.scan(step, c, None, length=200))((z, tx.init(z)))
    assert float(loss(z)) < 1e-2 * float(loss(jnp.zeros(2, jnp.complex64)))


@pytest.mark.parametrize("name", ALIASES)
def test_empty_params_give_empty_updates(name):
    tx = optim.get(name, learning_rate=0.1)
    updates, _ = tx.update({}, tx.init({}), {}, value=jnp.asarray(0.0), grad_fn=lambda p: p)
    assert updates == {}


@pytest.mark.parametrize("name", ["diffgrad", "grams", "gravity", "sania", "xgrad", "mars"])
def test_literal_and_traced_weight_decay_give_one_state_structure(name):
    factory = optim.info(name).factory
    params = {"w": _MATRIX_PARAMS[0], "b": _MATRIX_PARAMS[1]}
    literal = factory(learning_rate=0.1, weight_decay=0).init(params)
    traced = factory(learning_rate=0.1, weight_decay=jnp.asarray(0.0)).init(params)
    assert jax.tree.structure(literal) == jax.tree.structure(traced)
    injected = optax.inject_hyperparams(factory)(learning_rate=0.1, weight_decay=0.0).init(params)
    assert jax.tree.structure(injected.inner_state) == jax.tree.structure(literal)


def test_xgrad_takes_a_schedule():
    w = jnp.array([2.0, -1.0])
    grad_fn = lambda w: 2 * w  # noqa: E731
    for base in ("adam", "sgdm"):
        constant, _ = run_steps(optim.get("xgrad", learning_rate=0.1, base=base), w, grad_fn, n=3,
                                pass_grad_fn=True)
        scheduled, _ = run_steps(optim.get("xgrad", learning_rate=optax.constant_schedule(0.1),
                                           base=base), w, grad_fn, n=3, pass_grad_fn=True)
        for a, b in zip(constant, scheduled):
            assert_close(a, b, rtol=1e-6)
    decaying = optax.linear_schedule(0.1, 0.0, 2)  # the prediction uses the rate of its step
    ups, _ = run_steps(optim.get("xgrad", learning_rate=decaying, base="sgdm", momentum=0.5), w,
                       grad_fn, n=3, pass_grad_fn=True)
    assert np.all(ups[2] == 0.0)  # lr(2) = 0


def test_fadam_clip_caps_the_rms_and_never_amplifies():
    """The first natural gradient has |g_nat| = 1, rms 1: a cap of 2 leaves it, a cap of 0.5 halves it;
    the ports' rule max(1, rms) / clip doubles it for clip = 2."""
    g, p = jnp.array([2.0, -3.0, 0.5]), jnp.zeros(3)

    def first(**kw):
        tx = adaptive.scale_by_fadam(weight_decay=0.0, **kw)
        return np.asarray(tx.update(g, tx.init(p), p)[0])

    base = first(clip=1.0)
    assert_close(base, 0.1 * np.sign(g))
    assert_close(first(clip=2.0), base)
    assert_close(first(clip=0.5), 0.5 * base)
    assert_close(first(clip=2.0, clip_rule="code"), 2 * base)
    assert_close(first(clip=1.0, clip_rule="code"), base)


@pytest.mark.slow
def test_bias_corrections_use_the_parameters_dtype_under_x64():
    """Under x64 with float64 params, 1 - 0.999 is 1e-3 to double precision (not float32's
    0.0009999871): the first Adam-type direction is then exactly sign(g) * |g| / (|g| + eps)."""
    from jaxopt_lab.optim._common import bias_correction

    with jax.enable_x64(True):
        assert float(bias_correction(0.999, jnp.int32(1), jnp.float64)) == pytest.approx(1e-3,
                                                                                         rel=1e-14)
        g = jnp.array([1e-3, 2.0], jnp.float64)
        for name in ("grams", "diffgrad", "adamp"):
            tx = optim.get(name, learning_rate=1.0)
            u, _ = tx.update(g, tx.init(jnp.zeros(2, jnp.float64)), jnp.zeros(2, jnp.float64))
            xi = 1 / (1 + np.exp(-np.abs(np.asarray(g)))) if name == "diffgrad" else 1.0
            expected = -xi * np.asarray(g) / (np.abs(np.asarray(g)) + 1e-8)
            np.testing.assert_allclose(np.asarray(u), expected, rtol=1e-13)


# ------------------------------------------------------------------------------------------------
# Convergence on the badly scaled quadratic 0.5 sum_i d_i (w_i - c_i)^2, d = (1, 10, 100): what is a
# property of SANIA and Gravity and what is not.

_D = jnp.array([1.0, 10.0, 100.0])
_C = jnp.array([1.0, -2.0, 0.5])


def _scaled_quadratic(w):
    return 0.5 * jnp.sum(_D * (w - _C) ** 2)


def _final_loss(tx, w0, steps=3000):
    def body(carry, _):
        w, state = carry
        value, g = jax.value_and_grad(_scaled_quadratic)(w)
        u, state = tx.update(g, state, w, value=value)
        return (w + u, state), None

    (w, _), _ = jax.jit(lambda w: jax.lax.scan(body, (w, tx.init(w)), None, length=steps))(w0)
    return float(_scaled_quadratic(w)) / float(_scaled_quadratic(w0))


def test_sania_converges_on_the_scaled_quadratic_at_its_step_size_free_setting():
    """SANIA is step-size free: learning_rate = 1 takes the step to the root of the model. The default
    (Adam-SQR, quadratic rule) and the plain Polyak step both solve the problem; shrinking the step
    (learning_rate < 1) is outside the method. AdaGrad-SQR with the quadratic rule caps alpha at 1, the
    model's minimiser g / B_t with B_t = sum_s g_s^2 growing like t: it stalls (a property of that
    combination, which is why it is not the default)."""
    w0 = jnp.zeros(3)
    assert _final_loss(optim.get("sania"), w0) < 1e-10
    assert _final_loss(optim.get("sania", preconditioner="identity", step_rule="linear"), w0) < 1e-10
    assert _final_loss(optim.get("sania", preconditioner="adagrad", step_rule="linear"), w0) < 1e-10
    assert _final_loss(optim.get("sania", preconditioner="adagrad"), w0) > 0.1


@pytest.mark.slow
def test_gravity_stalls_where_gradients_are_large_and_converges_where_they_are_small():
    """The authors' map zeta = g / (1 + (g M)^2), M = max|g| ("Gravity Optimizer Math", Eqs. 18-20):
    every entry is bounded by 1 / (2M) and the steepest one is M / (1 + M^4) ~ M^-3. From w = 0
    (g = (-1, 20, -50), M = 50) Gravity barely moves in 3000 steps; started where |g| M < 1 it is
    momentum SGD and converges. A property of the rule, not a bug."""
    g = jax.grad(_scaled_quadratic)(jnp.zeros(3))
    tx = adaptive.scale_by_gravity(velocity_std=0.0)
    u, _ = tx.update(g, tx.init(jnp.zeros(3)))
    big = float(jnp.max(jnp.abs(g)))
    zeta = np.asarray(u) / (1 - 1.9 / 3)  # first step: (1 - beta_hat_1) zeta
    assert np.all(np.abs(zeta) <= 1 / (2 * big) + 1e-9)
    assert_close(np.abs(zeta[2]), big / (1 + big ** 4))
    for lr in (1e-3, 1e-2, 1e-1):
        assert _final_loss(optim.get("gravity", learning_rate=lr), jnp.zeros(3)) > 0.5
    near = _C + jnp.array([0.05, 0.005, 0.0005])  # g = 0.05 everywhere: |g| M = 0.0025
    assert _final_loss(optim.get("gravity", learning_rate=0.1), near) < 1e-6
