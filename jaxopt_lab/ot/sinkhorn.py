r"""Sinkhorn's algorithm on ott-jax problems: log-domain stable, kernel-domain fast.

Entropic OT with (optionally KL-relaxed) marginals, in ott-jax's parameterisation::

    min_P <C, P> + eps KL(P | a b^T) + rho_a KL(P 1 | a) + rho_b KL(P^T 1 | b),   rho = eps tau / (1 - tau),

(tau = 1: the marginal is a hard constraint). Its dual is solved by alternating block maximisation, the
log-domain updates (with ``LSE_i`` the log-sum-exp over the row index)

    g_j <- tau_b (eps log b_j - eps LSE_i((f_i - C_ij) / eps)),
    f_i <- tau_a (eps log a_i - eps LSE_j((g_j - C_ij) / eps)),

and the plan is ``P_ij = exp((f_i + g_j - C_ij) / eps)``. Epsilon belongs to the geometry: an ott
``Epsilon(target, init, decay)`` scheduler gives epsilon scaling, eps_t = max(init decay^t, 1) target,
with the potentials warm-started from one eps to the next.

Two ways to run the same updates (``lse_mode``):

* ``lse_mode=True``: the updates above, one exp per entry of C per half-step -- always stable.
* ``lse_mode=False`` (default), stabilised kernel scaling ("Stabilized Sparse Scaling Algorithms for
  Entropy Regularized Transport Problems", Schmitzer, arXiv:1610.06519, Alg. 2): keep absorbed
  potentials (f, g), the kernel ``K_ij = exp((f_i + g_j - C_ij)/eps)`` and scalings (u, v), so that the
  current potentials are ``f + eps log u``, ``g + eps log v``. A half-step is then a matrix-vector
  product ``v <- (b / K^T u)^tau_b exp((tau_b - 1) g / eps)`` -- no exponentials, about 2-3x cheaper than
  a log-domain half-step on a CPU. Whenever a new scaling leaves ``[-max_log_scaling, max_log_scaling]``
  in log space, is not finite (underflow at small eps), or eps changed (scaling), that half-step is done
  in the log domain instead, and the result is absorbed into (f, g) and a fresh K (one exp per entry, the
  same cost as a log-domain half-step). Entries of K lost to underflow (below the dtype's ``tiny``)
  stand for plan entries below ``tiny exp(2 max_log_scaling)``, ``tiny^(1/3)`` at the default bound. Near convergence the scalings stay
  close to one, so almost every step is a cheap one. The choice is made by ``_loop.update_if`` rather
  than ``lax.cond``, which would copy K at every half-step.

Batches: under ``jax.vmap`` the kernel-mode loop sees its batch (``_loop.batch_aware``). A log-domain
half-step costs the whole batch its exponentials whenever one problem needs it, so when one problem must
absorb, every problem whose scalings have drifted past a quarter of the bound absorbs with it (the same
update, done in the log domain): their scalings restart from one, and the next batch-wide absorption
comes later. Measured on 256 point-cloud problems (n = 64, plain Sinkhorn): 4 absorbing half-steps for
the batch instead of 50 when each problem decided for itself. Problems close to convergence, whose
scalings stay near one, do not join: an absorption has the log domain's float32 rounding, which, repeated
at every step, would hold their error at the log domain's noise floor. A problem that has converged
keeps its result and no longer asks for absorptions, so the answers are those of a loop over the problems
up to rounding (a converged flag or iteration count can differ by one block at the threshold).

The error, every ``inner_iterations`` steps, is ott-jax's: ``||P^T 1 - b||_1`` for balanced problems (the
f-update makes ``P 1 = a`` exact), and the norm of the dual gradient for unbalanced ones,
``||P 1 - a e^{-f/rho_a}||_1 + ||P^T 1 - b e^{-g/rho_b}||_1``.

Gradients: ``implicit_diff=True`` differentiates the potentials through the optimality condition
(dual gradient = 0) with ``jax.lax.custom_root``, solving the linear system with the (negative) dual
Hessian ``(1/eps)[[diag(P1), P], [P^T, diag(P^T 1)]]`` (+ the KL terms) by matrix-free conjugate
gradient; ``implicit_diff=False`` back-propagates through the unrolled iterations.

References: "Sinkhorn Distances: Lightspeed Computation of Optimal Transport" (Cuturi, arXiv:1306.0895);
ott-jax (``ott.solvers.linear.sinkhorn``), whose conventions this follows.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import warnings
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float
from ott.math import unbalanced_functions as uf
from ott.problems.linear import linear_problem

from .. import _loop
from ._geom import check_block_size, cost_operator, is_online, log_half_step
from .output import OTOutput, compute_dtype, invalid_input, raise_if_failed, static_field, validate_problem

__all__ = ["Sinkhorn", "OTOutput", "validate_problem", "dual_gradient"]

_static = static_field
# An error this many times above the smallest one seen stops the loop with status "diverged".
DIVERGENCE_FACTOR = 1e6
# Marginal error below which a float32 log-domain solve may stall (measured: see Sinkhorn's docstring).
LOG_FLOOR_FLOAT32 = 1e-6


def _log_marginal(w):
    # log with log(0) = -inf and a finite gradient elsewhere (the inner where keeps reverse mode free of
    # 0 * inf = NaN). Zero-mass entries give -inf potentials (rows / columns of P that are exactly
    # zero), as in ott-jax. A NaN or negative weight (an invalid traced input, see
    # ``output.invalid_input``) stays NaN, so the solve ends with status "nonfinite".
    return jnp.where(w > 0, jnp.log(jnp.where(w > 0, w, 1.0)), jnp.where(w == 0, -jnp.inf, jnp.nan))


def dual_gradient(f: Float[Array, "n"], g: Float[Array, "m"], prob: linear_problem.LinearProblem,
                  cost: Optional[jax.Array] = None, epsilon: Optional[jax.Array] = None):
    r"""Gradient of the (concave) entropic dual at (f, g): ``(a e^{-f/rho_a} - P 1, b e^{-g/rho_b} - P^T 1)``.

    (``a - P 1``, ``b - P^T 1`` for tau = 1.) It vanishes exactly at the optimal potentials.
    """
    cost = prob.geom.cost_matrix if cost is None else cost
    eps = prob.geom.epsilon if epsilon is None else epsilon
    p = jnp.exp((f[:, None] + g[None, :] - cost) / eps)
    target_a = uf.grad_of_marginal_fit(prob.a, f, prob.tau_a, eps)
    target_b = uf.grad_of_marginal_fit(prob.b, g, prob.tau_b, eps)
    return target_a - p.sum(axis=1), target_b - p.sum(axis=0)


def _dot(x, y):
    return sum(jnp.vdot(a, b) for a, b in zip(jax.tree.leaves(x), jax.tree.leaves(y)))


def conjugate_gradient(matvec, rhs, precond=None, *, tol: float = 1e-7, max_iterations: int = 100):
    r"""Preconditioned conjugate gradient for ``matvec(x) = rhs`` (symmetric PSD), on pytrees.

    Stops when ``||r|| <= tol ||rhs||`` or after ``max_iterations``; returns ``(x, iterations)``. A plain
    ``lax.while_loop``: wrap it in ``lax.custom_linear_solve`` where it must be transposed.
    """
    precond = (lambda r: r) if precond is None else precond
    add = lambda x, y, c: jax.tree.map(lambda xi, yi: xi + c * yi, x, y)  # noqa: E731
    x = jax.tree.map(jnp.zeros_like, rhs)
    r = rhs
    z = precond(r)
    stop = (tol ** 2) * _dot(rhs, rhs)

    def cond(carry):
        _, r, _, _, rz, k = carry
        return (k < max_iterations) & (_dot(r, r) > stop) & (rz > 0)

    def body(carry):
        x, r, p, _, rz, k = carry
        ap = matvec(p)
        alpha = rz / _dot(p, ap)
        x, r = add(x, p, alpha), add(r, ap, -alpha)
        z = precond(r)
        rz_new = _dot(r, z)
        p = add(z, p, rz_new / rz)
        return x, r, p, z, rz_new, k + 1

    x, *_, k = jax.lax.while_loop(cond, body, (x, r, z, z, _dot(r, z), jnp.int32(0)))
    return x, k


@functools.partial(jax.tree_util.register_dataclass)
@dataclasses.dataclass(frozen=True)
class Sinkhorn:
    r"""Entropic OT solver: ``Sinkhorn(threshold=1e-3)(prob) -> OTOutput`` (see the module docstring).

    Args:
      threshold: stop when the marginal error is below it (a pytree child: can be swept / traced).
      max_iterations, min_iterations, inner_iterations: loop bounds (the error is computed every
        ``inner_iterations`` steps), as in ott-jax.
      lse_mode: pure log-domain updates; ``False`` uses the stabilised kernel-domain scaling.
      max_log_scaling: kernel mode: largest ``|log u|``, ``|log v|`` before absorbing into the potentials;
        default ``-log(tiny) / 3`` of the cost's dtype (29 in float32, 236 in float64), so that kernel
        entries lost to underflow stand for plan entries below ``tiny^(1/3)`` (2e-13 in float32).
      implicit_diff: implicit gradients through the optimality condition (``False``: unrolled loop).
      implicit_ridge: relative ridge added to the dual Hessian in the implicit linear solve (its null
        direction (1, -1) makes it singular for balanced problems).
      implicit_cg_iterations: maximum conjugate-gradient iterations of that solve.
      momentum: over-relaxation weight omega in (0, 2): each potential moves to
        ``(1 - omega) old + omega new`` (Thibault et al., arXiv:1711.01851); 1 = plain Sinkhorn.
      momentum_start: if > 0, from this iteration on use Lehmann et al.'s adaptive weight
        ``2 / (1 + sqrt(1 - theta))``, theta the contraction per iteration measured over the
        ``min(inner_iterations, momentum_start - 1)`` iterations before it (arXiv:2012.12562);
        ``momentum`` is used before it. (ott-jax's ``Momentum(start, value)``, which measures theta
        from its error trace.)
      momentum_warmup: plain iterations (omega = 1) before the fixed weight ``momentum`` applies. The
        first iterations move the potentials by up to ``max C / eps``, far from the linear regime in
        which over-relaxation accelerates; over-relaxing them overshoots, and in kernel mode every
        overshoot is a log-domain absorption. (With ``momentum_start``, set ``momentum=1`` instead.)
      online: stream the cost of a ``PointCloud`` in row blocks instead of forming it (``jaxopt_lab.ot._geom``):
        ``None`` (default) streams when ott-jax's ``batch_size`` is set on the point cloud or when it has
        more than ``2**24`` cost entries (64 MiB in float32), ``True``/``False`` force it. Online, every
        half-step is a log-domain one (the kernel would have to be recomputed at every half-step, one
        exponential per entry like the log domain), so ``lse_mode`` and ``max_log_scaling`` do not apply;
        over-relaxation, epsilon scaling and unbalanced tau do. Online outputs are differentiated
        through ``reg_cost`` by the envelope theorem (O(n + m) memory; ``implicit_diff`` is the dense
        path's), their potentials carry no gradient.
      block_size: rows of the cost computed at once online (peak memory ~ block_size x m entries); None
        (default): about ``BLOCK_ENTRIES`` (2**19) entries per block, which keeps a block in cache.
      throw: raise :class:`~jaxopt_lab.ot.output.OTSolverError` with the status when the solve did not
        converge (also under ``jit``, through ``equinox.error_if``).

    The output's ``status`` says why the loop stopped (``converged``, ``max_iterations``, ``nonfinite``:
    the error became NaN/inf, e.g. from a NaN cost or an invalid traced epsilon, ``diverged``: the error
    grew :data:`DIVERGENCE_FACTOR`-fold above its minimum). Half-precision (float16/bfloat16) inputs are
    solved in float32 (the potentials come back in float32).

    Float32 floor of the log domain (``lse_mode=True`` and online): the marginal error stops decreasing
    at the rounding of the potentials and of the marginals' sums, measured on 1000 x 10 point clouds
    (``point_cloud_problem``, eps = 0.05 x median cost, 3 seeds) at 3.5e-7 to 7.3e-7 (ott-jax: 2.3e-7 to
    2.9e-7; it was 6e-7 to 1.1e-6 before the marginals were taken as centred log-sum-exps); kernel mode
    reaches 1.3e-7 to 4.5e-7. A float32 log-domain threshold below :data:`LOG_FLOOR_FLOAT32` (1e-6)
    warns that it may never be met (status ``max_iterations``). In float64 the floor is ~1e-15.

    Example:
      >>> import jax
      >>> from jaxopt_lab.ot.problems import point_cloud_problem
      >>> prob = point_cloud_problem(jax.random.PRNGKey(0), 64, epsilon_scale=0.05)
      >>> out = Sinkhorn(threshold=1e-4)(prob)
      >>> bool(out.converged), out.matrix.shape
      (True, (64, 64))
    """

    threshold: float = 1e-3
    max_iterations: int = _static(2000)
    min_iterations: int = _static(0)
    inner_iterations: int = _static(10)
    lse_mode: bool = _static(False)
    max_log_scaling: Optional[float] = _static(None)
    implicit_diff: bool = _static(True)
    implicit_ridge: float = _static(1e-6)
    implicit_cg_iterations: int = _static(200)
    momentum: float = _static(1.0)
    momentum_start: int = _static(0)
    momentum_warmup: int = _static(0)
    online: Optional[bool] = _static(None)
    block_size: Optional[int] = _static(None)
    throw: bool = _static(False)

    @property
    def relaxed(self) -> bool:
        """Whether the updates are over-relaxed (``momentum`` != 1 or adaptive)."""
        return self.momentum != 1.0 or self.momentum_start > 0

    def __post_init__(self):
        # Only concrete Python numbers are checked: pytree unflattening rebuilds the solver with
        # tracers (or placeholders) as children.
        if isinstance(self.threshold, (int, float)) and not self.threshold >= 0:
            raise ValueError(f"threshold must be >= 0, got {self.threshold!r}")
        for name in ("max_iterations", "inner_iterations", "implicit_cg_iterations"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be an int >= 1, got {v!r}")
        if not isinstance(self.min_iterations, int) or not 0 <= self.min_iterations <= self.max_iterations:
            raise ValueError(f"min_iterations must be an int in [0, max_iterations], got {self.min_iterations!r}")
        if self.max_log_scaling is not None and not self.max_log_scaling > 0:
            raise ValueError(f"max_log_scaling must be > 0, got {self.max_log_scaling!r}")
        if not self.implicit_ridge >= 0:
            raise ValueError(f"implicit_ridge must be >= 0, got {self.implicit_ridge!r}")
        if not 0 < self.momentum < 2:
            raise ValueError(f"momentum must be in (0, 2) (over-relaxation weight; 1 = plain Sinkhorn), "
                             f"got {self.momentum!r}")
        if not isinstance(self.momentum_start, int) or self.momentum_start < 0 or self.momentum_start == 1:
            raise ValueError(f"momentum_start must be 0 (fixed momentum) or an int >= 2 (adaptive from that "
                             f"iteration), got {self.momentum_start!r}")
        if not isinstance(self.momentum_warmup, int) or self.momentum_warmup < 0:
            raise ValueError(f"momentum_warmup must be an int >= 0, got {self.momentum_warmup!r}")
        check_block_size(self.block_size)
        if self.online not in (None, True, False):
            raise ValueError(f"online must be None (automatic), True or False, got {self.online!r}")
        if self.momentum_warmup and self.momentum_start:
            raise ValueError("momentum_warmup applies to the fixed weight; with momentum_start (adaptive) the "
                             "iterations before momentum_start use `momentum` (1 = plain): set one of them, got "
                             f"momentum_warmup={self.momentum_warmup}, momentum_start={self.momentum_start}")

    def __call__(self, prob: linear_problem.LinearProblem,
                 init: Optional[tuple[jax.Array, jax.Array]] = None) -> OTOutput:
        """Solve ``prob``; ``init = (f, g)`` warm-starts the potentials (default zeros)."""
        online = is_online(prob.geom, self.online)
        validate_problem(prob)
        dtype = jnp.result_type(*[leaf for leaf in jax.tree.leaves(prob.geom) if hasattr(leaf, "dtype")])
        if ((self.lse_mode or online) and dtype != jnp.float64 and isinstance(self.threshold, (int, float))
                and 0 < self.threshold < LOG_FLOOR_FLOAT32):
            warnings.warn(f"threshold={self.threshold:g} is below the float32 log-domain floor of the marginal "
                          f"error (~{LOG_FLOOR_FLOAT32:g}, see Sinkhorn's docstring): the solve may stop at "
                          f"max_iterations; use float64, kernel mode (lse_mode=False, dense) or a larger threshold",
                          stacklevel=2)
        if init is not None:
            n, m = prob.geom.shape
            if np.shape(init[0]) != (n,) or np.shape(init[1]) != (m,):
                raise ValueError(f"init must be potentials of shapes ({n},), ({m},), got "
                                 f"{np.shape(init[0])}, {np.shape(init[1])}")
        return raise_if_failed(_solve(self, prob, init), self.throw, "Sinkhorn")

    # -- the loop -----------------------------------------------------------------------------------

    def run_loop(self, prob: linear_problem.LinearProblem, cost, init, *, unroll: bool):
        """Iterate from potentials ``init`` on ``cost`` (a ``_geom`` cost operator, or a matrix); returns
        (f, g, LoopOutput)."""
        if not hasattr(cost, "row_lse"):
            cost = cost_operator(geometry_of(cost))
        if unroll or self.lse_mode or cost.online:
            return _run_loop(self, prob, cost, init, unroll=unroll)
        # Kernel scaling sees its batch under vmap: absorptions are taken batch-wide (module docstring).
        return _run_batch_aware_loop(self, prob, cost, init)


def geometry_of(cost):
    from ott.geometry import geometry
    return geometry.Geometry(cost_matrix=cost)


def _run_loop(solver: Sinkhorn, prob, op, init, *, unroll: bool = False, axis_name=None):
    if solver.lse_mode or op.online:
        kernels = _lse_kernels(solver, prob, op, init)
    else:
        kernels = _scaling_kernels(solver, prob, op.cost, init, differentiable=unroll, axis_name=axis_name)
    step, error, state0, potentials = kernels
    out = _loop.iterate(step, error, state0, threshold=solver.threshold, max_iterations=solver.max_iterations,
                        min_iterations=solver.min_iterations, inner_iterations=solver.inner_iterations,
                        unroll=unroll, axis_name=axis_name, divergence_factor=DIVERGENCE_FACTOR)
    f, g = potentials(out.state)
    return f, g, out


@_loop.batch_aware
def _run_batch_aware_loop(solver: Sinkhorn, prob, cost, init, axis_name=None):
    return _run_loop(solver, prob, cost, init, axis_name=axis_name)


def _relax(old, new, omega):
    """Over-relaxed update ``(1 - omega) old + omega new``; where ``old`` is not finite (a zero-mass
    entry, or the first step) the plain update ``new``."""
    return jnp.where(jnp.isfinite(old), (1.0 - omega) * old + omega * new, new)


def _change(old, new):
    """2-norm of a potential's change over its finite entries (the Sinkhorn map's contraction)."""
    ok = jnp.isfinite(old) & jnp.isfinite(new)
    return jnp.sqrt(jnp.sum(jnp.where(ok, new - old, 0.0) ** 2))


def _momentum(solver: Sinkhorn, it, omega, reference, change):
    """Lehmann et al.'s adaptive over-relaxation (arXiv:2012.12562, eq. 5): at iteration ``momentum_start``
    set ``omega = 2 / (1 + sqrt(1 - theta))``, with ``theta`` the measured contraction of the potentials
    per iteration over the last ``window`` iterations, ``(change_t / change_{t - window})^(1/window)``
    (capped at 0.99, as in ott-jax). Returns ``(omega, reference)``: ``reference`` keeps the change at
    iteration ``momentum_start - window``."""
    start = solver.momentum_start
    if start == 0:
        return omega, reference
    window = _momentum_window(solver)
    reference = jnp.where(it == start - window, change, reference)
    ratio = change / jnp.where(reference > 0, reference, jnp.inf)
    theta = jnp.clip(ratio, 0.0, 1.0) ** (1.0 / window)
    theta = jnp.minimum(theta, 0.99)
    return jnp.where(it == start, 2.0 / (1.0 + jnp.sqrt(1.0 - theta)), omega), reference


def _warmed_up(solver: Sinkhorn, it, omega):
    """The weight in use at iteration ``it``: plain until ``momentum_warmup``, then ``momentum``."""
    if not solver.momentum_warmup:
        return omega
    return jnp.where(it == solver.momentum_warmup, jnp.asarray(solver.momentum, omega.dtype), omega)


def _initial_weight(solver: Sinkhorn, dtype):
    return jnp.asarray(1.0 if solver.momentum_warmup else solver.momentum, dtype)


def _momentum_window(solver: Sinkhorn) -> int:
    return max(1, min(solver.inner_iterations, solver.momentum_start - 1))


class _LogState(NamedTuple):
    f: jax.Array
    g: jax.Array
    omega: jax.Array    # the over-relaxation weight in use
    change: jax.Array   # ||g_t - g_{t-1}|| at iteration momentum_start - window (adaptive weight)


def _lse_kernels(solver: Sinkhorn, prob, op, init):
    """Pure log-domain Sinkhorn on a dense or online cost operator (``_geom``)."""
    a, b, tau_a, tau_b = prob.a, prob.b, prob.tau_a, prob.tau_b
    log_a, log_b = _log_marginal(a), _log_marginal(b)
    sched = prob.geom.epsilon_scheduler

    def step(it, state, active=True):
        del active   # no batch-wide decisions here
        f, g, omega, change = state
        omega = _warmed_up(solver, it, omega)
        eps = jnp.asarray(sched(it), op.dtype)
        g_new = log_half_step(op, f, log_b, tau_b, eps, axis=0, current=g)
        if solver.relaxed:
            g_new = _relax(g, g_new, omega)
        f_new = log_half_step(op, g_new, log_a, tau_a, eps, axis=1, current=f)
        if solver.relaxed:
            f_new = _relax(f, f_new, omega)
        if solver.momentum_start:
            omega, change = _momentum(solver, it, omega, change, _change(g, g_new))
        return _LogState(f_new, g_new, omega, change)

    def error(state):
        eps = jnp.asarray(sched.target, op.dtype)
        row, col = op.marginals(state.f, state.g, eps)
        return _marginal_error(row, col, state.f, state.g, prob, eps, solver.relaxed)

    state0 = _LogState(*init, _initial_weight(solver, op.dtype), jnp.zeros((), op.dtype))
    return step, error, state0, lambda s: (s.f, s.g)


# In a batch, a problem joins another's absorption once its own scalings have drifted past this fraction
# of the bound (chosen among 0, 1/4, 1/2 on the batch benchmark; configs/bench/ot.py).
_JOIN_FRACTION = 0.25


class _ScalingState(NamedTuple):
    f: jax.Array        # absorbed potentials: the current ones are f + eps_k log u, g + eps_k log v
    g: jax.Array
    u: jax.Array
    v: jax.Array
    kernel: jax.Array   # exp((f_i + g_j - C_ij) / eps_k)
    eps_k: jax.Array    # the epsilon the kernel was built with
    omega: jax.Array
    change: jax.Array   # as in _LogState


def _scaling_kernels(solver: Sinkhorn, prob, cost, init, differentiable: bool = False, axis_name=None):
    """Stabilised kernel-domain Sinkhorn (the module docstring's ``lse_mode=False``)."""
    a, b, tau_a, tau_b = prob.a, prob.b, prob.tau_a, prob.tau_b
    log_a, log_b = _log_marginal(a), _log_marginal(b)
    sched = prob.geom.epsilon_scheduler
    bound = solver.max_log_scaling
    if bound is None:
        bound = -math.log(float(jnp.finfo(cost.dtype).tiny)) / 3

    def scaled(log_w, s, h, tau, eps):
        # new log-scaling: tau (log w - log s) + (tau - 1) h / eps   (h: the absorbed potential)
        new = tau * (log_w - _log_marginal(s))   # s = 0 (an empty kernel row): +inf, i.e. absorb
        if tau != 1.0:
            new = new + (tau - 1.0) * h / eps
        return jnp.where(jnp.isfinite(log_w), new, -jnp.inf)

    def refresh(other_tot, old_tot, log_w, tau, eps, omega, axis):
        # Exact log-domain half-step from the other side's current potential; returns the new
        # (relaxed) potential and the kernel exp((f + g - C)/eps) built from the same exponentials.
        z = (jnp.expand_dims(other_tot, 1 - axis) - cost) / eps
        mx = jnp.max(z, axis=axis, keepdims=True)
        mx = jnp.where(jnp.isfinite(mx), mx, 0.0)
        e = jnp.exp(z - mx)
        s = jnp.sum(e, axis=axis, keepdims=True)
        lse = (mx + jnp.log(s)).squeeze(axis)
        lse = jnp.where(jnp.isfinite(lse), lse, 0.0)
        new = tau * (eps * log_w - eps * lse)
        if solver.relaxed:
            new = _relax(old_tot, new, omega)
        kernel = e * jnp.exp(mx + jnp.expand_dims(new, axis) / eps)
        return new, kernel

    def half_step(state, eps, axis, active):
        # axis=0 updates (g, v) from column sums K^T u; axis=1 updates (f, u) from row sums K v.
        f, g, u, v, kernel, eps_k, omega, _ = state
        if axis == 0:
            s, log_w, h, tau, old = u @ kernel, log_b, g, tau_b, v
        else:
            s, log_w, h, tau, old = kernel @ v, log_a, f, tau_a, u
        log_scaling = scaled(log_w, s, h, tau, eps)
        if solver.relaxed:
            log_scaling = _relax(_log_marginal(old), log_scaling, omega)
        drift = jnp.max(jnp.where(jnp.isfinite(log_w), jnp.abs(log_scaling), 0.0))
        ok = (eps == eps_k) & (drift <= bound)
        # Where not ok the absorption replaces w; the cap keeps an unused exp(+inf) out of the unrolled
        # gradient (0 * inf = NaN).
        w = jnp.exp(jnp.minimum(log_scaling, bound))
        cheap = state._replace(v=w) if axis == 0 else state._replace(u=w)

        def absorb(operand):
            # Redo the half-step in the log domain from the potentials before it (``old``: the
            # scaling that the cheap step overwrote). Everything comes in through the operand:
            # values closed over would be carried through the loop as extra (batched) buffers.
            state, old = operand
            f, g, u, v, _, eps_k, omega, _ = state
            ones_n, ones_m = jnp.ones_like(u), jnp.ones_like(v)
            if axis == 0:
                f_tot, g_old = f + eps_k * _log_marginal(u), g + eps_k * _log_marginal(old)
                g_new, k_new = refresh(f_tot, g_old, log_w, tau, eps, omega, axis=0)
                state = state._replace(f=f_tot, g=g_new, u=ones_n, v=ones_m, kernel=k_new, eps_k=eps)
            else:
                g_tot, f_old = g + eps_k * _log_marginal(v), f + eps_k * _log_marginal(old)
                f_new, k_new = refresh(g_tot, f_old, log_w, tau, eps, omega, axis=1)
                state = state._replace(f=f_new, g=g_tot, u=ones_n, v=ones_m, kernel=k_new, eps_k=eps)
            return state, old

        # Not lax.cond: it would copy the n x m kernel at every half-step (see _loop.update_if). In a
        # batch (axis_name), when one problem must absorb, those whose scalings have drifted far join
        # it (module docstring).
        needed = ~ok
        if axis_name is not None:
            needed = _loop.any_member(~ok & active, axis_name) & (needed | (drift > _JOIN_FRACTION * bound))
        return _loop.update_if(needed, absorb, (cheap, old), differentiable=differentiable)[0]

    def g_potential(state):
        return state.g + state.eps_k * _log_marginal(state.v)

    def step(it, state, active=True):
        # active: False for a finished member of a batch (see _loop.iterate's axis_name)
        eps = jnp.asarray(sched(it), cost.dtype)
        state = state._replace(omega=_warmed_up(solver, it, state.omega))
        new = half_step(state, eps, 0, active)
        if solver.momentum_start:
            omega, change = _momentum(solver, it, new.omega, new.change,
                                      _change(g_potential(state), g_potential(new)))
            new = new._replace(omega=omega, change=change)
        return half_step(new, eps, 1, active)

    def potentials(state):
        return state.f + state.eps_k * _log_marginal(state.u), g_potential(state)

    def error(state):
        col = state.v * (state.u @ state.kernel)
        if prob.is_balanced and not solver.relaxed:
            return jnp.sum(jnp.abs(col - b))
        row = state.u * (state.kernel @ state.v)
        f_tot, g_tot = potentials(state)
        return _marginal_error(row, col, f_tot, g_tot, prob, state.eps_k, solver.relaxed)

    f0, g0 = init
    n, m = cost.shape
    # K = 0 forces the first half-step through the log domain, which builds K from (f0, g0).
    state0 = _ScalingState(f0, g0, jnp.ones((n,), cost.dtype), jnp.ones((m,), cost.dtype),
                           jnp.zeros_like(cost), jnp.asarray(sched(0), cost.dtype),
                           _initial_weight(solver, cost.dtype), jnp.zeros((), cost.dtype))
    return step, error, state0, potentials


def _marginal_error(row, col, f, g, prob, eps, both: bool = False):
    """ott-jax's error: ``||P^T 1 - b||_1`` for balanced problems (``P 1 = a`` holds exactly after a
    plain f-update; ``both`` adds ``||P 1 - a||_1`` for over-relaxed updates, where it does not), else
    the 1-norm of the dual gradient."""
    if prob.is_balanced:
        err = jnp.sum(jnp.abs(col - prob.b))
        return err + jnp.sum(jnp.abs(row - prob.a)) if both else err
    target_a = uf.grad_of_marginal_fit(prob.a, f, prob.tau_a, eps)
    target_b = uf.grad_of_marginal_fit(prob.b, g, prob.tau_b, eps)
    return jnp.sum(jnp.abs(row - target_a)) + jnp.sum(jnp.abs(col - target_b))


@jax.jit
def _solve(solver: Sinkhorn, prob: linear_problem.LinearProblem, init) -> OTOutput:
    prob = compute_dtype(prob)
    online = is_online(prob.geom, solver.online)
    op = cost_operator(prob.geom, online, solver.block_size).poisoned(invalid_input(prob))
    n, m = op.shape
    if init is None:
        init = (jnp.zeros((n,), op.dtype), jnp.zeros((m,), op.dtype))
    init = tuple(jnp.asarray(x, op.dtype) for x in init)

    def output(f, g, out):
        return OTOutput(errors=out.errors, n_iters=out.n_iters, status=out.status, ot_prob=prob, f=f, g=g,
                        online=online, block_size=solver.block_size if online else None)

    if online:
        # No implicit differentiation online: reg_cost is differentiated by the envelope theorem.
        # The loop sees no tangent at all (else reverse mode would linearize it and keep its blocks).
        f, g, out = solver.run_loop(*jax.lax.stop_gradient((prob, op, init)), unroll=False)
        return output(f, g, out)

    cost = op.cost
    if not solver.implicit_diff:
        f, g, out = solver.run_loop(prob, op, init, unroll=True)
        return output(f, g, out)

    eps = prob.geom.epsilon

    def optimality(fg):
        return dual_gradient(fg[0], fg[1], prob, cost, eps)

    def solve(_, fg0):
        f, g, out = solver.run_loop(prob, op, fg0, unroll=False)
        # custom_root's aux must be floating point (it builds zero tangents for it)
        return (f, g), (out.errors, out.n_iters.astype(cost.dtype), out.status.astype(cost.dtype))

    def tangent_solve(lin, rhs):
        # lin = d(dual gradient)/d(f, g) = -(dual Hessian): solve -lin(x) = -rhs by CG (PSD system),
        # with a Jacobi preconditioner and a small ridge on the (1, -1) null direction.
        scale_a = jnp.maximum(prob.a, jnp.finfo(cost.dtype).tiny) / eps
        scale_b = jnp.maximum(prob.b, jnp.finfo(cost.dtype).tiny) / eps
        ridge = solver.implicit_ridge * (jnp.mean(scale_a) + jnp.mean(scale_b))

        # The solve runs on the concatenation [x_f; x_g]: when only one of a, b (or neither) carries a
        # tangent, one block of ``rhs`` is a constant zero, which custom_linear_solve cannot transpose
        # (reverse mode would fail); the concatenation is linear in whichever block is live.
        n = scale_a.shape[0]

        def split(x):
            return x[:n], x[n:]

        def matvec(x):
            y = jnp.concatenate(lin(split(x)))
            return -y + ridge * x

        def precond(x):
            return x / (jnp.concatenate([scale_a, scale_b]) + ridge)

        def cg(mv, b):
            return conjugate_gradient(mv, b, precond, tol=1e-7, max_iterations=solver.implicit_cg_iterations)[0]

        # custom_linear_solve makes the solve transposable (reverse mode) without differentiating CG.
        neg = -jnp.concatenate(rhs)
        return split(jax.lax.custom_linear_solve(matvec, neg, cg, symmetric=True))

    (f, g), (errors, n_iters, status) = jax.lax.custom_root(optimality, init, solve, tangent_solve,
                                                            has_aux=True)
    return output(f, g, _loop.LoopOutput(None, errors, n_iters.astype(jnp.int32), status.astype(jnp.int32)))
