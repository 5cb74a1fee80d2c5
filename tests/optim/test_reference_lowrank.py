"""Step-for-step agreement with the authors' own code: GaLore, Fira, Subset-Norm + Subspace-Momentum.

Each reference below is a float64 numpy transcription of the *official* PyTorch optimizer step
(repository, file and lines cited at each function). Both sides run 30 steps on the same fixed
least-squares problem, each computing its gradients at its own iterate (numpy: the closed form;
ours: ``jax.grad``), in float64 (``jax_enable_x64``), and the iterates must agree to 1e-10
relative at every step.

SVD signs. A singular vector is defined up to sign. GaLore and Fira keep their Adam moments across
a projector refresh, so a flipped sign would change the trajectory; the references therefore take
their SVD with numpy's float64 LAPACK routine of the *same* matrix our code decomposes (G itself,
``svd(G)``: Vh[:r] when m >= n, U[:, :r] otherwise, as ``get_orthogonal_matrix``), and the
refreshes (every 10 steps) are inside the 30 compared steps. Should the two LAPACK builds ever
disagree on a sign, these tests fail at the first refresh after step 0, not silently. Subset-Norm
resets its momentum at a refresh, so its trajectory does not depend on the signs at all.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxopt_lab import optim

STEPS, TOL = 30, 1e-10
SHAPES = {"tall": (10, 6), "wide": (6, 10)}


def _problem():
    """Per matrix W: L = ||X W - Y||^2 / (2N), X (N x m) and Y (N x n) fixed."""
    rng = np.random.default_rng(0)
    data = {}
    for name, (m, n) in SHAPES.items():
        x = rng.normal(size=(20, m))
        data[name] = (x, rng.normal(size=(20, n)) + x @ rng.normal(size=(m, n)))
    init = {name: 0.1 * rng.normal(size=shape) for name, shape in SHAPES.items()}
    return data, init


def _numpy_grads(params, data):
    return {k: x.T @ (x @ params[k] - y) / x.shape[0] for k, (x, y) in data.items()}


def _jax_loss(data):
    def loss(params):
        return sum(0.5 * jnp.sum((jnp.asarray(x) @ params[k] - jnp.asarray(y)) ** 2) / x.shape[0]
                   for k, (x, y) in data.items())
    return loss


def _max_relative_difference(side_by_side, tx, reference_step):
    """Run both sides STEPS steps; the largest ||ours - ref|| / ||ref|| over steps and leaves."""
    data, init = _problem()
    state = {}
    worst, _ = side_by_side(tx, init, _jax_loss(data),
                            lambda ref, t: reference_step(ref, _numpy_grads(ref, data), state),
                            steps=STEPS)
    return worst


# ---------------------------------------------------------------------------------------------
# GaLore and Fira: jiaweizzhao/GaLore and xichen-fy/Fira


def _orthogonal_matrix(g, rank):
    """``get_orthogonal_matrix`` (GaLore galore_torch/galore_projector.py; Fira
    optimizer_torch/gradient_projection.py L93-126) with proj_type 'std': m >= n -> 'right'
    (Vh[:r], r x n), else 'left' (U[:, :r], m x r)."""
    u, _, vh = np.linalg.svd(g, full_matrices=False)
    return vh[:rank] if g.shape[0] >= g.shape[1] else u[:, :rank]


def _project(p, g):
    """GaLoreProjector.project, 'std' (galore_projector.py L12-21): G Pᵀ or Pᵀ G."""
    return g @ p.T if g.shape[0] >= g.shape[1] else p.T @ g


def _project_back(p, low, scale):
    """GaLoreProjector.project_back, 'std' (galore_projector.py L46-51, Fira
    gradient_projection.py L67-90): the result times ``scale`` (alpha)."""
    return (low @ p if low.shape[0] >= low.shape[1] else p @ low) * scale


def _galore_family_step(lr, rank, gap, scale, b1=0.9, b2=0.999, eps=1e-6, fira=False):
    """One AdamW.step of galore_torch/adamw.py L79-135 (GaLore) or optimizer_torch/fira_adamw.py
    L77-153 (Fira), weight decay 0, for every (projected) matrix."""

    def step(params, grads, state):
        out = {}
        for k, w in params.items():
            g = grads[k]
            s = state.setdefault(k, {"step": 0})
            if "ortho" not in s or s["step"] % gap == 0:               # project(grad, step)
                s["ortho"] = _orthogonal_matrix(g, rank)
            low = _project(s["ortho"], g)
            s.setdefault("exp_avg", np.zeros_like(low))
            s.setdefault("exp_avg_sq", np.zeros_like(low))
            s["step"] += 1
            s["exp_avg"] = b1 * s["exp_avg"] + (1 - b1) * low
            s["exp_avg_sq"] = b2 * s["exp_avg_sq"] + (1 - b2) * low * low
            denom = np.sqrt(s["exp_avg_sq"]) + eps
            step_size = lr * np.sqrt(1 - b2 ** s["step"]) / (1 - b1 ** s["step"])
            norm_grad = s["exp_avg"] / denom
            if fira:  # fira_adamw.py L124-149
                subgrad = _project_back(s["ortho"], low, scale)
                norm_dim = 0 if norm_grad.shape[0] < norm_grad.shape[1] else 1
                factor = (np.linalg.norm(norm_grad, axis=norm_dim)
                          / (np.linalg.norm(low, axis=norm_dim) + 1e-8))
                if norm_dim == 1:
                    factor = factor[:, None]
                scaling_grad = (g - subgrad) * factor
                if "scaling_grad" in s:
                    grad_norm = np.linalg.norm(scaling_grad)
                    limiter = max(grad_norm / (s["scaling_grad"] + 1e-8), 1.01) / 1.01
                    scaling_grad = scaling_grad / limiter
                    s["scaling_grad"] = grad_norm / limiter
                else:
                    s["scaling_grad"] = np.linalg.norm(scaling_grad)
                norm_grad = _project_back(s["ortho"], norm_grad, scale) + scaling_grad
            else:
                norm_grad = _project_back(s["ortho"], norm_grad, scale)
            out[k] = w - step_size * norm_grad
        return out

    return step


@pytest.mark.slow
def test_galore_matches_the_official_code(side_by_side):
    lr, rank, gap, scale = 0.05, 2, 10, 0.25
    worst = _max_relative_difference(side_by_side, optim.galore(lr, rank, gap, scale),
                                     _galore_family_step(lr, rank, gap, scale))
    assert worst < TOL, worst


@pytest.mark.parametrize("scale", [0.25, 1.0])
def test_fira_matches_the_official_code(scale, side_by_side):
    """Fira with the official residual G − α P R (α = 0.25, its default scale, and α = 1) and the
    limiter on the un-corrected m/(√v + ε); the bias correction only in the step size."""
    lr, rank, gap = 0.05, 2, 10
    worst = _max_relative_difference(side_by_side, optim.fira(lr, rank, gap, scale),
                                     _galore_family_step(lr, rank, gap, scale, fira=True))
    assert worst < TOL, worst


# ---------------------------------------------------------------------------------------------
# Q-GaLore: VITA-Group/Q-GaLore (simulation mode, the one its scripts/pretrain_c4/simulation use)


def _minmax_quantize(w, group_size, n_bit):
    """``_quantize`` (q_galore_torch/q_galore_projector_simulate.py L152-172, the same as
    q_galore_adamw8bit_simulate.py L104-127 before its dequantization): codes, scales, zeros."""
    w = w.reshape(-1, group_size)
    max_val, min_val = w.max(axis=1, keepdims=True), w.min(axis=1, keepdims=True)
    max_int = 2 ** n_bit - 1
    scales = np.maximum(max_val - min_val, 1e-5) / max_int
    zeros = np.clip(-np.round(min_val / scales), 0, max_int)
    return np.clip(np.round(w / scales) + zeros, 0, max_int), scales, zeros


def _stochastic_round(w, group_size, n_bit, random):
    """``_quantize_stochastic_round`` (q_galore_adamw8bit_simulate.py L130-163); ``random`` is
    the uniform noise torch.rand_like would draw (here: the draws of our transform, fed to both
    sides so that the rounding decisions can be compared)."""
    shape = w.shape
    w = w.reshape(-1, group_size)
    max_val, min_val = w.max(axis=1, keepdims=True), w.min(axis=1, keepdims=True)
    max_int = 2 ** n_bit - 1
    scales = np.maximum(max_val - min_val, 1e-5) / max_int
    zeros = np.clip(-np.round(min_val / scales), 0, max_int)
    w_round = w / scales
    up, down = np.ceil(w_round), np.floor(w_round)
    w = np.where(random < w_round - down, up, down)
    w = np.clip(w + zeros, 0, max_int)
    return ((w - zeros) * scales).reshape(shape)


def _cosine_similarity(x1, x2, eps=1e-8):
    """torch.nn.functional.cosine_similarity(x1, x2, dim=0) for vectors."""
    return float(np.sum(x1 / max(np.linalg.norm(x1), eps) * (x2 / max(np.linalg.norm(x2), eps))))


def _q_galore_step(lr, rank, gap, scale, proj_bits, proj_group, cos_threshold, gamma_proj,
                   queue_size, weight_bits, weight_group, seed, b1=0.9, b2=0.999, eps=1e-8):
    """One AdamW8bit.step of q_galore_adamw8bit_simulate.py (L16-97; weight decay 0) per matrix:

    - GaLoreProjector.project (q_galore_projector_simulate.py L32-93), proj_type 'std', quant
      on: at a refresh the float SVD basis, the cosine of its first vector with the previous
      one into the queue, the gap multiplied by gamma_proj when the full queue's mean reaches
      cos_threshold (L39-45 / L67-73), then ``_quantize`` (L48-49); the projection with the
      dequantized basis scales * (codes - zeros) (L53-55);
    - bitsandbytes' Adam on the low-rank gradient with p.data zeroed (L60-74): for fewer than
      min_8bit_size = 4096 entries the state is float32 and the step is kOptimizer32bit2State's
      ADAM case (bitsandbytes csrc/kernels.cu): p += -lr·c2/c1 · m/(√v + ε·c2),
      c1 = 1 − β1ᵗ, c2 = √(1 − β2ᵗ);
    - project_back (q_galore_projector_simulate.py L95-108): the update times scale, added to
      the saved weight (L77-79);
    - the weight put back on its int8 grid by ``_quantize_stochastic_round`` (L88-93).
    """
    def step(params, grads, state):
        out = {}
        for index, (k, w) in enumerate(sorted(params.items())):
            g = grads[k]
            s = state.setdefault(k, {"step": 0, "gap": gap, "queue": [], "past": None,
                                     "exp_avg": 0.0, "exp_avg_sq": 0.0})
            right = g.shape[0] >= g.shape[1]
            if "ortho" not in s or s["step"] % s["gap"] == 0:
                u, _, vh = np.linalg.svd(g, full_matrices=False)
                float_ortho = vh[:rank] if right else u[:, :rank]
                first = (float_ortho[:1, :] if right else float_ortho[:, :1]).flatten()
                if s["past"] is not None:
                    if len(s["queue"]) == queue_size:
                        s["queue"].pop(0)
                    s["queue"].append(_cosine_similarity(s["past"], first))
                    if (len(s["queue"]) == queue_size
                            and sum(s["queue"]) / queue_size >= cos_threshold):
                        s["gap"] = int(s["gap"] * gamma_proj)
                s["past"] = first
                s["ortho"] = _minmax_quantize(float_ortho, proj_group, proj_bits), float_ortho.shape
            (codes, scales, zeros), shape = s["ortho"]
            ortho = (scales * (codes - zeros)).reshape(shape)
            low = g @ ortho.T if right else ortho.T @ g
            s["step"] += 1
            t = s["step"]
            s["exp_avg"] = s["exp_avg"] * b1 + (1 - b1) * low
            s["exp_avg_sq"] = s["exp_avg_sq"] * b2 + (1 - b2) * low * low
            correction1, correction2 = 1 - b1 ** t, np.sqrt(1 - b2 ** t)
            update = (-lr * correction2 / correction1) * (
                s["exp_avg"] / (np.sqrt(s["exp_avg_sq"]) + eps * correction2))
            back = (update @ ortho if update.shape[0] >= update.shape[1] else ortho @ update)
            w = w + back * scale
            key = jax.random.fold_in(jax.random.fold_in(jax.random.PRNGKey(seed), index), t - 1)
            random = np.asarray(jax.random.uniform(key, (w.size // weight_group, weight_group),
                                                   jnp.float64))
            out[k] = _stochastic_round(w, weight_group, weight_bits, random)
        return out

    return step


@pytest.mark.slow
def test_q_galore_matches_the_official_code(side_by_side):
    """4-bit projector in groups of 4 (12-entry bases: 3 groups along the official 'right'
    matrix Vh[:r] of the tall leaf, across U[:, :r]'s rows of the wide one), int8 weights with
    stochastic rounding in groups of 12, and the adaptive gap: T = 2 growing x2 when the mean of
    the last 2 cosines is >= 0.4, which both sides must do alike (checked: the gaps grow)."""
    lr, rank, gap, scale = 0.05, 2, 2, 0.25
    options = dict(proj_bits=4, proj_group=4, cos_threshold=0.4, gamma_proj=2, queue_size=2,
                   weight_bits=8, weight_group=12, seed=3)
    tx = optim.q_galore(lr, rank, gap, scale, projector_group_size=4, cos_threshold=0.4,
                        gap_growth=2, cos_window=2, weight_group_size=12, seed=3)
    data, init = _problem()
    ref_state = {}
    reference = _q_galore_step(lr, rank, gap, scale, **options)
    worst, state = side_by_side(tx, init, _jax_loss(data),
                                lambda ref, t: reference(ref, _numpy_grads(ref, data), ref_state),
                                steps=STEPS)
    assert worst < TOL, worst
    projectors = state[0][0].projectors
    gaps = {k: int(projectors[k].gap) for k in SHAPES}
    assert gaps == {k: ref_state[k]["gap"] for k in SHAPES}
    assert all(g > gap for g in gaps.values()), gaps   # the adaptive gap was exercised


@pytest.mark.slow
def test_q_galore_without_the_adaptive_gap_is_not_the_official_update(side_by_side):
    """The reference test can tell the options apart: a fixed gap differs from the official run."""
    lr, rank, gap, scale = 0.05, 2, 2, 0.25
    options = dict(proj_bits=4, proj_group=4, cos_threshold=0.4, gamma_proj=2, queue_size=2,
                   weight_bits=8, weight_group=12, seed=3)
    tx = optim.q_galore(lr, rank, gap, scale, projector_group_size=4, cos_threshold=None,
                        weight_group_size=12, seed=3)
    worst = _max_relative_difference(side_by_side, tx, _q_galore_step(lr, rank, gap, scale,
                                                                      **options))
    assert worst > 1e-3, worst


# ---------------------------------------------------------------------------------------------
# Online Subspace Descent: kyleliang919/Online-Subspace-Descent


def _osd_step(lr, rank, gap, scale, b1=0.9, b2=0.999, eps=1e-6, p_wd=0.01, p_eps=1e-8):
    """AdamW.step (galore_torch/adamw.py L64-121, weight decay 0, constant lr so that
    update_proj_stepsize_ratio = 1) with GaLoreProjector proj_type 'continuous'
    (galore_torch/galore_projector.py): at step 0 ``get_orthogonal_matrix`` (L168-198) and a
    torch.optim.AdamW on it (lr = 1/update_proj_gap, betas (0.9, 0.999), eps 1e-8, weight decay
    0.01; L79/L117); afterwards ``project`` (L70-92 right, L96-117 left) takes the gradient of
    ‖Ĝ PᵀP − Ĝ‖² ('right', P = r × n) or ‖P PᵀĜ − Ĝ‖² ('left', P = m × r), Ĝ = G/‖G‖, at the
    current P and projects with it; ``project_back`` (L139-143) maps back with the same P and
    then steps the AdamW on P (at step 0 without a gradient: torch skips the parameter)."""

    def torch_adamw(p, grad, s):
        """torch.optim.AdamW's single-tensor step."""
        s["t"] += 1
        p = p * (1 - (1 / gap) * p_wd)
        s["m"] = b1 * s["m"] + (1 - b1) * grad
        s["v"] = b2 * s["v"] + (1 - b2) * grad * grad
        step_size = (1 / gap) / (1 - b1 ** s["t"])
        denom = np.sqrt(s["v"]) / np.sqrt(1 - b2 ** s["t"]) + p_eps
        return p - step_size * s["m"] / denom

    def step(params, grads, state):
        out = {}
        for k, w in params.items():
            g = grads[k]
            s = state.setdefault(k, {"step": 0})
            right = g.shape[0] >= g.shape[1]
            p_grad = None
            if "ortho" not in s:
                u, _, vh = np.linalg.svd(g, full_matrices=False)
                s["ortho"] = vh[:rank] if right else u[:, :rank]
                s["p_opt"] = {"t": 0, "m": np.zeros_like(s["ortho"]),
                              "v": np.zeros_like(s["ortho"])}
            else:
                p, g_hat = s["ortho"], g / np.linalg.norm(g)
                if right:   # d/dP ‖Ĝ PᵀP − Ĝ‖² = 2 P (A + Aᵀ), A = Ĝᵀ(Ĝ PᵀP − Ĝ)
                    a = g_hat.T @ (g_hat @ p.T @ p - g_hat)
                    p_grad = 2 * p @ (a + a.T)
                else:       # d/dP ‖P PᵀĜ − Ĝ‖² = 2 (B + Bᵀ) P, B = (P PᵀĜ − Ĝ) Ĝᵀ
                    b = (p @ p.T @ g_hat - g_hat) @ g_hat.T
                    p_grad = 2 * (b + b.T) @ p
            low = g @ s["ortho"].T if right else s["ortho"].T @ g
            s.setdefault("exp_avg", np.zeros_like(low))
            s.setdefault("exp_avg_sq", np.zeros_like(low))
            s["step"] += 1
            s["exp_avg"] = b1 * s["exp_avg"] + (1 - b1) * low
            s["exp_avg_sq"] = b2 * s["exp_avg_sq"] + (1 - b2) * low * low
            denom = np.sqrt(s["exp_avg_sq"]) + eps
            step_size = lr * np.sqrt(1 - b2 ** s["step"]) / (1 - b1 ** s["step"])
            norm_grad = _project_back(s["ortho"], s["exp_avg"] / denom, scale)
            if p_grad is not None:
                s["ortho"] = torch_adamw(s["ortho"], p_grad, s["p_opt"])
            out[k] = w - step_size * norm_grad
        return out

    return step


def test_online_subspace_descent_matches_the_official_code(side_by_side):
    """P from the SVD at step 0, then one AdamW step per step on the online-PCA loss, applied
    after P has been used (the official order), 30 steps, both orientations."""
    lr, rank, gap, scale = 0.05, 2, 10, 0.25
    worst = _max_relative_difference(side_by_side,
                                     optim.online_subspace_descent(lr, rank, gap, scale),
                                     _osd_step(lr, rank, gap, scale))
    assert worst < TOL, worst


# ---------------------------------------------------------------------------------------------
# FRUGAL: the official code (frugal/ of the FRUGAL repository, philip-zmushko/FRUGAL, as stored
# in the public code index: proj_optimizer_templates.py, galore_projector.py, adamw.py)


def _frugal_step(lr, density, gap, proj_lr_scale, inactive_lr_scale, rule, reset,
                 b1=0.9, b2=0.999, eps=1e-8):
    """GaloreAdamW.step: ProjOptimizer.step (proj_optimizer_templates.py) with weight decay 0.

    - _update_states_if_necessary: when the group's first parameter has no step yet or its
      step is a multiple of update_gap, every parameter's GaLoreProjector.update_proj(grad)
      (galore_projector.py: 'std' side, rank = round(side · density), SVD Vh[:r] ('right',
      m >= n) or U[:, :r] ('left')), and with reset_statistics AdamW._init_state (step 0,
      zero moments);
    - step += 1; GaloreOptimizer._proj_params_update: AdamW._compute_update (adamw.py) on
      project_down(grad) with lr · proj_params_lr_scale -- m/(√v/√(1 − β2ᵗ) + ε) · lr/(1 − β1ᵗ)
      --, project_up, plus −lr·proj_params_lr_scale·inactive_lr_scale times sign (or the
      identity) of grad − project_up(project_down(grad)).
    """
    def step(params, grads, state):
        first = state.get(sorted(params)[0])
        if first is None or first["step"] % gap == 0:
            for k in params:
                g, s = grads[k], state.setdefault(k, {})
                right = g.shape[0] >= g.shape[1]
                rank = round((g.shape[1] if right else g.shape[0]) * density)
                u, _, vh = np.linalg.svd(g, full_matrices=False)
                s["ortho"] = vh[:rank] if right else u[:, :rank]
                if "step" not in s or reset:
                    low_shape = (g.shape[0], rank) if right else (rank, g.shape[1])
                    s.update(step=0, exp_avg=np.zeros(low_shape), exp_avg_sq=np.zeros(low_shape))
        out = {}
        for k, w in params.items():
            g, s = grads[k], state[k]
            right = g.shape[0] >= g.shape[1]
            down = (lambda x: x @ s["ortho"].T) if right else (lambda x: s["ortho"].T @ x)
            up = (lambda x: x @ s["ortho"]) if right else (lambda x: s["ortho"] @ x)
            s["step"] += 1
            low = down(g)
            s["exp_avg"] = s["exp_avg"] * b1 + low * (1 - b1)
            s["exp_avg_sq"] = s["exp_avg_sq"] * b2 + low * low * (1 - b2)
            active_lr = lr * proj_lr_scale
            step_size = active_lr / (1 - b1 ** s["step"])
            denom = np.sqrt(s["exp_avg_sq"]) / np.sqrt(1 - b2 ** s["step"]) + eps
            update = up(s["exp_avg"] / denom * (-step_size))
            inactive = g - up(low)
            inactive_lr = lr * proj_lr_scale * inactive_lr_scale
            update = update - inactive_lr * (np.sign(inactive) if rule == "sign_sgd" else inactive)
            out[k] = w + update
        return out

    return step


@pytest.mark.parametrize("rule, reset", [("sign_sgd", True), ("sgd", False)])
def test_frugal_matches_the_official_code(rule, reset, side_by_side):
    """Density 1/3 (rank 2 of the short side 6), refresh every 10 steps, state-full learning-rate
    scale 0.5 and state-free scale 0.3 (the state-free step is lr · 0.5 · 0.3, as the official
    code); with and without the reset of Adam's statistics at a refresh."""
    lr, density, gap, proj_scale, inactive_scale = 0.05, 1 / 3, 10, 0.5, 0.3
    tx = optim.frugal(lr, density, gap, proj_params_lr_scale=proj_scale,
                      inactive_lr_scale=inactive_scale, inactive_update_rule=rule,
                      reset_statistics=reset, min_dim=1)
    worst = _max_relative_difference(side_by_side, tx,
                                     _frugal_step(lr, density, gap, proj_scale, inactive_scale,
                                                  rule, reset))
    assert worst < TOL, worst


# ---------------------------------------------------------------------------------------------
# Subset-Norm + Subspace-Momentum: timmytonga/sn-sm


def _snsm_step(lr, rank, b1=0.9, b2=0.999, eps=1e-6):
    """GenericOptim.step (GenericOptim.py L112-149) with momentum_type='sm' (subspace_momentum.py
    L7-38, SVDProjector 'svd' of projectors/svd_projector.py L92-104, L139-143) and
    second_moment_type='sn' with subset_size='heuristics' (subset_norm.py L5-37); weight decay 0.

    The official projector refreshes when the 1-based step is a multiple of the gap (and resets
    the momentum one step late, a quirk of its in-place update); with a gap beyond the 30
    compared steps only the first SVD happens on both sides, so those details do not enter."""

    def step(params, grads, state):
        out = {}
        for k, w in params.items():
            g = grads[k]
            s = state.setdefault(k, {"step": 0})
            s["step"] += 1
            # numerator: subspace momentum
            if "ortho" not in s:
                s["ortho"] = _orthogonal_matrix(g, rank)
            proj_grad = _project(s["ortho"], g)
            s.setdefault("exp_avg", np.zeros_like(proj_grad))
            s["exp_avg"] = b1 * s["exp_avg"] + (1 - b1) * proj_grad
            numerator = (_project_back(s["ortho"], s["exp_avg"], 1.0)
                         + (g - _project_back(s["ortho"], proj_grad, 1.0)))
            # denominator: subset norm, heuristics (one subset per long-side index)
            reduce_dim = 0 if g.shape[0] >= g.shape[1] else 1
            second = np.sum(g ** 2, axis=1 - reduce_dim, keepdims=True)
            s.setdefault("exp_avg_sq", np.zeros_like(second))
            s["exp_avg_sq"] = b2 * s["exp_avg_sq"] + (1 - b2) * second
            denom = np.sqrt(s["exp_avg_sq"]) + eps
            step_size = lr * np.sqrt(1 - b2 ** s["step"]) / (1 - b1 ** s["step"])
            out[k] = w - step_size * numerator / denom
        return out

    return step


def test_subset_norm_subspace_momentum_matches_the_official_code(side_by_side):
    lr, rank = 0.05, 2
    worst = _max_relative_difference(side_by_side,
                                     optim.subset_norm(lr, rank, update_proj_gap=1000),
                                     _snsm_step(lr, rank))
    assert worst < TOL, worst



# ---------------------------------------------------------------------------------------------
# SMMF: KwangryeolPark/Official.SMMF


def _smmf_step(lr, beta=0.9, eps=1e-8, decay_rate=-0.5, growth_rate=0.999):
    """SMMF.step (SMMF/SMMF.py L50-70; vector_reshape=True, weight decay 0) with
    _factorized_adam (L73-127), _get_effective_shape (L168-180), _decompression / _compression
    (L183-199) and the rank-1 _nnmf (L206-220) that normalises the shorter side's sums."""

    def effective_shape(numel):
        if int(numel ** 0.5) ** 2 == numel:
            return (int(numel ** 0.5),) * 2
        for i in reversed(range(1, int(numel ** 0.5) + 1)):
            if numel % i == 0:
                return (numel // i, i)
        return (numel, 1)

    def nnmf(matrix):
        row, col = matrix.sum(1), matrix.sum(0)
        if matrix.shape[0] < matrix.shape[1]:
            row = row / row.sum() if row.sum() != 0 else row
        else:
            col = col / col.sum() if col.sum() != 0 else col
        return row, col

    def step(params, grads, state):
        out = {}
        for k, w in params.items():
            s = state.get(k)
            if s is None:
                shape = effective_shape(w.size)
                s = state[k] = {"step": 1, "shape": shape, "m": (np.zeros(shape[0]), np.zeros(shape[1])),
                                "sign": np.zeros(shape, bool),
                                "v": (np.zeros(shape[0]), np.zeros(shape[1]))}
            g = grads[k].reshape(s["shape"])
            m = np.outer(*s["m"])
            m = np.where(s["sign"], m, -m)
            v = np.outer(*s["v"])
            beta_m = beta * growth_rate ** (s["step"] - 1.0)
            m = beta_m * m + (1 - beta_m) * g
            beta_v = 1.0 - s["step"] ** decay_rate
            v = beta_v * v + (1 - beta_v) * g ** 2
            s["sign"], s["m"], s["v"] = m > 0, nnmf(np.abs(m)), nnmf(v)
            s["step"] += 1.0
            out[k] = w - lr * (m / (np.sqrt(v) + eps)).reshape(w.shape)
        return out

    return step


def test_smmf_matches_the_official_code(side_by_side):
    """Both matrices: 60 entries -> effective 10 x 6 (not square, rows the larger side)."""
    worst = _max_relative_difference(side_by_side, optim.smmf(0.01), _smmf_step(0.01))
    assert worst < TOL, worst
