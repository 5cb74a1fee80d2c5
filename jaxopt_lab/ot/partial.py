r"""Unbalanced, semi-relaxed and partial OT, and OT pseudo-labelling: P^2OT / SP^2OT and SeLa.

**Unbalanced / semi-relaxed OT** (B4) is ``Sinkhorn`` on an ott-jax ``LinearProblem`` whose marginals are
KL-relaxed, min_P <C,P> - eps H(P) + rho_a KL(P1 | a) + rho_b KL(P^T 1 | b), which ott-jax parameterises by
tau = rho / (rho + eps) per side (tau = 1: hard constraint). :func:`unbalanced_problem` and
:func:`semi_relaxed_problem` build such problems from the KL weights rho.

**Partial OT** (B5, POT's ``ot.partial.partial_wasserstein``) moves a prescribed total mass s <= min(|a|, |b|):
one dummy point is added on each side, a' = [a, |b| - s], b' = [b, |a| - s], with cost
C' = [[C, 0], [0, A]], A larger than every real cost, and the balanced problem on (a', b', C') is solved with
our ``Sinkhorn``. The dummy row absorbs the |b| - s of b that is not served and the dummy column the
|a| - s of a that is not sent; A makes dummy-to-dummy transport worthless, so the top-left block carries mass
s. (Entropic: the dummy-dummy entry is exp(-A/eps)-small, A = 2 max C + ``dummy_margin`` eps.) On point
clouds solved online the extension is a point cloud with a flag coordinate (:class:`DummyPointCost`), so
neither C nor C' is formed.

**P^2OT** (B6; "P^2OT: Progressive Partial Optimal Transport for Deep Imbalanced Clustering", Zhang, Ren,
He, ICLR 2024, arXiv:2401.09266) turns classifier logits into pseudo-labels for the most confident fraction rho of
the samples, with imbalance-aware cluster sizes. With C = -log softmax(logits) (n x K) plus one zero-cost dummy
column, a = 1/n (exact), b' = [rho b, 1 - rho] (b the cluster prior, uniform by default):

    min_Q <C', Q> + eps <Q, log Q - 1> + gamma KL(Q[:, :K]^T 1 | rho b)   s.t.  Q 1 = a,  Q[:, K]^T 1 = 1 - rho,

i.e. semi-relaxed OT with a *per-column* tau: tau_j = gamma / (gamma + eps) on the real clusters, tau = 1
on the dummy. It is solved by the log-domain generalized Sinkhorn scaling

    g_j <- tau_j (eps log b'_j - eps LSE_i((f_i - C'_ij) / eps)),   f_i <- eps log a_i - eps LSE_j((g_j - C'_ij) / eps)

on the shared driver (the reference, rhfeiyang/PPOT ``SemiCurrSinkhornKnopp``, runs the same scaling in
the kernel domain and calls itself "not stable"). ott-jax's ``LinearProblem`` holds a scalar tau per side,
so this per-column solve is written here; with one tau for all columns (gamma = None, or rho = 1) it is
exactly our ``Sinkhorn`` on the extended problem, which the tests check. Pseudo-labels are n Q[:, :K];
the selected (confident) samples are the floor(rho n) with the largest transported mass n Q_i[:K] 1;
rho ramps up during training, rho(t) = rho_base + (rho_upper - rho_base) exp(-5 (1 - t/T)^2)
(:func:`rho_schedule`).

**SP^2OT** ("SP^2OT: Semantic-Regularized Progressive Partial Optimal Transport for Imbalanced Clustering",
2024) adds a semantic term -lambda n <S, Q Q^T> (S a sample-similarity graph) and, as the authors' code
(rhfeiyang/SPPOT ``MMOT``) does, solves it by Majorization-Minimization: linearize the semantic term at Q_t,
C_t = C - lambda n (S + S^T) Q_t, and solve P^2OT on C_t, until the objective stops changing
(:class:`SP2OT`, lambda = (1 - rho) lambda_0 as in SPPOT).

**SeLa** (B7; "Self-labelling via simultaneous clustering and representation learning", Asano, Rupprecht,
Vedaldi, arXiv:1911.05371) labels with the equipartition prior: entropic OT between samples (a = 1/n) and
clusters (b = 1/K) with C = -log softmax(logits) and eps = 1/lambda (Q = softmax^lambda, lambda = 25), solved
by our ``Sinkhorn``; labels are the row-wise argmax of the plan.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float
from ott.geometry import costs, geometry, pointcloud
from ott.problems.linear import linear_problem

from .. import _loop
from ._geom import DenseCost, cost_operator, is_online, log_half_step
from .output import OTOutput, OTResult, is_concrete, static_field, validate_problem
from .sinkhorn import Sinkhorn

__all__ = [
    "relaxation_tau",
    "unbalanced_problem",
    "semi_relaxed_problem",
    "dummy_point_problem",
    "PartialTransport",
    "PartialOutput",
    "labelling_problem",
    "rho_schedule",
    "LabellingOutput",
    "P2OT",
    "p2ot_objective",
    "knn_similarity",
    "SP2OT",
    "SeLa",
]


_static = static_field


def _check_number(name, value, *, low=None, high=None, low_open=False, allow_none=False, what=""):
    """ValueError naming ``name`` if a concrete number is outside [low, high] (``(low`` if ``low_open``)."""
    if value is None and allow_none:
        return
    # Only concrete numbers are checked: pytree unflattening rebuilds solvers with tracers or placeholders.
    if not isinstance(value, (int, float, np.number, np.ndarray, jax.Array)) or not is_concrete(value):
        if value is None:
            raise ValueError(f"{name} must be a number, got None")
        return
    v = np.asarray(value)
    ok = v.shape == () and np.isfinite(v)
    if ok and low is not None:
        ok = v > low if low_open else v >= low
    if ok and high is not None:
        ok = v <= high
    if not ok:
        bracket = "(" if low_open else "["
        raise ValueError(f"{name} must be a finite number in {bracket}{low}, {high}]{what}, got {value!r}")


# ----------------------------------------------------------------------------- unbalanced / semi-relaxed
def relaxation_tau(rho, epsilon):
    r"""ott-jax's tau = rho / (rho + eps) for a KL marginal penalty of weight rho (rho = inf gives 1)."""
    if rho is None or (isinstance(rho, float) and math.isinf(rho)):
        return 1.0
    return rho / (rho + epsilon)


def _concrete_float(name, value):
    if not is_concrete(value):
        raise ValueError(f"{name} must be concrete (not traced): ott-jax's LinearProblem stores tau as "
                         f"static data")
    return float(np.asarray(value))


def unbalanced_problem(
    geom: geometry.Geometry,
    a: Optional[Float[Array, " n"]] = None,
    b: Optional[Float[Array, " m"]] = None,
    *,
    rho_a: Optional[float] = None,
    rho_b: Optional[float] = None,
    reference: str = "ones",
) -> linear_problem.LinearProblem:
    r"""``LinearProblem`` with KL-relaxed marginals rho_a KL(P1 | a) + rho_b KL(P^T 1 | b).

    ``rho=None`` (or inf) keeps that marginal a hard constraint. tau = rho / (rho + eps) with the geometry's
    epsilon (concrete, since ott-jax keeps tau as static data). Solve with ``Sinkhorn()(prob)``.

    ``reference`` is the reference measure of the entropic term ``eps KL(P | R)``: ``"ones"`` (R = 1 1^T,
    the solver's own objective, ott-jax's and POT's ``sinkhorn_unbalanced(reg_type='entropy')``) or
    ``"product"`` (R = a b^T, POT's ``reg_type='kl'``). The two differ for unbalanced problems (up to
    ~80% on the plan); the product reference is solved as the all-ones one on the cost
    ``C_ij - eps (log a_i + log b_j)`` (a dense ``Geometry``; it needs a, b > 0, and the cost stays >= 0
    while every weight is <= 1).
    """
    _check_number("rho_a", rho_a, low=0, high=np.inf, low_open=True, allow_none=True)
    _check_number("rho_b", rho_b, low=0, high=np.inf, low_open=True, allow_none=True)
    if reference not in ("ones", "product"):
        raise ValueError(f"reference must be 'ones' (KL(P | 1 1^T)) or 'product' (KL(P | a b^T)), got {reference!r}")
    eps = _concrete_float("geom.epsilon", geom.epsilon)
    tau_a = relaxation_tau(None if rho_a is None else float(rho_a), eps)
    tau_b = relaxation_tau(None if rho_b is None else float(rho_b), eps)
    if reference == "product":
        n, m = geom.shape
        a = jnp.full((n,), 1.0 / n) if a is None else jnp.asarray(a)
        b = jnp.full((m,), 1.0 / m) if b is None else jnp.asarray(b)
        if is_concrete(a, b) and not (np.all(np.asarray(a) > 0) and np.all(np.asarray(b) > 0)):
            raise ValueError("a and b must be > 0 everywhere for reference='product' (log a, log b enter the cost)")
        cost = geom.cost_matrix - eps * (jnp.log(a)[:, None] + jnp.log(b)[None, :])
        geom = geometry.Geometry(cost_matrix=cost, epsilon=geom.epsilon_scheduler)
    return linear_problem.LinearProblem(geom, a=a, b=b, tau_a=float(tau_a), tau_b=float(tau_b))


def semi_relaxed_problem(geom, a=None, b=None, *, rho_b: float) -> linear_problem.LinearProblem:
    """Semi-relaxed OT: the first marginal exact (tau_a = 1), the second KL-relaxed with weight ``rho_b``."""
    if rho_b is None:
        raise ValueError("rho_b must be a number > 0 for semi-relaxed OT, got None")
    return unbalanced_problem(geom, a, b, rho_a=None, rho_b=rho_b)


# ----------------------------------------------------------------------------------------- partial OT
def dummy_point_problem(prob: linear_problem.LinearProblem, mass, *, n_dummies: int = 1,
                        dummy_margin: float = 30.0, online: bool = False) -> linear_problem.LinearProblem:
    r"""The balanced extended problem of partial OT (module docstring): n_dummies dummy rows and columns.

    a' = [a, (|b| - s)/d ...], b' = [b, (|a| - s)/d ...], C' = [[C, 0], [0, A]], A = 2 max C + margin eps.
    The epsilon (scheduler) of ``prob.geom`` is kept. ``online`` (a point cloud): the extension is a point
    cloud too, with :class:`DummyPointCost`, and max C is taken in one streaming pass.
    """
    geom = prob.geom
    a, b = prob.a, prob.b
    eps = geom.epsilon
    d = n_dummies
    if online:   # points with a flag coordinate and DummyPointCost: C' is never formed either
        op = cost_operator(geom, True)
        big = (2.0 * op.max_cost() + dummy_margin * eps) / op.inv_scale   # in the point cloud's unscaled units
        ext = pointcloud.PointCloud(_dummy_points(geom.x, d), _dummy_points(geom.y, d),
                                    cost_fn=DummyPointCost(geom.cost_fn, big), epsilon=geom.epsilon_scheduler,
                                    scale_cost=geom._scale_cost)
        dtype = geom.x.dtype
    else:
        cost = geom.cost_matrix
        dtype = cost.dtype
        big = 2.0 * jnp.max(cost) + dummy_margin * eps
        top = jnp.concatenate([cost, jnp.zeros((cost.shape[0], d), cost.dtype)], axis=1)
        bottom = jnp.concatenate([jnp.zeros((d, cost.shape[1]), cost.dtype),
                                  jnp.full((d, d), big, cost.dtype)], axis=1)
        ext = geometry.Geometry(cost_matrix=jnp.concatenate([top, bottom], axis=0),
                                epsilon=geom.epsilon_scheduler)
    mass = jnp.asarray(mass, dtype)
    a_ext = jnp.concatenate([a, jnp.full((d,), (jnp.sum(b) - mass) / d, a.dtype)])
    b_ext = jnp.concatenate([b, jnp.full((d,), (jnp.sum(a) - mass) / d, b.dtype)])
    return linear_problem.LinearProblem(ext, a=a_ext, b=b_ext)


@jax.tree_util.register_pytree_node_class
class DummyPointCost(costs.CostFn):
    r"""The extended cost of partial OT on points (module docstring), for the online path: points carry one
    more coordinate, a flag that is 1 on a dummy point; between two real points the cost is ``base``'s (on
    the other coordinates), between a real and a dummy point 0, between two dummies ``big``."""

    def __init__(self, base: costs.CostFn, big):
        self.base, self.big = base, big

    def all_pairs(self, x, y):
        dx, dy = x[:, -1:] > 0, y[None, :, -1] > 0
        real = self.base.all_pairs(x[:, :-1], y[:, :-1])
        return jnp.where(dx | dy, jnp.where(dx & dy, self.big, 0.0), real)

    def __call__(self, x, y):
        return self.all_pairs(x[None], y[None])[0, 0]

    def tree_flatten(self):
        return (self.base, self.big), None

    @classmethod
    def tree_unflatten(cls, aux_data, children):
        return cls(*children)


def _dummy_points(z, d):
    """Points with the dummy flag coordinate (0), followed by ``d`` dummies at the origin (flag 1)."""
    real = jnp.concatenate([z, jnp.zeros((z.shape[0], 1), z.dtype)], axis=1)
    dummy = jnp.zeros((d, z.shape[1] + 1), z.dtype).at[:, -1].set(1.0)
    return jnp.concatenate([real, dummy], axis=0)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class PartialOutput(OTResult):
    """Partial OT result: the extended balanced solve and its top-left (real-to-real) block.

    Attributes (``errors``, ``n_iters``, ``status`` are those of the extended solve; ``ot_prob`` is the
    original problem, so ``cost`` is ``<C, P>`` over the real block, POT's ``partial_wasserstein2``
    value, and ``marginals`` are bounded by a and b):
      extended: ``OTOutput`` of ``Sinkhorn`` on :func:`dummy_point_problem` (f, g over the extended problem).
      mass: the prescribed transported mass s.
    """

    extended: OTOutput = None
    mass: jax.Array = None

    @property
    def matrix(self) -> jax.Array:
        """The partial plan P (n x m): the extended plan without the dummy rows and columns."""
        n, m = self.ot_prob.geom.shape
        return self.extended.matrix[:n, :m]

    @property
    def transported_mass(self) -> jax.Array:
        """sum(P), = ``mass`` up to the marginal error."""
        if self.extended.online:
            return jnp.sum(self.marginals[0])
        return jnp.sum(self.matrix)

    @property
    def marginals(self) -> tuple[jax.Array, jax.Array]:
        """``(P 1, P^T 1)`` of the partial plan; online, the extended plan's streamed marginals less its
        entries between real and dummy points (cost 0: ``exp((f_i + g_j)/eps)``, O((n + m) d) of them)."""
        if not self.extended.online:
            return super().marginals
        ext = self.extended
        n, m = self.ot_prob.geom.shape
        eps = ext.geom.epsilon
        row, col = ext.marginals
        to_dummy = jnp.sum(jnp.exp((ext.f[:n, None] + ext.g[None, m:]) / eps), axis=1)
        from_dummy = jnp.sum(jnp.exp((ext.f[n:, None] + ext.g[None, :m]) / eps), axis=0)
        return row[:n] - to_dummy, col[:m] - from_dummy

    @property
    def cost(self) -> jax.Array:
        """``<C, P>`` over the real block; online, the extended plan's streamed cost less the dummy-dummy
        entries' (real-dummy entries cost 0)."""
        if not self.extended.online:
            return super().cost
        ext = self.extended
        n, m = self.ot_prob.geom.shape
        op = ext._op
        c_dd = op.block_cost(op.x[n:], op.y[m:])
        p_dd = jnp.exp((ext.f[n:, None] + ext.g[None, m:] - c_dd) / ext.geom.epsilon)
        return ext.cost - jnp.sum(p_dd * c_dd)

    @property
    def f(self) -> jax.Array:
        return self.extended.f[: self.ot_prob.geom.shape[0]]

    @property
    def g(self) -> jax.Array:
        return self.extended.g[: self.ot_prob.geom.shape[1]]


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class PartialTransport:
    r"""Partial OT of total mass ``mass`` through the dummy-point construction (POT's ``partial_wasserstein``).

    ``PartialTransport(mass=0.5)(prob) -> PartialOutput``. ``prob`` is a ``LinearProblem`` whose ``a`` and
    ``b`` may have different total masses (tau_a = tau_b = 1); 0 < mass <= min(|a|, |b|).

    Args:
      mass: total transported mass s (a pytree child: may be traced / swept / differentiated).
      sinkhorn: the balanced solver for the extended problem (our ``Sinkhorn``). Its ``online`` choice
        applies to ``prob``: on a streamed point cloud the extension is a point cloud as well
        (:class:`DummyPointCost`), and ``cost``, ``marginals``, ``transported_mass`` stream too.
      n_dummies: dummy points per side (POT's ``nb_dummies``), each with 1/n_dummies of the dummy mass.
      dummy_margin: dummy-dummy cost 2 max C + dummy_margin * eps, so that its entropic mass is
        ~exp(-dummy_margin) of the rest.

    Example:
      >>> import jax
      >>> from jaxopt_lab.ot.problems import point_cloud_problem
      >>> out = PartialTransport(mass=0.6)(point_cloud_problem(jax.random.PRNGKey(0), 40, epsilon_scale=0.05))
      >>> round(float(out.transported_mass), 3)
      0.6
    """

    mass: float = 1.0
    sinkhorn: Sinkhorn = dataclasses.field(default_factory=lambda: Sinkhorn(threshold=1e-4))
    n_dummies: int = _static(1)
    dummy_margin: float = _static(30.0)

    def __post_init__(self):
        _check_number("mass", self.mass, low=0, high=np.inf, low_open=True, what=" (transported mass)")
        if not isinstance(self.n_dummies, int) or self.n_dummies < 1:
            raise ValueError(f"n_dummies must be an int >= 1, got {self.n_dummies!r}")
        if not self.dummy_margin >= 0:
            raise ValueError(f"dummy_margin must be >= 0, got {self.dummy_margin!r}")

    def __call__(self, prob: linear_problem.LinearProblem) -> PartialOutput:
        if prob.tau_a != 1.0 or prob.tau_b != 1.0:
            raise ValueError(f"prob must have hard marginals (tau_a = tau_b = 1) for partial OT, got "
                             f"tau_a={prob.tau_a}, tau_b={prob.tau_b}")
        validate_problem(prob, require_balanced_mass=False)
        if is_concrete(self.mass, prob.a, prob.b):
            bound = min(float(np.sum(prob.a)), float(np.sum(prob.b)))
            if float(self.mass) > bound * (1 + 1e-6):
                raise ValueError(f"mass must be <= min(sum(a), sum(b)) = {bound:.6g}, got {self.mass!r}")
        return _solve_partial(self, prob)


@jax.jit
def _solve_partial(solver: PartialTransport, prob) -> PartialOutput:
    online = is_online(prob.geom, solver.sinkhorn.online)
    ext = dummy_point_problem(prob, solver.mass, n_dummies=solver.n_dummies, dummy_margin=solver.dummy_margin,
                              online=online)
    out = (dataclasses.replace(solver.sinkhorn, online=True) if online else solver.sinkhorn)(ext)
    return PartialOutput(errors=out.errors, n_iters=out.n_iters, status=out.status, ot_prob=prob, extended=out,
                         mass=jnp.asarray(solver.mass, out.f.dtype))


# -------------------------------------------------------------------------------------- pseudo-labels
def labelling_problem(
    logits: Float[Array, "n K"],
    *,
    epsilon: float,
    prior: Optional[Float[Array, " K"]] = None,
) -> linear_problem.LinearProblem:
    r"""Samples -> clusters problem of OT pseudo-labelling: C = -log softmax(logits), a = 1/n, b = prior.

    ``prior`` (cluster proportions) defaults to uniform 1/K, SeLa's equipartition; it is normalized.
    """
    if np.ndim(logits) != 2 or np.shape(logits)[1] < 2:
        raise ValueError(f"logits must be a 2-D array [n, K] with K >= 2 clusters, got shape {np.shape(logits)}")
    if is_concrete(logits) and not np.all(np.isfinite(np.asarray(logits))):
        raise ValueError("logits must be finite, got non-finite entries")
    _check_number("epsilon", epsilon, low=0, high=np.inf, low_open=True)
    n, k = np.shape(logits)
    cost = -jax.nn.log_softmax(jnp.asarray(logits), axis=-1)
    dtype = cost.dtype
    if prior is None:
        b = jnp.full((k,), 1.0 / k, dtype)
    else:
        if np.shape(prior) != (k,):
            raise ValueError(f"prior must have shape ({k},) (one mass per cluster), got {np.shape(prior)}")
        if is_concrete(prior):
            p = np.asarray(prior)
            if not np.all(np.isfinite(p)) or np.any(p < 0) or not p.sum() > 0:
                raise ValueError(f"prior must be finite, >= 0 and not all zero, got {p!r}")
        b = jnp.asarray(prior, dtype) / jnp.sum(jnp.asarray(prior, dtype))
    geom = geometry.Geometry(cost_matrix=cost, epsilon=epsilon)
    return linear_problem.LinearProblem(geom, a=jnp.full((n,), 1.0 / n, dtype), b=b)


def rho_schedule(step, total_steps, rho_base: float = 0.1, rho_upper: float = 1.0):
    r"""P^2OT's ramp rho(t) = rho_base + (rho_upper - rho_base) exp(-5 (1 - t/T)^2), t/T clipped to [0, 1].

    (rhfeiyang/PPOT ``set_rho`` with the "sigmoid" strategy; jit-friendly in ``step``.)
    """
    _check_number("rho_base", rho_base, low=0, high=1, low_open=True)
    _check_number("rho_upper", rho_upper, low=0, high=1, low_open=True)
    if is_concrete(rho_base, rho_upper) and rho_upper < rho_base:
        raise ValueError(f"rho_upper must be >= rho_base = {rho_base}, got {rho_upper!r}")
    if isinstance(total_steps, (int, float)) and not total_steps > 0:
        raise ValueError(f"total_steps must be > 0, got {total_steps!r}")
    t = jnp.clip(jnp.asarray(step, jnp.result_type(float)) / total_steps, 0.0, 1.0)
    return rho_base + (rho_upper - rho_base) * jnp.exp(-5.0 * (1.0 - t) ** 2)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class LabellingOutput(OTResult):
    """OT pseudo-labelling result (SeLa, P^2OT, SP^2OT) on a :func:`labelling_problem`.

    Attributes (``errors``, ``n_iters``, ``status``: of the (last) scaling loop, per-block trace as in
    ``_loop.iterate``; ``ot_prob``: the labelling problem, cost -log softmax(logits), a = 1/n,
    b = cluster prior):
      f: potentials of the samples (n,).
      g: potentials of the clusters, (K,) or (K + 1,) with P^2OT's dummy column last.
      rho: the fraction of the mass assigned to real clusters (1 for SeLa).
    """

    f: jax.Array = None
    g: jax.Array = None
    rho: jax.Array = None

    @property
    def matrix(self) -> jax.Array:
        """Plan between samples and the K real clusters, Q_ij = exp((f_i + g_j - C_ij) / eps), (n, K)."""
        geom = self.ot_prob.geom
        k = geom.shape[1]
        return jnp.exp((self.f[:, None] + self.g[None, :k] - geom.cost_matrix) / geom.epsilon)

    @property
    def pseudo_labels(self) -> jax.Array:
        """Soft pseudo-labels n Q (rows sum to the sample's transported mass, <= 1)."""
        return self.matrix * self.matrix.shape[0]

    @property
    def labels(self) -> jax.Array:
        """Hard labels: the row-wise argmax of the plan (int32)."""
        return jnp.argmax(self.matrix, axis=1).astype(jnp.int32)

    @property
    def sample_weights(self) -> jax.Array:
        """n Q_i 1: how much of sample i is assigned to real clusters (its confidence), in [0, 1]."""
        return jnp.sum(self.pseudo_labels, axis=1)

    @property
    def selected(self) -> jax.Array:
        """Boolean mask of the floor(rho n) samples with the largest ``sample_weights`` (P^2OT's selection)."""
        w = self.sample_weights
        n = w.shape[0]
        rank = jnp.argsort(jnp.argsort(-w))
        return rank < jnp.floor(self.rho * n + 1e-6)

    @property
    def cluster_masses(self) -> jax.Array:
        """Q^T 1 (K,): the mass given to each cluster (sums to rho)."""
        return jnp.sum(self.matrix, axis=0)


def _check_labelling_problem(prob, name="prob"):
    if prob.tau_a != 1.0 or prob.tau_b != 1.0:
        raise ValueError(f"{name} must be a labelling_problem with tau_a = tau_b = 1 (the relaxation is the "
                         f"solver's gamma), got tau_a={prob.tau_a}, tau_b={prob.tau_b}")
    validate_problem(prob)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class P2OT:
    r"""Progressive partial OT pseudo-labelling (module docstring): ``P2OT(rho=0.3)(prob) -> LabellingOutput``.

    Args:
      rho: fraction of the total mass transported to the real clusters, in (0, 1] (a child: ramp it
        with :func:`rho_schedule` inside a jitted training loop).
      gamma: weight of the KL penalty on the cluster sizes (``gamma_bound`` = 1 in PPOT); ``None`` makes the
        cluster marginals hard constraints (partial OT with a dummy column, PPOT's "pot").
      threshold: stop when the l1 norm of the dual gradient (marginal-fit error) is below it.
      max_iterations, inner_iterations: loop bounds (PPOT's ``sk_iter_limit`` = 1000).

    ``init=(f, g)`` (g with K + 1 entries) warm-starts the potentials (PPOT warm-starts its column scaling).
    """

    rho: float = 0.1
    gamma: Optional[float] = 1.0
    threshold: float = 1e-5
    max_iterations: int = _static(1000)
    inner_iterations: int = _static(10)

    def __post_init__(self):
        _check_number("rho", self.rho, low=0, high=1, low_open=True, what=" (transported fraction)")
        _check_number("gamma", self.gamma, low=0, high=np.inf, low_open=True, allow_none=True)
        _check_number("threshold", self.threshold, low=0, high=np.inf)
        for name in ("max_iterations", "inner_iterations"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be an int >= 1, got {v!r}")

    def __call__(self, prob: linear_problem.LinearProblem, init=None) -> LabellingOutput:
        _check_labelling_problem(prob)
        return _solve_p2ot(self, prob, init)


def _p2ot_parts(solver: P2OT, prob):
    """Extended cost [C, 0], log a, log b' = log [rho b, 1 - rho], per-column tau and 1 / (KL weight)."""
    cost = prob.geom.cost_matrix
    n, k = cost.shape
    dtype = cost.dtype
    eps = prob.geom.epsilon
    rho = jnp.asarray(solver.rho, dtype)
    ext_cost = jnp.concatenate([cost, jnp.zeros((n, 1), dtype)], axis=1)
    b_ext = jnp.concatenate([rho * prob.b, (1.0 - rho)[None]])
    log_b = jnp.where(b_ext > 0, jnp.log(jnp.where(b_ext > 0, b_ext, 1.0)), -jnp.inf)
    if solver.gamma is None:
        tau = jnp.ones((k + 1,), dtype)
        fit_rate = jnp.zeros((k + 1,), dtype)  # 0 = hard constraint
    else:
        gamma = jnp.asarray(solver.gamma, dtype)
        tau = jnp.concatenate([jnp.full((k,), gamma / (gamma + eps), dtype), jnp.ones((1,), dtype)])
        fit_rate = jnp.concatenate([jnp.full((k,), 1.0 / gamma, dtype), jnp.zeros((1,), dtype)])
    return ext_cost, jnp.log(prob.a), b_ext, log_b, tau, fit_rate


def _p2ot_loop(solver: P2OT, prob, init):
    """Per-column semi-relaxed log-domain scaling on the extended problem; returns a LoopOutput."""
    ext_cost, log_a, b_ext, log_b, tau, fit_rate = _p2ot_parts(solver, prob)
    eps = prob.geom.epsilon
    n, k1 = ext_cost.shape
    finite_b = jnp.isfinite(log_b)

    op = DenseCost(ext_cost)

    def step(_, state):
        f, g = state
        g = log_half_step(op, f, log_b, tau, eps, axis=0)
        g = jnp.where(finite_b, g, -jnp.inf)  # zero-mass columns (rho = 1: the dummy) stay empty
        return log_half_step(op, g, log_a, 1.0, eps, axis=1), g

    def error(state):
        # l1 norm of the dual gradient: P 1 = a, and column j fits b'_j exp(-g_j / gamma_j).
        f, g = state
        p = jnp.exp((f[:, None] + g[None, :] - ext_cost) / eps)
        g_fin = jnp.where(finite_b, g, 0.0)
        target_b = jnp.where(finite_b, b_ext * jnp.exp(-g_fin * fit_rate), 0.0)
        return jnp.sum(jnp.abs(p.sum(1) - prob.a)) + jnp.sum(jnp.abs(p.sum(0) - target_b))

    dtype = ext_cost.dtype
    if init is None:
        init = (jnp.zeros((n,), dtype), jnp.zeros((k1,), dtype))
    init = (jnp.asarray(init[0], dtype), jnp.where(finite_b, jnp.asarray(init[1], dtype), -jnp.inf))
    return _loop.iterate(step, error, init, threshold=solver.threshold, max_iterations=solver.max_iterations,
                         inner_iterations=solver.inner_iterations)


def p2ot_objective(solver: P2OT, out: LabellingOutput) -> jax.Array:
    r"""Primal objective of P^2OT at a solution ``out`` (on ``out.ot_prob``'s cost):

    <C', Q'> + eps sum Q' (log Q' - 1) + gamma KL(Q[:, :K]^T 1 | rho b), Q' = [Q, dummy column], generalized
    KL -- the function the scaling minimizes (the hard constraints are met by the scaling).
    """
    return _plan_objective(solver, out.ot_prob, out.matrix, out.f, out.g)


def _plan_objective(p2ot: P2OT, prob, q_real, f, g):
    """P^2OT objective of the extended plan [q_real, exp((f + g_K) / eps)] on ``prob``'s cost."""
    eps = prob.geom.epsilon
    k = prob.geom.shape[1]
    dummy = jnp.exp((f + g[k]) / eps)  # the dummy column costs 0
    q = jnp.concatenate([q_real, dummy[:, None]], axis=1)
    ext_cost = jnp.concatenate([prob.geom.cost_matrix, jnp.zeros_like(dummy)[:, None]], axis=1)
    logq = jnp.log(jnp.where(q > 0, q, 1.0))
    value = jnp.sum(q * ext_cost) + eps * jnp.sum(jnp.where(q > 0, q * (logq - 1.0), 0.0))
    if p2ot.gamma is not None:
        mass, target = q_real.sum(0), p2ot.rho * prob.b
        value = value + p2ot.gamma * jnp.sum(
            jnp.where(mass > 0, mass * jnp.log(jnp.where(mass > 0, mass, 1.0) / target), 0.0) - mass + target)
    return value


@jax.jit
def _solve_p2ot(solver: P2OT, prob, init) -> LabellingOutput:
    out = _p2ot_loop(solver, prob, init)
    f, g = out.state
    return LabellingOutput(errors=out.errors, n_iters=out.n_iters, status=out.status, ot_prob=prob, f=f, g=g,
                           rho=jnp.asarray(solver.rho, prob.geom.cost_matrix.dtype))


def knn_similarity(features: Float[Array, "n d"], k: int) -> Float[Array, "n n"]:
    r"""Row-stochastic k-nearest-neighbour graph on cosine similarity (self excluded), SP^2OT's S.

    S_ij = 1/k if j is among the k most cosine-similar samples to i, else 0 (SPPOT's "rmDiag, knn" graph,
    binarized and normalized by the degree so that the semantic weight does not scale with k).
    """
    if not isinstance(k, int) or k < 1 or k >= np.shape(features)[0]:
        raise ValueError(f"k must be an int in [1, n - 1] (neighbours per sample), got {k!r}")
    x = features / jnp.linalg.norm(features, axis=1, keepdims=True)
    sim = x @ x.T - 3.0 * jnp.eye(x.shape[0], dtype=x.dtype)  # cosine <= 1: the diagonal is never picked
    _, idx = jax.lax.top_k(sim, k)
    rows = jnp.repeat(jnp.arange(x.shape[0]), k)
    return jnp.zeros_like(sim).at[rows, idx.ravel()].set(1.0 / k)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class SP2OT:
    r"""Semantic-regularized P^2OT by Majorization-Minimization (module docstring).

    ``SP2OT(P2OT(rho=0.3), semantic_weight=1.0)(prob, similarity) -> LabellingOutput``: minimizes the P^2OT
    objective minus lambda n <S, Q Q^T> (Q the n x K plan; the factor n keeps lambda comparable to the cost
    for a row-stochastic S such as :func:`knn_similarity`), lambda = (1 - rho) ``semantic_weight`` as in
    rhfeiyang/SPPOT. Each MM step solves P^2OT on the linearized cost C - lambda n (S + S^T) Q_t, warm-started;
    it stops when the objective changes by less than ``threshold``. When S + S^T is positive semi-definite
    the semantic term is concave and every step decreases the objective.

    The output's ``ot_prob`` is the last linearized problem (so ``matrix`` is the plan that was solved);
    ``errors``/``n_iters``/``converged`` are the MM loop's (converged also requires the last P^2OT solve).
    """

    p2ot: P2OT = dataclasses.field(default_factory=P2OT)
    semantic_weight: float = 1.0
    threshold: float = 1e-5
    max_iterations: int = _static(20)

    def __post_init__(self):
        _check_number("semantic_weight", self.semantic_weight, low=0, high=np.inf)
        _check_number("threshold", self.threshold, low=0, high=np.inf)
        if not isinstance(self.max_iterations, int) or self.max_iterations < 1:
            raise ValueError(f"max_iterations must be an int >= 1, got {self.max_iterations!r}")

    def __call__(self, prob: linear_problem.LinearProblem, similarity: Float[Array, "n n"]) -> LabellingOutput:
        _check_labelling_problem(prob)
        n = prob.geom.shape[0]
        if np.shape(similarity) != (n, n):
            raise ValueError(f"similarity must be a ({n}, {n}) sample-similarity matrix, got {np.shape(similarity)}")
        if is_concrete(similarity) and not np.all(np.isfinite(np.asarray(similarity))):
            raise ValueError("similarity must be finite, got non-finite entries")
        return _solve_sp2ot(self, prob, similarity)

    def objective(self, prob, similarity, out: LabellingOutput) -> jax.Array:
        """SP^2OT objective of the plan in ``out`` on ``prob``'s own cost: P^2OT's minus lambda n <S, Q Q^T>."""
        return _sp2ot_objective(self, prob, similarity, out.matrix, out.f, out.g)


def _sp2ot_objective(solver: SP2OT, prob, similarity, q, f, g):
    lam = (1.0 - solver.p2ot.rho) * solver.semantic_weight
    semantic = q.shape[0] * jnp.sum(similarity * (q @ q.T))
    return _plan_objective(solver.p2ot, prob, q, f, g) - lam * semantic


@jax.jit
def _solve_sp2ot(solver: SP2OT, prob, similarity) -> LabellingOutput:
    cost = prob.geom.cost_matrix
    n, k = cost.shape
    dtype = cost.dtype
    eps = prob.geom.epsilon
    lam = (1.0 - solver.p2ot.rho) * solver.semantic_weight
    sym = similarity + similarity.T

    def linearized(q):
        # The gradient of -lam n <S, Q Q^T> at q is -lam n (S + S^T) q: the majorizer's linear cost.
        geom = geometry.Geometry(cost_matrix=cost - lam * n * (sym @ q), epsilon=eps)
        return linear_problem.LinearProblem(geom, a=prob.a, b=prob.b)

    def step(_, state):
        f, g, _, q, value, _, _ = state
        prob_t = linearized(q)
        out = _p2ot_loop(solver.p2ot, prob_t, (f, g))
        f, g = out.state
        q_new = jnp.exp((f[:, None] + g[None, :k] - prob_t.geom.cost_matrix) / eps)
        return f, g, q, q_new, _sp2ot_objective(solver, prob, similarity, q_new, f, g), value, out.status

    # Start from the uniform plan rho / (n K) (SPPOT's initialization).
    q0 = jnp.full((n, k), solver.p2ot.rho / (n * k), dtype)
    inf = jnp.asarray(jnp.inf, dtype)
    init = (jnp.zeros((n,), dtype), jnp.zeros((k + 1,), dtype), q0, q0, inf, inf, jnp.int32(_loop.MAX_ITERATIONS))
    def change(state):  # objective change; "not yet measured" (inf) is a large finite error, not a failure
        value, previous = state[4], state[5]
        return jnp.where(jnp.isfinite(previous), jnp.abs(value - previous), jnp.finfo(dtype).max)

    out = _loop.iterate(step, change, init, threshold=solver.threshold,
                        max_iterations=solver.max_iterations, inner_iterations=1)
    f, g, q_lin, _, _, _, inner_status = out.state
    # converged needs the last P^2OT solve converged too; otherwise its status (or the MM loop's) stands
    status = jnp.where(out.status == _loop.CONVERGED, inner_status, out.status)
    return LabellingOutput(errors=out.errors, n_iters=out.n_iters, status=status, ot_prob=linearized(q_lin),
                           f=f, g=g, rho=jnp.asarray(solver.p2ot.rho, dtype))


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class SeLa:
    r"""Equipartition self-labelling (module docstring): ``SeLa()(labelling_problem(logits, epsilon=1/25))``.

    Entropic OT with uniform marginals on C = -log softmax(logits), solved by our ``Sinkhorn``; labels are the
    row-wise argmax of the plan. The problem's ``b`` is the cluster prior (uniform = SeLa's equipartition).
    """

    sinkhorn: Sinkhorn = dataclasses.field(default_factory=lambda: Sinkhorn(threshold=1e-5, max_iterations=2000))

    def __call__(self, prob: linear_problem.LinearProblem, init=None) -> LabellingOutput:
        _check_labelling_problem(prob)
        return _solve_sela(self, prob, init)


@jax.jit
def _solve_sela(solver: SeLa, prob, init) -> LabellingOutput:
    out = solver.sinkhorn(prob, init)
    return LabellingOutput(errors=out.errors, n_iters=out.n_iters, status=out.status, ot_prob=prob, f=out.f,
                           g=out.g, rho=jnp.ones((), prob.geom.cost_matrix.dtype))
