r"""What every OT solver returns, and the input checks every OT solver runs.

:class:`OTResult` is the one base type: the per-block error trace, the iteration count, the ``status``
(why the loop stopped, decided inside the jitted loop: ``converged``, ``max_iterations``, ``nonfinite``,
``diverged``; see ``jaxopt_lab._loop``) and the problem, with the quantities derived from a plan
(``matrix``, ``cost = <C, P>``, ``marginals``, ``marginal_error``, ``converged``) defined once. Each
solver's output adds what it alone has. :class:`OTOutput` carries the dual potentials ``f, g`` of the
entropic problem

    min_P <C, P> + eps KL(P | 1 1^T) + rho_a KL(P 1 | a) + rho_b KL(P^T 1 | b),   rho = eps tau / (1 - tau),

(hard marginals when tau = 1; the reference measure of the entropy term is the all-ones matrix, i.e.
``-eps H(P)`` up to the constant ``eps sum P``: for unbalanced problems this is POT's
``sinkhorn_unbalanced(reg_type='entropy')`` and ott-jax's convention, not ``reg_type='kl'``, whose
reference measure ``a b^T`` changes the optimal plan by the factor ``(a_i b_j)^(eps / (eps + ...))``), with
the plan ``P_ij = exp((f_i + g_j - C_ij) / eps)``. Compare solvers through the derived quantities, never
through raw potentials (defined up to f + c, g - c).

``throw=True`` on a solver raises :class:`OTSolverError` naming the status when the solve did not
converge (``equinox.error_if``, as optimistix does, so it also works under ``jit``).

``validate_problem`` checks concrete inputs only: under ``jit``/``vmap``/``grad`` any array may be a
tracer, and traced values are never branched on (:func:`invalid_input` instead makes the cost of a problem
with an invalid traced epsilon or weight NaN, so the solve reports status ``nonfinite``).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Optional

import jax
import jax.numpy as jnp
import numpy as np
from ott.geometry import pointcloud
from ott.problems.linear import linear_problem
from ott.solvers.linear import sinkhorn as ott_sinkhorn

from .. import _loop
from ._geom import cost_operator, explicit_epsilon, static_field

__all__ = ["OTResult", "OTOutput", "OTSolverError", "validate_problem", "is_concrete", "static_field",
           "STATUS_NAMES"]

STATUS_NAMES = _loop.STATUS_NAMES


class OTSolverError(RuntimeError):
    """Raised by a solver called with ``throw=True`` whose status is not ``converged``."""


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class OTResult:
    """Base of every OT solver's output (module docstring).

    Attributes:
      errors: per-block error trace (``-1`` where no block ran), see ``jaxopt_lab._loop``.
      n_iters: iterations taken.
      status: int32 code, ``STATUS_NAMES[status]`` in ``converged``, ``max_iterations``, ``nonfinite``,
        ``diverged``.
      ot_prob: the problem that was solved.
    """

    errors: jax.Array
    n_iters: jax.Array
    status: jax.Array
    ot_prob: linear_problem.LinearProblem

    @property
    def converged(self) -> jax.Array:
        """``status == converged`` (kept for code that reads a boolean)."""
        return self.status == _loop.CONVERGED

    @property
    def status_name(self) -> str:
        """The status as a string (concrete outputs only)."""
        return STATUS_NAMES[int(self.status)]

    @property
    def geom(self):
        return self.ot_prob.geom

    @property
    def matrix(self) -> jax.Array:
        raise NotImplementedError

    @property
    def cost(self) -> jax.Array:
        """The transport cost ``<C, P>``."""
        return jnp.sum(self.matrix * self.geom.cost_matrix)

    @property
    def marginals(self) -> tuple[jax.Array, jax.Array]:
        """``(P 1, P^T 1)``."""
        p = self.matrix
        return p.sum(axis=1), p.sum(axis=0)

    @property
    def marginal_error(self) -> jax.Array:
        """``||P 1 - a||_1 + ||P^T 1 - b||_1`` (meaningful for balanced problems)."""
        r, c = self.marginals
        return jnp.sum(jnp.abs(r - self.ot_prob.a)) + jnp.sum(jnp.abs(c - self.ot_prob.b))

    def _replace(self, **changes):
        return dataclasses.replace(self, **changes)


def raise_if_failed(out, throw: bool, solver: str):
    """``out`` unchanged, or (``throw=True``) :class:`OTSolverError` when its status is not converged."""
    if not throw:
        return out
    if is_concrete(out.status):
        codes = np.asarray(out.status).ravel()
        bad = [STATUS_NAMES[int(c)] for c in codes if c != _loop.CONVERGED]
        if bad:
            raise OTSolverError(f"{solver} did not converge: status {bad[0]} after {np.asarray(out.n_iters).max()} "
                                f"iterations (last error {_last_error(out.errors):.3g}); raise max_iterations or "
                                f"the threshold, or check the inputs (NaN, epsilon)")
        return out
    import equinox as eqx   # in-jit errors as optimistix raises them (installed with ott-jax via lineax)
    # every array of the output carries the check, so it runs whichever of them the caller keeps
    return eqx.error_if(out, jnp.any(out.status != _loop.CONVERGED),
                        f"{solver} did not converge (status: max_iterations, nonfinite or diverged)")


def _last_error(errors) -> float:
    e = np.asarray(errors).ravel()
    e = e[e != -1]
    return float(e[-1]) if e.size else float("nan")


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class OTOutput(OTResult):
    """Result of a potential-based OT solver (Sinkhorn, SNS) on a ``LinearProblem``.

    Attributes (besides :class:`OTResult`'s):
      f, g: dual potentials, shapes (n,) and (m,).
      stats: solver-specific diagnostics (a dict of arrays, e.g. SNS's CG iteration counts), or None.
      online: the cost was streamed in row blocks (never formed); ``matrix`` then forms the plan,
        while ``cost``, ``reg_cost``, ``marginals`` stream.
    """

    f: jax.Array = None
    g: jax.Array = None
    stats: Any = None
    online: bool = static_field(False)
    block_size: Optional[int] = static_field(None)

    @property
    def _op(self):
        return cost_operator(self.geom, self.online, self.block_size)

    @property
    def matrix(self) -> jax.Array:
        """The transport plan ``P_ij = exp((f_i + g_j - C_ij) / eps)``."""
        return self._op.plan(self.f, self.g, self.geom.epsilon)

    @property
    def cost(self) -> jax.Array:
        """The transport cost ``<C, P>`` (ott-jax's ``primal_cost``)."""
        return self._op.transport_cost(self.f, self.g, self.geom.epsilon)

    @property
    def marginals(self) -> tuple[jax.Array, jax.Array]:
        return self._op.marginals(self.f, self.g, self.geom.epsilon)

    @property
    def reg_cost(self) -> jax.Array:
        r"""The entropic objective as ott-jax defines it (``SinkhornOutput.reg_ot_cost``):

        ``<C,P> + eps KL(P | a b^T) + rho_a KL(P1 | a) + rho_b KL(P^T 1 | b)``, evaluated from the dual
        potentials, ``rho = eps tau / (1 - tau)`` (the last two terms vanish when balanced). Online,
        the potentials enter with their gradient stopped: at the optimum the derivative of the dual
        value w.r.t. the potentials vanishes (envelope theorem), so the gradient w.r.t. x, y, a, b is
        the partial one, taken in one streaming pass with O(n + m) memory.
        """
        if not self.online:
            return ott_sinkhorn.compute_kl_reg_cost(self.f, self.g, self.ot_prob, lse_mode=True)
        return dual_value(jax.lax.stop_gradient(self.f), jax.lax.stop_gradient(self.g), self.ot_prob, self._op)


def dual_value(f, g, prob, op):
    """ott-jax's ``compute_kl_reg_cost`` with the plan's total mass from ``op`` (dense or streamed)."""
    from ott.math import unbalanced_functions as uf
    eps = prob.geom.epsilon

    def div(w, h, tau):
        supp = w > 0
        hw = eps * jnp.log(jnp.where(supp, w, 1.0))
        if tau == 1.0:
            return jnp.sum(jnp.where(supp, w * (h - hw), 0.0))
        return -jnp.sum(jnp.where(supp, w * uf.phi_star(-(h - hw), uf.rho(eps, tau)), 0.0))

    total = op.mass(f, g, eps)
    return div(prob.a, f, prob.tau_a) + div(prob.b, g, prob.tau_b) + eps * (jnp.sum(prob.a) * jnp.sum(prob.b) - total)


def is_concrete(*xs) -> bool:
    """True when no argument is a JAX tracer (so its values can be checked on the host)."""
    return not any(isinstance(leaf, jax.core.Tracer) for x in xs for leaf in jax.tree.leaves(x))


def _check_weights(name: str, w, size: int) -> None:
    if np.shape(w) != (size,):
        raise ValueError(f"{name} (marginal weights) must have shape ({size},) to match the geometry's "
                         f"{'rows' if name == 'a' else 'columns'}, got shape {np.shape(w)}")
    if not is_concrete(w):
        return
    w = np.asarray(w, np.float64)
    if not np.all(np.isfinite(w)):
        raise ValueError(f"{name} (marginal weights) must be finite, got non-finite entries")
    if np.any(w < 0):
        raise ValueError(f"{name} (marginal weights) must be >= 0, got min {w.min():.3g}")
    if not w.sum() > 0:
        raise ValueError(f"{name} (marginal weights) must have positive total mass, got {w.sum():.3g}")


def mass_tolerance(dtype) -> float:
    """Relative tolerance on ``sum(a) = sum(b)``: 1e-10 in float64, 1e-5 in float32, the dtype's machine
    epsilon in half precision (the rounding of n entries adds up to ~eps/2 of the total)."""
    dtype = jnp.dtype(dtype)
    if dtype == jnp.float64:
        return 1e-10
    return max(1e-5, float(jnp.finfo(dtype).eps))


def compute_dtype(prob):
    """``prob`` with float16/bfloat16 leaves cast to float32: the solvers compute in float32 when the
    input is half precision (log-sum-exps and marginal errors need more than 8-11 mantissa bits)."""
    def up(leaf):
        if isinstance(leaf, (jax.Array, np.ndarray)) and leaf.dtype in (jnp.float16, jnp.bfloat16):
            return leaf.astype(jnp.float32)
        return leaf
    return jax.tree.map(up, prob)


def invalid_input(prob) -> jax.Array:
    """Inside the jitted solve: whether a (traced) epsilon is not finite and > 0 or a weight is negative
    or not finite. Solvers then make their cost NaN (``cost_operator(...).poisoned(...)``), so the solve
    ends with status ``nonfinite`` instead of a silent answer to an invalid problem (concrete values were
    already rejected by :func:`validate_problem`)."""
    eps = jnp.asarray(prob.geom.epsilon)
    valid = jnp.all(jnp.isfinite(eps) & (eps > 0))
    for w in (prob.a, prob.b):
        valid &= jnp.all(jnp.isfinite(w) & (w >= 0))
    return ~valid


def validate_problem(prob: linear_problem.LinearProblem, *, require_balanced_mass: bool = True) -> None:
    """Raise ``ValueError`` naming the argument for invalid inputs, before any work.

    Checks: ``a``/``b`` of lengths (n,), (m,) of the geometry (always: shapes are static);
    ``tau_a``/``tau_b`` in (0, 1]; concrete weights finite, >= 0, positive mass; for balanced problems
    (tau_a = tau_b = 1) equal total mass of concrete ``a`` and ``b`` (relative tolerance
    :func:`mass_tolerance` of their dtype); a concrete ``epsilon`` finite and > 0. The cost: a point cloud's
    points must be finite -- its cost matrix is never formed here (O(n + m) memory, so a problem too large
    for a dense cost validates; a cost function that maps finite points to a non-finite cost gives status
    ``nonfinite``), and its epsilon is checked only when given as a number (a relative or default epsilon
    is a statistic of the whole cost, computed by the solve); any other geometry's concrete cost matrix
    must be finite and >= 0 (up to rounding, 1e-4 max|C|). Traced values (under ``jit``/``grad``/``vmap``)
    are not checked here: see :func:`invalid_input`.
    """
    for name in ("tau_a", "tau_b"):
        tau = getattr(prob, name)
        if is_concrete(tau) and not (0 < float(tau) <= 1):
            raise ValueError(f"{name} must be in (0, 1] (1 = balanced marginal), got {tau!r}")
    geom = prob.geom
    n, m = geom.shape
    a, b = prob.a, prob.b
    _check_weights("a", a, n)
    _check_weights("b", b, m)
    if require_balanced_mass and prob.is_balanced and is_concrete(a, b):
        sa, sb = float(np.sum(np.asarray(a, np.float64))), float(np.sum(np.asarray(b, np.float64)))
        rtol = mass_tolerance(np.asarray(a).dtype)
        if abs(sa - sb) > rtol * max(sa, sb):
            raise ValueError(f"a and b must have the same total mass for balanced OT (tau_a = tau_b = 1), "
                             f"got sum(a) = {sa:.6g}, sum(b) = {sb:.6g}; normalize them or set tau_a/tau_b < 1")
    if not is_concrete(geom):
        return
    points = isinstance(geom, pointcloud.PointCloud)
    if not points or explicit_epsilon(geom):
        e = np.asarray(geom.epsilon, np.float64)
        if not (np.all(np.isfinite(e)) and np.all(e > 0)):
            raise ValueError(f"epsilon must be finite and > 0, got {e!r}")
    if points:
        for name in ("x", "y"):
            if not np.all(np.isfinite(np.asarray(getattr(geom, name)))):
                raise ValueError(f"points (geom.{name}) must be finite, got non-finite coordinates")
        return
    c = geom.cost_matrix
    if not is_concrete(c):   # computed from concrete inputs inside someone's jit: a tracer
        return
    c = np.asarray(c, np.float64)
    if not np.all(np.isfinite(c)):
        raise ValueError("cost matrix (geom.cost_matrix) must be finite, got non-finite entries")
    # squared-Euclidean costs computed as |x|^2 + |y|^2 - 2<x, y> round to tiny negatives
    if c.min() < -1e-4 * max(1.0, float(np.abs(c).max())):
        raise ValueError(f"cost matrix (geom.cost_matrix) must be >= 0, got min {c.min():.3g}")

