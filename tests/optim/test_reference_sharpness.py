"""Step-for-step agreement with the authors' own code: SAM and ASAM (davda54/sam), GSAM
(juntang-zhuang/GSAM) and GAM (xxgege/GAM).

Each reference is a float64 numpy transcription of the official PyTorch optimizer step (file and
lines cited at each function), with torch's SGD with momentum as the base optimizer
(``buf = mu buf + g; p -= lr buf``, optax.trace + learning rate on our side). Both sides run 30
steps on the same fixed problem -- least squares plus a quartic term, so the Hessian varies --
each evaluating gradients at its own iterates (numpy: the closed form; ours: ``jax.grad``), in
float64 (``jax_enable_x64``), and must agree to 1e-10 relative at every step.

The GAM section also shows why GAM, unlike SAM, does not settle at the minimizer of the 2-D
Rosenbrock function: a property of the method's objective, not a defect of the transcription.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxopt_lab import optim
from jaxopt_lab.optim import sharpness as sh

STEPS, TOL, LR, MOMENTUM = 30, 1e-10, 0.05, 0.9


def _problem():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(16, 5))
    y = rng.normal(size=(16, 3))
    init = {"w": 0.5 * rng.normal(size=(5, 3)), "b": 0.5 * rng.normal(size=3)}
    return x, y, init


def _numpy_grad(params, x, y):
    """L = ||X W + b - Y||^2 / (2N) + 0.1 sum W^4."""
    r = (x @ params["w"] + params["b"] - y) / x.shape[0]
    return {"w": x.T @ r + 0.4 * params["w"] ** 3, "b": r.sum(0)}


def _jax_loss(x, y):
    def loss(params):
        r = jnp.asarray(x) @ params["w"] + params["b"] - jnp.asarray(y)
        return 0.5 * jnp.sum(r ** 2) / x.shape[0] + 0.1 * jnp.sum(params["w"] ** 4)
    return loss


def _norm(tree):
    return np.sqrt(sum(np.sum(v ** 2) for v in tree.values()))


def _dot(a, b):
    return sum(np.sum(a[k] * b[k]) for k in a)


def _max_relative_difference(side_by_side, direction, reference_direction):
    """30 steps of chain(direction, trace(MOMENTUM), lr) against the reference direction followed
    by torch SGD(momentum); the largest ||ours - ref|| / ||ref|| over steps and leaves."""
    x, y, init = _problem()
    tx = optax.chain(direction, optax.trace(MOMENTUM), optax.scale_by_learning_rate(LR))
    buf = {}

    def reference_step(ref, t):
        d = reference_direction(ref, lambda p: _numpy_grad(p, x, y))
        for k in ref:  # torch.optim.SGD(momentum): buf = mu buf + d (dampening 0); p -= lr buf
            buf[k] = d[k] if t == 0 else MOMENTUM * buf[k] + d[k]
        return {k: ref[k] - LR * buf[k] for k in ref}

    worst, _ = side_by_side(tx, init, _jax_loss(x, y), reference_step, steps=STEPS, grad_fn=True)
    return worst


# ---------------------------------------------------------------------------------------------
# SAM and ASAM: davda54/sam, sam.py


def _sam_direction(rho, adaptive):
    """SAM.first_step (sam.py L15-27) with _grad_norm (L49-59), then the gradient at w + e(w)
    handed to the base optimizer by second_step (L29-38)."""

    def direction(w, grad):
        g = grad(w)
        norm = _norm({k: (np.abs(w[k]) if adaptive else 1.0) * g[k] for k in g})
        scale = rho / (norm + 1e-12)
        e_w = {k: (w[k] ** 2 if adaptive else 1.0) * g[k] * scale for k in g}
        return grad({k: w[k] + e_w[k] for k in w})

    return direction


def test_sam_matches_davda54(side_by_side):
    worst = _max_relative_difference(side_by_side, sh.scale_by_sam(0.05),
                                     _sam_direction(0.05, adaptive=False))
    assert worst < TOL, worst


def test_asam_matches_davda54_adaptive(side_by_side):
    """davda54's adaptive=True is ASAM with T_w = |w| (eta = 0)."""
    worst = _max_relative_difference(side_by_side, sh.scale_by_asam(0.5, eta=0.0),
                                     _sam_direction(0.5, adaptive=True))
    assert worst < TOL, worst


# ---------------------------------------------------------------------------------------------
# GSAM: juntang-zhuang/GSAM, gsam/gsam.py


def _gsam_direction(rho, alpha, eps=1e-12):
    """GSAM.step (gsam.py L153-183): perturb_weights (L40-53, non-adaptive), the gradient at
    w + e_w, gradient_decompose (L62-85); constant rho_t."""

    def direction(w, grad):
        old_g = grad(w)
        scale = rho / (_norm(old_g) + eps)
        g = grad({k: w[k] + old_g[k] * scale for k in w})
        inner = _dot(old_g, g)
        new_norm, old_norm = _norm(g), _norm(old_g)
        cosine = inner / (new_norm * old_norm + eps)
        return {k: g[k] - alpha * (old_g[k] - cosine * old_norm * g[k] / (new_norm + eps))
                for k in g}

    return direction


def test_gsam_matches_juntang_zhuang(side_by_side):
    worst = _max_relative_difference(side_by_side, sh.scale_by_gsam(0.05, 0.3),
                                     _gsam_direction(0.05, 0.3))
    assert worst < TOL, worst


# ---------------------------------------------------------------------------------------------
# GAM: xxgege/GAM, gam/gam.py


def _gam_direction(rho=0.02, norm_rho=0.2, beta1=1.0, beta2=-1.0, beta3=1.0, gamma=0.03,
                   eps=1e-12):
    """GAM.step (gam.py L197-239): perturb_weights(0) (L47-61), grad at w1; unperturb;
    grad_norm_ascent (L78-98), grad at w2; perturb_weights(1) (L63-73), grad at w3;
    gradient_decompose (L108-135). Defaults are the reference's grad_rho, grad_norm_rho,
    grad_beta_1..3, grad_gamma."""

    def direction(w, grad):
        g0 = grad(w)
        s0 = rho / (_norm(g0) + eps)
        g1 = grad({k: w[k] + g0[k] * s0 for k in w})
        diff = {k: g1[k] - g0[k] for k in w}
        s1 = norm_rho / (_norm(diff) + eps)
        w2 = {k: w[k] + diff[k] * s1 for k in w}
        g2 = grad(w2)
        s2 = rho / (_norm(g2) + eps)
        g3 = grad({k: w2[k] + g2[k] * s2 for k in w})
        pro_m = {k: g0[k] + abs(beta2) * g2[k] for k in w}
        new = {k: beta1 * g1[k] + beta3 * g3[k] for k in w}
        inner = _dot(pro_m, new)
        new_norm, old_norm = _norm(new), _norm(pro_m)
        cosine = inner / (new_norm * old_norm + eps)
        return {k: new[k] - gamma * (pro_m[k] - cosine * old_norm * new[k] / (new_norm + eps))
                for k in w}

    return direction


def test_gam_matches_xxgege(side_by_side):
    worst = _max_relative_difference(side_by_side, sh.scale_by_gam(), _gam_direction())
    assert worst < TOL, worst


def _rosenbrock(w):
    return (1.0 - w[0]) ** 2 + 100.0 * (w[1] - w[0] ** 2) ** 2


@pytest.mark.slow
@pytest.mark.parametrize("x0", [0.3, 0.5, 0.7, 0.9, 0.99])
def test_gam_pushes_away_from_the_rosenbrock_minimizer_along_its_valley(x0):
    """Why GAM (defaults) ends near loss 0.25-1 on Rosenbrock where SAM gets closer: a property of
    its objective, shown with the paper's own construction.

    GAM ("Gradient Norm Aware Minimization Seeks First-Order Flatness and Improves
    Generalization", arXiv:2303.03108) descends L + the first-order flatness
    R(w) = ρ' max_{||δ|| <= ρ'} ||∇L(w + δ)||: its direction adds g3 = ∇L(w2 + ρ ĝ2) with w2 =
    w + ρ' (g1 - g0)/||g1 - g0|| a fixed distance ρ' = 0.2 uphill in gradient norm (the
    reference's grad_norm_rho), and ∇L there is of size ~ρ' λ_max(∇²L). Along Rosenbrock's valley
    w = (x, x²) the loss grows toward the origin only as (1 - x)², while λ_max ≈ 1200 x² + 2
    (1000 at the minimizer) shrinks: R decreases toward the origin much faster than L. So on the
    valley floor the GAM direction's component along the valley tangent t = (1, 2x) points
    toward the origin (d·t > 0: a descent step w - η d moves away from (1, 1)), and by more than
    the loss's own slope |∇L·t| (the loss's gradient points the other way, ∇L·t < 0): there is
    no fixed point near the minimizer, and a constant-step run stalls lower in the valley.
    """
    w = jnp.asarray([x0, x0 * x0], jnp.float32)
    grad = jax.grad(_rosenbrock)
    tx = sh.scale_by_gam()
    d, _ = tx.update(grad(w), tx.init(w), w, grad_fn=grad)
    t = np.array([1.0, 2.0 * x0]) / np.hypot(1.0, 2.0 * x0)
    loss_slope = float(np.asarray(grad(w)) @ t)
    assert loss_slope < 0  # the loss decreases toward (1, 1) along the valley
    assert float(np.asarray(d) @ t) > abs(loss_slope)  # GAM's pull toward the origin is stronger
