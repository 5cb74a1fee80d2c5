"""Step-for-step agreement of the adaptive family with the authors' official code.

Each test transcribes the official PyTorch update into float64 numpy (the repository, file and lines
are cited at each transcription), runs it for 30 steps on one fixed problem with its own analytic
gradients, runs our optimizer for 30 steps in float64 (``jax.enable_x64``) with ``jax.grad``, and
requires the iterates to agree to 1e-10 relative (max-norm, per leaf, every step).

The problem mixes what the methods treat differently: ``W`` (3 x 5) enters the loss only through
its normalised rows (scale-invariant: AdamP/SGDP project it), ``V`` (4 x 3) and ``b`` (3,) are a
least-squares fit (MARS treats the 2-D ``V`` with its variance reduction and ``b`` with AdamW).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxopt_lab import optim

STEPS = 30
RTOL = 1e-10

_rng = np.random.default_rng(0)
C = _rng.normal(size=(3, 5))
X = _rng.normal(size=(6, 4))
Y = _rng.normal(size=(6, 3))
PARAMS0 = {"W": _rng.normal(size=(3, 5)), "V": 0.5 * _rng.normal(size=(4, 3)),
           "b": 0.1 * _rng.normal(size=3)}


def loss(p):
    u = p["W"] / jnp.linalg.norm(p["W"], axis=1, keepdims=True)
    r = X @ p["V"] + p["b"] - Y
    return jnp.sum(C * u) + 0.5 * jnp.sum(r ** 2) / len(X)


def grad_np(p):
    """The analytic gradient of ``loss`` (numpy, float64): the reference side's own gradient."""
    norm = np.linalg.norm(p["W"], axis=1, keepdims=True)
    u = p["W"] / norm
    r = X @ p["V"] + p["b"] - Y
    return {"W": (C - np.sum(C * u, axis=1, keepdims=True) * u) / norm,
            "V": X.T @ r / len(X), "b": r.sum(0) / len(X)}


def ours(tx, steps=STEPS):
    """Iterates of ``tx`` in float64 (gradients by jax.grad at its own iterates)."""
    with jax.enable_x64(True):
        params = {k: jnp.asarray(v, jnp.float64) for k, v in PARAMS0.items()}

        @jax.jit
        def step(params, state):
            updates, state = tx.update(jax.grad(loss)(params), state, params,
                                       grad_fn=jax.grad(loss))
            return optax.apply_updates(params, updates), state

        state, out = tx.init(params), []
        for _ in range(steps):
            params, state = step(params, state)
            out.append({k: np.asarray(v) for k, v in params.items()})
    return out


def reference(step_fn, state, steps=STEPS):
    """Iterates of the numpy transcription ``step_fn(params, grads, state, t) -> params`` (in place
    on ``state``), ``t`` from 1."""
    params = {k: v.copy() for k, v in PARAMS0.items()}
    out = []
    for t in range(1, steps + 1):
        grads = grad_np(params)
        params = {k: step_fn(k, params[k], grads[k], state[k], t) for k in params}
        out.append({k: v.copy() for k, v in params.items()})
    return out


def max_relative_difference(a, b):
    return max(np.max(np.abs(x[k] - y[k])) / np.max(np.abs(y[k])) for x, y in zip(a, b) for k in y)


def assert_agree(a, b, name):
    difference = max_relative_difference(a, b)
    print(f"{name}: max relative difference over {STEPS} steps {difference:.2e}")
    assert difference < RTOL, f"{name}: {difference:.3e}"
    # the problem must move the iterates, or agreement would say nothing
    assert max_relative_difference(a[-1:], [PARAMS0]) > 1e-3


def zeros_state(*names):
    return {k: {n: np.zeros_like(v) for n in names} for k, v in PARAMS0.items()}


# ------------------------------------------------------------------------------------------------
# AdamP and SGDP: clovaai/AdamP


def _projection(p, grad, perturb, delta, wd_ratio, eps):
    """clovaai/AdamP adamp/adamp.py lines 20-46 (``_channel_view``, ``_layer_view``,
    ``_cosine_similarity``, ``_projection``; sgdp.py has the same). torch's cosine_similarity:
    x.y / (max(|x|, eps) max(|y|, eps)) along dim 1."""
    views = (lambda x: x.reshape(x.shape[0], -1), lambda x: x.reshape(1, -1))
    expand = [-1] + [1] * (p.ndim - 1)
    for view in views:
        x, y = view(grad), view(p)
        cos = np.abs(np.sum(x * y, 1) / (np.maximum(np.linalg.norm(x, axis=1), eps)
                                         * np.maximum(np.linalg.norm(y, axis=1), eps)))
        if cos.max() < delta / np.sqrt(view(p).shape[1]):
            p_n = p / (np.linalg.norm(view(p), axis=1).reshape(expand) + eps)
            perturb = perturb - p_n * np.sum(view(p_n * perturb), axis=1).reshape(expand)
            return perturb, wd_ratio
    return perturb, 1.0


@pytest.mark.parametrize("nesterov", [False, True])
def test_adamp_matches_clovaai(nesterov):
    lr, b1, b2, eps, wd, delta, wd_ratio = 0.01, 0.9, 0.999, 1e-8, 0.01, 0.1, 0.1

    def step(_, p, grad, s, t):  # clovaai/AdamP adamp/adamp.py lines 73-98
        bias_correction1, bias_correction2 = 1 - b1 ** t, 1 - b2 ** t
        s["exp_avg"] = b1 * s["exp_avg"] + (1 - b1) * grad
        s["exp_avg_sq"] = b2 * s["exp_avg_sq"] + (1 - b2) * grad * grad
        denom = np.sqrt(s["exp_avg_sq"]) / np.sqrt(bias_correction2) + eps
        step_size = lr / bias_correction1
        if nesterov:
            perturb = (b1 * s["exp_avg"] + (1 - b1) * grad) / denom
        else:
            perturb = s["exp_avg"] / denom
        ratio = 1.0
        if p.ndim > 1:
            perturb, ratio = _projection(p, grad, perturb, delta, wd_ratio, eps)
        p = p * (1 - lr * wd * ratio)
        return p - step_size * perturb

    expected = reference(step, zeros_state("exp_avg", "exp_avg_sq"))
    got = ours(optim.get("adamp", learning_rate=lr, b1=b1, b2=b2, eps=eps, weight_decay=wd,
                         delta=delta, wd_ratio=wd_ratio, nesterov=nesterov, channel_axis=0))
    assert_agree(got, expected, f"adamp(nesterov={nesterov})")


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgdp_matches_clovaai(nesterov):
    lr, momentum, dampening, eps, wd, delta, wd_ratio = 0.05, 0.9, 0.0, 1e-8, 0.01, 0.1, 0.1

    def step(_, p, grad, s, t):  # clovaai/AdamP adamp/sgdp.py lines 69-86
        s["momentum"] = momentum * s["momentum"] + (1 - dampening) * grad
        d_p = grad + momentum * s["momentum"] if nesterov else s["momentum"]
        ratio = 1.0
        if p.ndim > 1:
            d_p, ratio = _projection(p, grad, d_p, delta, wd_ratio, eps)
        p = p * (1 - lr * wd * ratio / (1 - momentum))
        return p - lr * d_p

    expected = reference(step, zeros_state("momentum"))
    got = ours(optim.get("sgdp", learning_rate=lr, momentum=momentum, dampening=dampening,
                         nesterov=nesterov, eps=eps, weight_decay=wd, delta=delta,
                         wd_ratio=wd_ratio, channel_axis=0))
    assert_agree(got, expected, f"sgdp(nesterov={nesterov})")


# ------------------------------------------------------------------------------------------------
# Lion: lucidrains/lion-pytorch


@pytest.mark.parametrize("name", ["lion", "lion_kappa"])
def test_lion_matches_lucidrains(name):
    lr, b1, b2, wd = 0.01, 0.9, 0.99, 0.1

    def step(_, p, grad, s, t):  # lucidrains/lion-pytorch lion_pytorch/lion_pytorch.py lines 14-26
        p = p * (1 - lr * wd)
        update = np.sign(b1 * s["exp_avg"] + (1 - b1) * grad)
        s["exp_avg"] = b2 * s["exp_avg"] + (1 - b2) * grad
        return p - lr * update

    expected = reference(step, zeros_state("exp_avg"))
    got = ours(optim.get(name, learning_rate=lr, b1=b1, b2=b2, weight_decay=wd))
    assert_agree(got, expected, name)


# ------------------------------------------------------------------------------------------------
# FAdam: no code by the paper's author; kozistr/pytorch-optimizer's FAdam


@pytest.mark.parametrize("clip", [1.0, 2.0])
def test_fadam_matches_pytorch_optimizer(clip):
    """kozistr/pytorch-optimizer pytorch_optimizer/optimizer/fadam.py, ``FAdam.step`` (the statements
    from ``fim.mul_(curr_beta2)`` to ``p.add_(grad_weights, alpha=-lr)``), with
    ``BaseOptimizer.debias_beta``. Its clip divides by ``max(1, rms) / clip``: our
    ``clip_rule="code"``; at ``clip=1`` it is also the paper's rule (our default). Its stabiliser
    ``min(eps, eps_2 rms) ** (2p)`` is ours at the default ``p = 0.5``."""
    lr, b1, b2, wd, eps, eps2, p_exp = 0.01, 0.9, 0.999, 0.1, 1e-8, 0.01, 0.5

    def step(_, p, grad, s, t):
        curr_beta2 = (b2 ** t - b2) / (b2 ** t - 1)
        s["fim"] = curr_beta2 * s["fim"] + (1 - curr_beta2) * grad * grad
        rms_grad = np.sqrt(np.mean(grad ** 2))
        curr_eps = min(eps, eps2 * rms_grad) if rms_grad > 0 else eps
        fim_base = s["fim"] ** p_exp + curr_eps ** (2 * p_exp)
        grad_nat = grad / fim_base
        grad_nat = grad_nat / (max(1, np.sqrt(np.mean(grad_nat ** 2))) / clip)
        s["momentum"] = s["momentum"] + (1 - b1) * (grad_nat - s["momentum"])  # lerp_
        grad_weights = p / fim_base
        grad_weights = grad_weights / (max(1, np.sqrt(np.mean(grad_weights ** 2))) / clip)
        return p - lr * (s["momentum"] + wd * grad_weights)

    expected = reference(step, zeros_state("momentum", "fim"))
    got = ours(optim.get("fadam", learning_rate=lr, b1=b1, b2=b2, weight_decay=wd, eps=eps,
                         eps2=eps2, p=p_exp, clip=clip, clip_rule="code"))
    assert_agree(got, expected, f"fadam(clip={clip}, clip_rule='code')")
    if clip == 1.0:
        default = ours(optim.get("fadam", learning_rate=lr, b1=b1, b2=b2, weight_decay=wd, eps=eps,
                                 eps2=eps2, p=p_exp, clip=clip))
        assert_agree(default, expected, "fadam(clip=1, paper rule)")


# ------------------------------------------------------------------------------------------------
# Grams: Gunale0926/Grams (official)


def test_grams_matches_official():
    lr, b1, b2, eps, wd = 0.01, 0.9, 0.999, 1e-6, 0.01

    def step(_, p, grad, s, t):  # Gunale0926/Grams grams/src/grams.py lines 90-110
        p = p - lr * wd * p
        s["exp_avg"] = b1 * s["exp_avg"] + (1 - b1) * grad
        s["exp_avg_sq"] = b2 * s["exp_avg_sq"] + (1 - b2) * grad * grad
        denom = np.sqrt(s["exp_avg_sq"]) + eps
        step_size = lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        return p - step_size * np.sign(grad) * np.abs(s["exp_avg"]) / denom

    expected = reference(step, zeros_state("exp_avg", "exp_avg_sq"))
    got = ours(optim.get("grams", learning_rate=lr, b1=b1, b2=b2, eps=eps, weight_decay=wd,
                         eps_before_correction=True))
    assert_agree(got, expected, "grams(eps_before_correction=True)")


# ------------------------------------------------------------------------------------------------
# MARS: AGI-Arena/MARS


def test_mars_matches_official():
    lr, b1, b2, eps, gamma, wd = 0.01, 0.95, 0.99, 1e-8, 0.025, 0.01
    lr_1d, b1_1d, b2_1d, wd_1d = 0.02, 0.9, 0.95, 0.1

    def step(_, p, grad, s, t):
        # AGI-Arena/MARS MARS/optimizers/mars.py update_fn lines 15-53 (mars_type="mars-adamw",
        # amsgrad=False, optimize_1d=False) and step lines 187-216 (is_approx: last_grad = grad)
        if p.ndim == 2:
            c_t = (grad - s["last_grad"]) * (gamma * (b1 / (1 - b1))) + grad
            c_t_norm = np.linalg.norm(c_t)
            if c_t_norm > 1:
                c_t = c_t / c_t_norm
            s["exp_avg"] = b1 * s["exp_avg"] + (1 - b1) * c_t
            s["exp_avg_sq"] = b2 * s["exp_avg_sq"] + (1 - b2) * c_t * c_t
            denom = (np.sqrt(s["exp_avg_sq"]) / np.sqrt(1 - b2 ** t) + eps) * (1 - b1 ** t)
            p = p + -lr * (p * wd + s["exp_avg"] / denom)
        else:
            s["exp_avg"] = b1_1d * s["exp_avg"] + (1 - b1_1d) * grad
            s["exp_avg_sq"] = b2_1d * s["exp_avg_sq"] + (1 - b2_1d) * grad * grad
            denom = (np.sqrt(s["exp_avg_sq"]) / np.sqrt(1 - b2_1d ** t) + eps) * (1 - b1_1d ** t)
            p = p + -lr * (lr_1d / lr) * (p * wd_1d + s["exp_avg"] / denom)
        s["last_grad"] = grad
        return p

    expected = reference(step, zeros_state("exp_avg", "exp_avg_sq", "last_grad"))
    got = ours(optim.get("mars", learning_rate=lr, b1=b1, b2=b2, eps=eps, gamma=gamma,
                         weight_decay=wd, b1_1d=b1_1d, b2_1d=b2_1d, weight_decay_1d=wd_1d,
                         lr_1d_factor=lr_1d / lr))
    assert_agree(got, expected, "mars")


# ------------------------------------------------------------------------------------------------
# diffGrad: shivram1987/diffGrad


def test_diffgrad_matches_official():
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-8

    def step(_, p, grad, s, t):  # shivram1987/diffGrad diffGrad_v2.py lines 80-104 (weight_decay=0)
        s["exp_avg"] = b1 * s["exp_avg"] + (1 - b1) * grad
        s["exp_avg_sq"] = b2 * s["exp_avg_sq"] + (1 - b2) * grad * grad
        denom = np.sqrt(s["exp_avg_sq"]) + eps
        dfc = 1.0 / (1.0 + np.exp(-np.abs(s["previous_grad"] - grad)))
        s["previous_grad"] = grad.copy()
        step_size = lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        return p - step_size * s["exp_avg"] * dfc / denom

    expected = reference(step, zeros_state("exp_avg", "exp_avg_sq", "previous_grad"))
    got = ours(optim.get("diffgrad", learning_rate=lr, b1=b1, b2=b2, eps=eps,
                         eps_before_correction=True))
    assert_agree(got, expected, "diffgrad(eps_before_correction=True)")


# ------------------------------------------------------------------------------------------------
# Gravity: dariush-bahrami/gravity.optimizer


@pytest.mark.slow
def test_gravity_matches_official():
    lr, alpha, beta = 0.1, 0.01, 0.9
    tx = optim.get("gravity", learning_rate=lr, alpha=alpha, beta=beta)
    with jax.enable_x64(True):
        # the initial velocity is random on both sides (N(0, (alpha/lr)^2)): the reference starts
        # from ours
        v0 = tx.init({k: jnp.asarray(v, jnp.float64) for k, v in PARAMS0.items()})[0].velocity
    state = {k: {"v": np.asarray(v0[k])} for k in PARAMS0}
    assert 0.05 < np.std(np.concatenate([s["v"].ravel() for s in state.values()])) < 0.2

    def step(_, p, grad, s, t):
        # dariush-bahrami/gravity.optimizer implementations/gravity_optimizer_pytorch.py lines 58-69
        beta_hat = (beta * t + 1) / (t + 2)
        m = 1 / np.max(np.abs(grad))
        zeta = grad / (1 + (grad / m) ** 2)
        s["v"] = beta_hat * s["v"] + (1 - beta_hat) * zeta
        return p - lr * s["v"]

    expected = reference(step, state)
    assert_agree(ours(tx), expected, "gravity")
