"""Factorization solvers for matrix sensing and completion (papers in ``docs/sensing.md``).

Every solver is a pure, jitted function ``solver(problem, init..., *, hyperparameters, num_steps)`` that
runs ``num_steps`` steps in one ``lax.scan`` and records, after each step, the relative error
``||X_t X_t^T - M*||_F / ||M*||_F`` (``F_t G_t^T`` for the asymmetric model) in a preallocated trace, and
optionally the singular values of the iterate's product (``track_spectrum=True``). Hyperparameters
(step sizes, damping, decay) may be traced, so the solvers ``vmap`` over seeds, init scales and
step sizes; ranks are vmapped with :func:`~jaxopt_lab.sensing.problems.small_init`'s ``width`` mask
(zero columns stay zero under every update here). A fixed step count (not a tolerance stop) is what
the rate figures need: the whole error curve, down to the floating-point floor.

The steps are shaped for vmapped sweeps: ``X X^T`` is carried in the state (the error and the next
gradient share it); a dense operator with ``n1 n2 <= m`` applies ``A*A`` through its precomputed Gram
matrix, so a batch of trials on one operator costs one GEMM per step; the tiny per-trial products are
unrolled elementwise sums (:func:`_matmul`). The rank-one operator keeps the factored O(m n k) gradient.

Losses and gradients (operators normalised so that ``||A(X)|| ~= ||X||_F``, see ``problems.py``):

    f(X)    = 1/2 ||A(X X^T) - y||^2,   grad_X f = (A*(r) + A*(r)^T) X,      r = A(X X^T) - y
    f(F, G) = 1/2 ||A(F G^T) - y||^2,   grad_F f = A*(r) G,   grad_G f = A*(r)^T F
    h(X)    = ||A(X X^T) - y||_1 / sqrt(m)   (= (1/m) sum_i |<A_i, X X^T> - y_i|),
              subgradient (A*(s) + A*(s)^T) X / sqrt(m),  s = sign(r)

Divergence (too large a step) shows as a non-finite error in the trace; it is reported by the caller
(an experiment logs it and the run ends ``diverged``), never hidden.
"""

from __future__ import annotations

import functools
import numbers
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from .metrics import singular_values
from .problems import (CompletionOperator, RankOneOperator, SensingProblem, _check_positive,
                       _check_positive_int)

__all__ = [
    "SensingOutput", "symmetric_gradient", "asymmetric_gradients", "l1_subgradient",
    "rebalance", "gradient_descent", "asymmetric_gradient_descent", "subgradient_method",
    "scaled_gradient_descent", "alternating_minimization",
]


class SensingOutput(NamedTuple):
    """What every solver returns.

    Attributes:
      factors: ``(F, G)`` with the estimate ``F G^T`` (``(X, X)`` for the symmetric model).
      errors: relative error after each step, shape ``(num_steps,)``.
      spectrum: singular values of the estimate after each step, shape ``(num_steps, k)``
        (``(num_steps, 0)`` unless ``track_spectrum``).
      n_iters: the first step count at which the error fell below ``threshold`` (``num_steps`` if never).
      converged: whether the error fell below ``threshold``.
    """

    factors: tuple
    errors: jax.Array
    spectrum: jax.Array
    n_iters: jax.Array
    converged: jax.Array

    @property
    def estimate(self) -> jax.Array:
        F, G = self.factors
        return F @ G.T

    @property
    def final_error(self) -> jax.Array:
        return self.errors[-1]

    @property
    def diverged(self) -> jax.Array:
        return ~jnp.all(jnp.isfinite(self.errors))


# ------------------------------------------------------------------------------------------------
# Gradients (also used directly by tests and the benchmark).

def residual(problem: SensingProblem, F, G):
    """``A(F G^T) - y`` (from the factors: O(m n k) for the rank-one operator)."""
    return problem.operator.apply_factored(F, G) - problem.y


def symmetric_gradient(problem: SensingProblem, X: Float[Array, "n k"]) -> Float[Array, "n k"]:
    """``grad f(X) = (A*(r) + A*(r)^T) X`` for ``f(X) = 1/2 ||A(X X^T) - y||^2``."""
    r = residual(problem, X, X)
    a, b = problem.operator.adjoint_products(r, X, X)
    return a + b


def asymmetric_gradients(problem: SensingProblem, F, G) -> tuple[jax.Array, jax.Array]:
    """``(A*(r) G, A*(r)^T F)`` for ``f(F, G) = 1/2 ||A(F G^T) - y||^2``."""
    return problem.operator.adjoint_products(residual(problem, F, G), F, G)


def l1_subgradient(problem: SensingProblem, X):
    """A subgradient of ``h(X) = ||A(X X^T) - y||_1 / sqrt(m)`` (sign(0) = 0)."""
    r = residual(problem, X, X)
    a, b = problem.operator.adjoint_products(jnp.sign(r), X, X)
    return (a + b) / jnp.sqrt(jnp.asarray(r.size, X.dtype))


def rebalance(F, G, eps: float = 1e-30):
    """The one-step modification: ``(F, G) <- (F P^{-1/2} c, G P^{1/2} / c)``, ``P = F^T F``, ``c = ||F||_2``.

    ``F G^T`` is unchanged, but every singular value of F becomes ``c``: the tiny (order-alpha) directions
    that the over-parameterized columns of F keep after the first phase are lifted to order one, and G's
    matching directions shrink to order alpha^2. Plain GD then contracts the residual at a rate set by
    ``sigma_min(F)^2 ~ c^2`` instead of ``alpha^2``.

    This is our reading of the method of "How Over-Parameterization Slows Down Gradient Descent in Matrix
    Sensing: The Curses of Symmetry and Initialization" (Xiong, Ding, Du; arXiv 2310.01769), which
    "only modifies one step of GD": the abstract does not give the exact step, so this is our reading;
    this transformation ``(F Q, G Q^{-T})`` creates an order-one imbalance ``F^T F - G^T G`` at no change
    of the product, which is the mechanism the paper's analysis credits.
    """
    w, V = jnp.linalg.eigh(F.T @ F)
    w = jnp.maximum(w, eps)
    c = jnp.sqrt(w[-1])
    F = F @ (V * (c / jnp.sqrt(w))) @ V.T
    G = G @ (V * (jnp.sqrt(w) / c)) @ V.T
    return F, G


# ------------------------------------------------------------------------------------------------
# The step's building blocks, shaped for vmapped sweeps.

_UNROLL_MAX = 16


def _matmul(a: jax.Array, b: jax.Array) -> jax.Array:
    """``a @ b``; with an inner dimension ``<= 16``, as the unrolled sum of its outer products.

    Why: inside a vmapped sweep, XLA:CPU lowers a batch of tiny per-trial matmuls (n = 8, k = 4) to a
    batched dot at ~0.6 ns per multiply-add, slower than the step's shared GEMM; the unrolled sum
    ``sum_j a[:, j] b[j, :]`` fuses into one vectorised elementwise loop (~7x faster there; measured in
    experiments/bench_sensing.py). Same products, summed in a fixed order.
    """
    if a.shape[-1] > _UNROLL_MAX:
        return a @ b
    return sum(a[:, j, None] * b[None, j, :] for j in range(a.shape[-1]))


def _factored(problem: SensingProblem) -> bool:
    """Whether the gradient must be formed from the factors (rank-one: never form an n x n matrix)."""
    return isinstance(problem.operator, RankOneOperator)


def _adjoint_residual(problem: SensingProblem):
    """``P -> S = A*(A(P) - y)``, the matrix every gradient here multiplies the factors by.

    With the dense operator's precomputed Gram matrix ``H = A*A`` this is ``mat(H vec P) - A*(y)``
    (``A*(y)`` formed once per solve): under vmap over trials that share the operator, one
    ``[trials, n1 n2] x [n1 n2, n1 n2]`` GEMM per step. Otherwise the two maps.
    """
    op, y = problem.operator, problem.y
    if getattr(op, "gram", None) is not None:
        b = op.adjoint(y)
        return lambda P: op.normal(P) - b
    return lambda P: op.adjoint(op(P) - y)


def _symmetric_direction(problem: SensingProblem):
    """``(X, P = X X^T) -> grad f(X) = (S + S^T) X`` (:func:`symmetric_gradient`, reusing ``P``).

    With the Gram matrix, ``S + S^T = mat(H_s vec P) - (A*(y) + A*(y)^T)`` where ``H_s`` is ``H`` plus ``H``
    with its output index transposed, formed once per solve: no per-step (per-trial) transpose.
    """
    if _factored(problem):
        return lambda X, P: symmetric_gradient(problem, X)
    op, y = problem.operator, problem.y
    gram = getattr(op, "gram", None)
    if gram is None:
        S_of = _adjoint_residual(problem)

        def direction(X, P):
            S = S_of(P)
            return _matmul(S + S.T, X)
        return direction
    n1, n2 = op.shape
    N = n1 * n2
    # (H_s)^T, so that the step is a row-vector product vec(P)^T H_s^T: one GEMM under vmap
    HsT = (gram + gram.reshape(n1, n2, N).swapaxes(0, 1).reshape(N, N)).T
    B = op.adjoint(y)
    Bs = B + B.T

    def direction(X, P):
        return _matmul((P.reshape(-1) @ HsT).reshape(P.shape) - Bs, X)
    return direction


def _asymmetric_direction(problem: SensingProblem):
    """``(F, G, P = F G^T) -> (S G, S^T F)`` (:func:`asymmetric_gradients`, reusing ``P``)."""
    if _factored(problem):
        return lambda F, G, P: asymmetric_gradients(problem, F, G)
    S_of = _adjoint_residual(problem)

    def direction(F, G, P):
        S = S_of(P)
        return _matmul(S, G), _matmul(S.T, F)
    return direction


# ------------------------------------------------------------------------------------------------
# The shared scan.

def _scan(step, state, factors_of, truth, num_steps, threshold, track_spectrum, product_of=None):
    """Run ``state <- step(t, state)`` ``num_steps`` times, recording errors (and spectra) per step.

    ``product_of(state)`` gives ``F G^T`` where the state carries it (the next step reuses it), else it
    is formed from ``factors_of(state)``.
    """
    M = truth[0] @ truth[1].T
    norm = jnp.linalg.norm(M)

    def body(state, t):
        state = step(t, state)
        F, G = factors_of(state)
        P = _matmul(F, G.T) if product_of is None else product_of(state)
        err = jnp.linalg.norm(P - M) / norm
        spec = singular_values(F, G) if track_spectrum else jnp.zeros((0,), F.dtype)
        return state, (err, spec)

    state, (errors, spec) = jax.lax.scan(body, state, jnp.arange(num_steps, dtype=jnp.int32))
    below = errors < threshold
    n_iters = jnp.where(jnp.any(below), jnp.argmax(below) + 1, num_steps)
    return SensingOutput(factors_of(state), errors, spec, n_iters.astype(jnp.int32), jnp.any(below))


def _validate(problem, num_steps, threshold, *, symmetric: Optional[bool] = None, **factors):
    _check_positive_int("num_steps", num_steps)
    _check_positive("threshold", threshold, allow_zero=True)
    if symmetric is not None and problem.symmetric != symmetric:
        kind = "symmetric (X X^T)" if symmetric else "asymmetric (F G^T)"
        raise ValueError(f"problem must be {kind} for this solver, got symmetric={problem.symmetric}")
    n1, n2 = problem.shape
    for name, value in factors.items():
        rows = n2 if name == "G0" else n1
        if value.ndim != 2 or value.shape[0] != rows:
            raise ValueError(f"{name} must have shape ({rows}, k) to match the problem's shape "
                             f"{problem.shape}, got {tuple(value.shape)}")
        if value.shape[1] < 1:
            raise ValueError(f"{name} must have k >= 1 columns, got {tuple(value.shape)}")
    widths = {v.shape[1] for v in factors.values()}
    if len(widths) > 1:
        raise ValueError(f"{' and '.join(factors)} must have the same width k, got "
                         f"{[tuple(v.shape) for v in factors.values()]}")


# ------------------------------------------------------------------------------------------------
# Solvers.

@functools.partial(jax.jit, static_argnames=("num_steps", "track_spectrum"))
def _gd(problem, X0, step_size, num_steps, threshold, track_spectrum):
    direction = _symmetric_direction(problem)

    def step(t, state):  # state (X, X X^T): the product serves the error and the next gradient
        X, P = state
        X = X - step_size * direction(X, P)
        return X, _matmul(X, X.T)
    return _scan(step, (X0, _matmul(X0, X0.T)), lambda s: (s[0], s[0]), problem.truth, num_steps,
                 threshold, track_spectrum, product_of=lambda s: s[1])


def gradient_descent(problem: SensingProblem, X0: Float[Array, "n k"], *, step_size, num_steps: int,
                     threshold=0.0, track_spectrum: bool = False) -> SensingOutput:
    """Gradient descent on ``f(X) = 1/2 ||A(X X^T) - y||^2``: ``X <- X - eta (A*(r) + A*(r)^T) X``.

    The symmetric model of "How Over-Parameterization Slows Down Gradient Descent in Matrix Sensing"
    (arXiv 2310.01769): linear convergence for ``k = r``, a ``Omega(1/T^2)`` lower bound for ``k > r``
    from random init; from small init, the incremental learning of arXiv 2301.11500.

    >>> from jaxopt_lab.sensing import make_problem, small_init
    >>> prob = make_problem(jax.random.PRNGKey(0), n=8, rank=1, m=200)
    >>> out = gradient_descent(prob, small_init(jax.random.PRNGKey(1), (8, 1), 0.1), step_size=0.2,
    ...                        num_steps=300)
    >>> bool(out.errors[-1] < 1e-4)
    True
    """
    _validate(problem, num_steps, threshold, X0=X0)
    _check_positive("step_size", step_size)
    return _gd(problem, X0, step_size, num_steps, threshold, track_spectrum)


@functools.partial(jax.jit, static_argnames=("num_steps", "track_spectrum"))
def _agd(problem, F0, G0, step_size, rebalance_below, num_steps, threshold, track_spectrum):
    M = problem.ground_truth
    norm = jnp.linalg.norm(M)
    direction = _asymmetric_direction(problem)

    def step(t, state):  # state (F, G, F G^T, done)
        F, G, P, done = state
        gF, gG = direction(F, G, P)
        F, G = F - step_size * gF, G - step_size * gG
        P = _matmul(F, G.T)  # unchanged by the modification
        # The modification is applied once, at the first step whose error is below `rebalance_below`.
        trigger = (~done) & (jnp.linalg.norm(P - M) / norm < rebalance_below)
        Fr, Gr = rebalance(F, G)
        F, G = jnp.where(trigger, Fr, F), jnp.where(trigger, Gr, G)
        return F, G, P, done | trigger

    state = (F0, G0, _matmul(F0, G0.T), jnp.bool_(False))
    return _scan(step, state, lambda s: (s[0], s[1]), problem.truth, num_steps, threshold,
                 track_spectrum, product_of=lambda s: s[2])


def asymmetric_gradient_descent(problem: SensingProblem, F0, G0, *, step_size, num_steps: int,
                                rebalance_below=0.0, threshold=0.0,
                                track_spectrum: bool = False) -> SensingOutput:
    """Gradient descent on ``f(F, G) = 1/2 ||A(F G^T) - y||^2``, optionally with the one-step modification.

    ``F <- F - eta A*(r) G``, ``G <- G - eta A*(r)^T F``. With ``k > r`` and init scale alpha this converges
    linearly at an ``exp(-Omega(alpha^2 T))`` rate (arXiv 2310.01769, Xiong, Ding, Du). With
    ``rebalance_below > 0``, :func:`rebalance` is applied once, right after the first step whose relative
    error is below ``rebalance_below`` -- the modification that makes the rate independent of alpha.
    Works on symmetric problems too (``G0`` drawn independently of ``F0``).
    """
    _validate(problem, num_steps, threshold, F0=F0, G0=G0)
    _check_positive("step_size", step_size)
    _check_positive("rebalance_below", rebalance_below, allow_zero=True)
    return _agd(problem, F0, G0, step_size, rebalance_below, num_steps, threshold, track_spectrum)


@functools.partial(jax.jit, static_argnames=("num_steps", "normalize", "track_spectrum"))
def _subgm(problem, X0, step_size, decay, num_steps, normalize, threshold, track_spectrum):
    def step(t, X):
        D = l1_subgradient(problem, X)
        if normalize:
            D = D / jnp.maximum(jnp.linalg.norm(D), jnp.finfo(D.dtype).tiny)
        return X - step_size * decay ** t.astype(X.dtype) * D
    return _scan(step, X0, lambda X: (X, X), problem.truth, num_steps, threshold, track_spectrum)


def subgradient_method(problem: SensingProblem, X0, *, step_size, decay, num_steps: int,
                       normalize: bool = False, threshold=0.0,
                       track_spectrum: bool = False) -> SensingOutput:
    """Sub-gradient method on the l1 loss with geometric steps: ``X <- X - eta_0 q^t D_t``.

    ``h(X) = (1/m) sum_i |<A_i, X X^T> - y_i|``, ``D_t`` its subgradient; ``normalize`` divides ``D_t`` by
    its norm. From a small init it recovers M* under sparse, arbitrarily large outliers, for any
    over-parameterized width k >= r: "Global Convergence of Sub-gradient Method for Robust Matrix
    Recovery: Small Initialization, Noisy Measurements, and Over-parameterization" (Ma, Fattahi;
    arXiv 2202.08788). Too fast a decay ``q`` freezes the iterate before it reaches M*.
    """
    _validate(problem, num_steps, threshold, symmetric=True, X0=X0)
    _check_positive("step_size", step_size)
    if isinstance(decay, numbers.Real) and not 0 < decay <= 1:
        raise ValueError(f"decay must be in (0, 1], got {decay!r}")
    return _subgm(problem, X0, step_size, decay, num_steps, normalize, threshold, track_spectrum)


@functools.partial(jax.jit, static_argnames=("num_steps", "adaptive", "track_spectrum"))
def _scaled(problem, X0, step_size, damping, num_steps, adaptive, threshold, track_spectrum):
    eye = jnp.eye(X0.shape[1], dtype=X0.dtype)
    direction = _symmetric_direction(problem)

    def step(t, state):  # state (X, X X^T)
        X, P = state
        grad = direction(X, P)
        gram = X.T @ X
        # PrecGD: lambda_t proportional to sqrt(f(X_t)) = ||r|| / sqrt(2). Once the residual is exactly
        # zero, an over-parameterized X^T X is singular: a floor at eps * tr(X^T X) keeps it solvable.
        lam = damping * jnp.linalg.norm(residual(problem, X, X)) if adaptive else damping
        lam = lam + jnp.finfo(X.dtype).eps * jnp.trace(gram)
        # grad (X^T X + lambda I)^{-1}, via a k x k solve (the matrix is symmetric).
        X = X - step_size * jnp.linalg.solve(gram + lam * eye, grad.T).T
        return X, _matmul(X, X.T)
    return _scan(step, (X0, _matmul(X0, X0.T)), lambda s: (s[0], s[0]), problem.truth, num_steps,
                 threshold, track_spectrum, product_of=lambda s: s[1])


def scaled_gradient_descent(problem: SensingProblem, X0, *, step_size, damping, num_steps: int,
                            adaptive: bool = False, threshold=0.0,
                            track_spectrum: bool = False) -> SensingOutput:
    """ScaledGD(lambda) / PrecGD: ``X <- X - eta grad f(X) (X^T X + lambda I)^{-1}``.

    ``adaptive=False``: fixed ``lambda = damping`` (ScaledGD(lambda), "The Power of Preconditioning in
    Overparameterized Low-Rank Matrix Sensing", Xu, Shen, Ma, Tong, Chi; arXiv 2302.01186, with lambda
    of the order of sigma_r(M*)). ``adaptive=True``: ``lambda_t = damping * ||A(X X^T) - y||``, i.e.
    proportional to ``sqrt(f(X_t))`` (PrecGD, Zhang, Fattahi, Zhang, "Preconditioned Gradient Descent for
    Over-Parameterized Nonconvex Matrix Factorization", NeurIPS 2021;
    read from the paper body, not its abstract).
    The condition number of M* enters the iteration count only logarithmically.
    """
    _validate(problem, num_steps, threshold, symmetric=True, X0=X0)
    _check_positive("step_size", step_size)
    _check_positive("damping", damping, allow_zero=adaptive)
    return _scaled(problem, X0, step_size, damping, num_steps, adaptive, threshold, track_spectrum)


@functools.partial(jax.jit, static_argnames=("k", "num_sweeps", "cg_iterations"))
def _altmin(problem, k, num_sweeps, cg_iterations, ridge, threshold):
    op = problem.operator
    W = op.mask
    # y = P_Omega(M) / sqrt(p): the observed entries themselves.
    M_obs = problem.y * jnp.sqrt(op.probability)
    U, s, Vt = jnp.linalg.svd(op.adjoint(problem.y), full_matrices=False)
    U0 = U[:, :k] * jnp.sqrt(s[:k])
    V0 = Vt[:k].T * jnp.sqrt(s[:k])
    eye = jnp.eye(k, dtype=U0.dtype)

    def rows_update(W, M, V, U_prev):
        """Row-wise least squares: ``(V^T W_i V + ridge I) u_i = V^T (w_i * m_i)`` for every row i."""
        rhs = (W * M) @ V
        if cg_iterations == 0:  # exact normal equations: O(|Omega| k^2) work per sweep
            gram = jnp.einsum("ij,jk,jl->ikl", W, V, V) + ridge * eye
            return jnp.linalg.solve(gram, rhs[..., None])[..., 0]

        def solve_row(w, b, u0):  # a fixed number of CG steps, matvec O(n k): O(|Omega| k) per step
            def matvec(u):
                return V.T @ (w * (V @ u)) + ridge * u
            return jax.scipy.sparse.linalg.cg(matvec, b, x0=u0, tol=0.0, maxiter=cg_iterations)[0]
        return jax.vmap(solve_row)(W, rhs, U_prev)

    def step(t, state):
        U, V = state
        U = rows_update(W, M_obs, V, U)
        V = rows_update(W.T, M_obs.T, U, V)
        return U, V

    return _scan(step, (U0, V0), lambda s: s, problem.truth, num_sweeps, threshold, False)


def alternating_minimization(problem: SensingProblem, k: int, *, num_sweeps: int,
                             cg_iterations: int = 0, ridge=1e-8, threshold=0.0) -> SensingOutput:
    """Alternating minimization for matrix completion, exact or with approximate (CG) row solves.

    Spectral init ``U_0 S V_0^T = top-k SVD of P_Omega(M) / p``; then each sweep solves, for every row i of
    U, ``min_u ||P_{Omega_i}(m_i - V u)||^2 + ridge ||u||^2`` and likewise for V. ``cg_iterations=0`` solves
    the k x k normal equations exactly; ``cg_iterations > 0`` runs that many conjugate-gradient steps
    (warm-started at the previous row), each costing one product with ``V^T W_i V`` in O(n k) -- the
    approximate update whose errors the robust framework of "Low Rank Matrix Completion via Robust
    Alternating Minimization in Nearly Linear Time" (Gu, Song, Yin, Zhang; arXiv 2302.11068) tolerates.
    (The paper's fast solver is sketching-based; CG is our substitute.)
    The ridge keeps rows with fewer than k observed entries solvable. ``errors`` is per sweep.
    """
    if not isinstance(problem.operator, CompletionOperator):
        raise ValueError(f"problem must be a completion problem (CompletionOperator), got "
                         f"{type(problem.operator).__name__}")
    _check_positive_int("k", k)
    if k > min(problem.shape):
        raise ValueError(f"k must be <= min(shape)={min(problem.shape)}, got {k}")
    _check_positive_int("num_sweeps", num_sweeps)
    _check_positive_int("cg_iterations", cg_iterations, minimum=0)
    _check_positive("ridge", ridge, allow_zero=True)
    _check_positive("threshold", threshold, allow_zero=True)
    return _altmin(problem, k, num_sweeps, cg_iterations, ridge, threshold)
