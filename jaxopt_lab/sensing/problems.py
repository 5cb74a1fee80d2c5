"""Matrix sensing problems: ground truths, measurement operators (pytrees), noise.

A problem is pure data: a measurement operator ``A``, the measurements ``y = A(M*) + noise`` and the
ground truth ``M*`` (kept only to measure the error of the iterates). Every operator is normalised to be
near-isotropic, ``||A(X)||^2 ~= ||X||_F^2``, so the losses read

    f(X)    = 1/2 ||A(X X^T) - y||^2          (symmetric model, X in R^{n x k})
    f(F, G) = 1/2 ||A(F G^T) - y||^2          (asymmetric model)

which is the usual ``(1/2m) sum_i (<A_i, X X^T> - y_i)^2`` with ``A(X)_i = <A_i, X> / sqrt(m)``.

Operators (all pytrees; each gives the map, its adjoint and the two products a factored gradient needs):

* :class:`GaussianOperator` -- dense ``A_i`` with i.i.d. N(0, 1) entries (symmetrised ``(Z + Z^T)/2`` for a
  symmetric problem, as in the papers), ``[m, n1, n2]`` memory: for small n.
* :class:`RankOneOperator` -- ``A_i = a_i b_i^T`` with Gaussian ``a_i, b_i``; ``A(F G^T)_i =
  sum_j (a_i^T f_j)(b_i^T g_j) / sqrt(m)`` is evaluated from the factors in O(m n k) without forming
  ``F G^T``, and so is ``A*(r) G = a^T diag(r) (b G) / sqrt(m)``: for large n.
* :class:`CompletionOperator` -- a Bernoulli(p) mask ``Omega``: ``A(X) = P_Omega(X) / sqrt(p)`` so the loss
  is ``(1/2p) ||P_Omega(X X^T - M*)||_F^2``.

Noise: Gaussian ``sigma z_i`` and sparse outliers ``s_i`` with ``|s_i| = scale ||y||_inf`` on a random
fraction of the measurements (the setting of Ma & Fattahi, arXiv 2202.08788; the magnitude follows
Titan-Tong/ScaledGD ``MS_l1.m``).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
import warnings
from typing import Optional, Union

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

__all__ = [
    "GaussianOperator", "RankOneOperator", "CompletionOperator", "SensingProblem",
    "gaussian_operator", "rank_one_operator", "completion_operator",
    "spectrum", "symmetric_ground_truth", "asymmetric_ground_truth",
    "add_gaussian_noise", "add_outliers", "make_problem", "make_completion_problem",
    "small_init", "spectral_init", "check_identifiable",
]


def _pytree(cls=None, *, meta=()):
    """Register a frozen dataclass as a pytree: fields in ``meta`` are static, the rest children."""
    def wrap(cls):
        cls = dataclasses.dataclass(frozen=True)(cls)
        names = [f.name for f in dataclasses.fields(cls)]
        return jax.tree_util.register_dataclass(
            cls, data_fields=[n for n in names if n not in meta], meta_fields=list(meta))
    return wrap(cls) if cls is not None else wrap


def _check_positive_int(name: str, value, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _check_positive(name: str, value, *, allow_zero: bool = False) -> None:
    """Validate a concrete Python number (traced values are left alone so vmap/jit work)."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        ok = value >= 0 if allow_zero else value > 0
        if not (ok and math.isfinite(value)):
            allowed = ">= 0" if allow_zero else "> 0"
            raise ValueError(f"{name} must be a finite number {allowed}, got {value!r}")


# ------------------------------------------------------------------------------------------------
# Measurement operators.

@_pytree(meta=("shape",))
class GaussianOperator:
    """Dense Gaussian sensing ``A(X)_i = <A_i, X> / sqrt(m)``; ``matrices`` has shape ``[m, n1, n2]``.

    ``gram`` (optional) is ``A*A`` as an ``[n1 n2, n1 n2]`` matrix, ``H = sum_i vec(A_i) vec(A_i)^T / m``,
    so that ``A*(A(X)) = mat(H vec X)``. :func:`gaussian_operator` precomputes it when ``n1 n2 <= m``:
    then the solvers form ``A*(A(X X^T) - y) = mat(H vec(X X^T)) - A*(y)`` in ``(n1 n2)^2`` operations
    per step instead of ``2 m n1 n2`` (no larger than the matrices themselves), and a vmapped sweep over
    trials sharing the operator does it as one ``[trials, n1 n2] x [n1 n2, n1 n2]`` GEMM.
    """

    matrices: Float[Array, "m n1 n2"]
    shape: tuple
    gram: Optional[Float[Array, "n1n2 n1n2"]] = None

    @property
    def num_measurements(self) -> int:
        return self.matrices.shape[0]

    def __call__(self, X: Float[Array, "n1 n2"]) -> Float[Array, " m"]:
        return jnp.einsum("mij,ij->m", self.matrices, X) / math.sqrt(self.num_measurements)

    def adjoint(self, y: Float[Array, " m"]) -> Float[Array, "n1 n2"]:
        """``A*(y) = sum_i y_i A_i / sqrt(m)``."""
        return jnp.einsum("m,mij->ij", y, self.matrices) / math.sqrt(self.num_measurements)

    def apply_factored(self, F, G):
        return self(F @ G.T)

    def adjoint_times(self, y, G):
        """``A*(y) G``."""
        return self.adjoint(y) @ G

    def adjoint_transpose_times(self, y, F):
        """``A*(y)^T F``."""
        return self.adjoint(y).T @ F

    def adjoint_products(self, y, F, G):
        """``(A*(y) G, A*(y)^T F)``, the two gradient products, with ``A*(y)`` formed once."""
        S = self.adjoint(y)
        return S @ G, S.T @ F

    def normal(self, X: Float[Array, "n1 n2"]) -> Float[Array, "n1 n2"]:
        """``A*(A(X))``: through ``gram`` when it is there, else as the two maps."""
        if self.gram is None:
            return self.adjoint(self(X))
        return (self.gram @ X.reshape(-1)).reshape(X.shape)


@functools.partial(jax.jit, static_argnames=("m",))
def _gram(matrices, m):
    flat = matrices.reshape(matrices.shape[0], -1)
    return flat.T @ flat / m


@_pytree(meta=("shape",))
class RankOneOperator:
    """Rank-one Gaussian sensing ``A(X)_i = a_i^T X b_i / sqrt(m)``, evaluated from the factors.

    ``apply_factored(F, G)`` and ``adjoint_times(y, G)`` cost O(m n k) and never form an n x n matrix;
    ``__call__`` / ``adjoint`` (dense X) are there for tests and small problems.
    """

    left: Float[Array, "m n1"]
    right: Float[Array, "m n2"]
    shape: tuple

    @property
    def num_measurements(self) -> int:
        return self.left.shape[0]

    def __call__(self, X):
        return jnp.einsum("mi,ij,mj->m", self.left, X, self.right) / math.sqrt(self.num_measurements)

    def adjoint(self, y):
        return (self.left * y[:, None]).T @ self.right / math.sqrt(self.num_measurements)

    def apply_factored(self, F, G):
        # a_i^T F G^T b_i = <F^T a_i, G^T b_i>: two (m x n)(n x k) products and a row sum.
        return jnp.sum((self.left @ F) * (self.right @ G), axis=1) / math.sqrt(self.num_measurements)

    def adjoint_times(self, y, G):
        return self.left.T @ (y[:, None] * (self.right @ G)) / math.sqrt(self.num_measurements)

    def adjoint_transpose_times(self, y, F):
        return self.right.T @ (y[:, None] * (self.left @ F)) / math.sqrt(self.num_measurements)

    def adjoint_products(self, y, F, G):
        return self.adjoint_times(y, G), self.adjoint_transpose_times(y, F)


@_pytree(meta=("shape",))
class CompletionOperator:
    """Matrix completion ``A(X) = P_Omega(X) / sqrt(p)`` (measurements are a masked n1 x n2 array)."""

    mask: Float[Array, "n1 n2"]
    probability: Float[Array, ""]
    shape: tuple

    def __call__(self, X):
        return self.mask * X / jnp.sqrt(self.probability)

    def adjoint(self, y):
        return self.mask * y / jnp.sqrt(self.probability)

    def apply_factored(self, F, G):
        return self(F @ G.T)

    def adjoint_times(self, y, G):
        return self.adjoint(y) @ G

    def adjoint_transpose_times(self, y, F):
        return self.adjoint(y).T @ F

    def adjoint_products(self, y, F, G):
        S = self.adjoint(y)
        return S @ G, S.T @ F


Operator = Union[GaussianOperator, RankOneOperator, CompletionOperator]


def _check_corruption(condition_number, outlier_fraction, outlier_scale):
    """Concrete checks made before the (jitted) builders run, where these values are traced."""
    if isinstance(condition_number, numbers.Real) and not condition_number >= 1:
        raise ValueError(f"condition_number must be >= 1, got {condition_number!r}")
    if isinstance(outlier_fraction, numbers.Real) and not 0 <= outlier_fraction <= 1:
        raise ValueError(f"outlier_fraction must be in [0, 1], got {outlier_fraction!r}")
    _check_positive("outlier_scale", outlier_scale, allow_zero=True)


def _check_shape(name, shape):
    if (not isinstance(shape, tuple) or len(shape) != 2
            or not all(isinstance(s, numbers.Integral) and s >= 1 for s in shape)):
        raise ValueError(f"{name} must be a pair of positive integers (n1, n2), got {shape!r}")


@functools.partial(jax.jit, static_argnames=("m", "shape", "symmetric", "dtype"))
def _gaussian_matrices(key, m, shape, symmetric, dtype):
    Z = jax.random.normal(key, (m, *shape), dtype)
    if not symmetric:
        return Z
    # (Z + Z^T)/2 in distribution: N(0, 1/2) off the diagonal, N(0, 1) on it. Built from one triangle so
    # that A_i is exactly symmetric (a fused 0.5 Z + 0.5 Z^T, computed twice, need not be bitwise).
    upper = jnp.triu(Z, 1) * jnp.sqrt(jnp.asarray(0.5, dtype))
    return upper + jnp.swapaxes(upper, 1, 2) + jnp.eye(shape[0], dtype=dtype) * Z


def gaussian_operator(key: jax.Array, m: int, shape: tuple, *, symmetric: bool = False,
                      dtype=None) -> GaussianOperator:
    """``m`` dense Gaussian matrices of ``shape``; ``symmetric`` uses ``A_i ~ (Z + Z^T) / 2`` (in law).

    The symmetrised ensemble is isotropic on symmetric X: ``<(Z+Z^T)/2, X> = <Z, X>``. With
    ``n1 n2 <= m`` the Gram matrix ``A*A`` is precomputed (``gram``; see :class:`GaussianOperator`).
    """
    _check_positive_int("m", m)
    _check_shape("shape", shape)
    if symmetric and shape[0] != shape[1]:
        raise ValueError(f"shape must be square for a symmetric operator, got {shape!r}")
    dtype = jnp.dtype(dtype or jnp.result_type(float))
    matrices = _gaussian_matrices(key, m, shape, symmetric, dtype)
    gram = _gram(matrices, m) if shape[0] * shape[1] <= m else None
    return GaussianOperator(matrices, shape, gram)


def rank_one_operator(key: jax.Array, m: int, shape: tuple, *, dtype=None) -> RankOneOperator:
    """``m`` rank-one Gaussian measurements ``a_i b_i^T`` (independent a, b: ``E <A_i,X>^2 = ||X||^2``)."""
    _check_positive_int("m", m)
    _check_shape("shape", shape)
    dtype = dtype or jnp.result_type(float)
    ka, kb = jax.random.split(key)
    return RankOneOperator(jax.random.normal(ka, (m, shape[0]), dtype),
                           jax.random.normal(kb, (m, shape[1]), dtype), shape)


def completion_operator(key: jax.Array, shape: tuple, probability: float, *,
                        symmetric: bool = False, dtype=None) -> CompletionOperator:
    """A Bernoulli(``probability``) mask (symmetric mask for a symmetric problem)."""
    _check_shape("shape", shape)
    if isinstance(probability, numbers.Real) and not 0 < probability <= 1:
        raise ValueError(f"probability must be in (0, 1], got {probability!r}")
    dtype = dtype or jnp.result_type(float)
    mask = jax.random.bernoulli(key, probability, shape)
    if symmetric:
        if shape[0] != shape[1]:
            raise ValueError(f"shape must be square for a symmetric mask, got {shape!r}")
        upper = jnp.triu(mask)
        mask = upper | upper.T
    return CompletionOperator(mask.astype(dtype), jnp.asarray(probability, dtype), shape)


# ------------------------------------------------------------------------------------------------
# Ground truth.

def spectrum(rank: int, condition_number, dtype=None) -> Float[Array, " r"]:
    """Singular values ``1 = s_1 >= ... >= s_r = 1/condition_number``, geometrically spaced."""
    _check_positive_int("rank", rank)
    if isinstance(condition_number, numbers.Real) and not condition_number >= 1:
        raise ValueError(f"condition_number must be >= 1, got {condition_number!r}")
    dtype = dtype or jnp.result_type(float)
    t = jnp.arange(rank, dtype=dtype) / max(rank - 1, 1)
    return jnp.asarray(condition_number, dtype) ** (-t)


def _orthonormal(key, n, r, dtype):
    q, _ = jnp.linalg.qr(jax.random.normal(key, (n, r), dtype))
    return q


def symmetric_ground_truth(key: jax.Array, n: int, rank: int, condition_number=1.0, *,
                           singular_values: Optional[Float[Array, " r"]] = None,
                           dtype=None) -> Float[Array, "n r"]:
    """``U*`` with ``M* = U* U*^T`` having a random column space and the given eigenvalues."""
    _check_positive_int("n", n)
    _check_positive_int("rank", rank)
    if rank > n:
        raise ValueError(f"rank must be <= n={n}, got {rank}")
    dtype = dtype or jnp.result_type(float)
    s = spectrum(rank, condition_number, dtype) if singular_values is None else jnp.asarray(
        singular_values, dtype)
    return _orthonormal(key, n, rank, dtype) * jnp.sqrt(s)


def asymmetric_ground_truth(key: jax.Array, shape: tuple, rank: int, condition_number=1.0, *,
                            dtype=None) -> tuple[Float[Array, "n1 r"], Float[Array, "n2 r"]]:
    """Balanced ``(F*, G*)`` with ``M* = F* G*^T`` having the given singular values.

    Two independent keys for the two sides (the ScaledGD MATLAB code reuses one seed, making U* = V*).
    """
    _check_shape("shape", shape)
    _check_positive_int("rank", rank)
    if rank > min(shape):
        raise ValueError(f"rank must be <= min(shape)={min(shape)}, got {rank}")
    dtype = dtype or jnp.result_type(float)
    kl, kr = jax.random.split(key)
    root = jnp.sqrt(spectrum(rank, condition_number, dtype))
    return _orthonormal(kl, shape[0], rank, dtype) * root, _orthonormal(kr, shape[1], rank, dtype) * root


# ------------------------------------------------------------------------------------------------
# Noise.

def add_gaussian_noise(key: jax.Array, y: jax.Array, std) -> jax.Array:
    """``y + std * z`` with ``z ~ N(0, I)``."""
    _check_positive("std", std, allow_zero=True)
    return y + std * jax.random.normal(key, y.shape, y.dtype)


def add_outliers(key: jax.Array, y: jax.Array, fraction, scale=10.0,
                 mask: Optional[jax.Array] = None) -> jax.Array:
    """Corrupt a random ``fraction`` of ``y`` by ``+-scale * ||y||_inf`` (random sign).

    ``mask`` (completion) restricts the outliers to the observed entries.
    """
    if isinstance(fraction, numbers.Real) and not 0 <= fraction <= 1:
        raise ValueError(f"fraction must be in [0, 1], got {fraction!r}")
    _check_positive("scale", scale, allow_zero=True)
    kb, ks = jax.random.split(key)
    hit = jax.random.bernoulli(kb, fraction, y.shape)
    if mask is not None:
        hit = hit & (mask > 0)
    sign = jnp.where(jax.random.bernoulli(ks, 0.5, y.shape), 1.0, -1.0).astype(y.dtype)
    magnitude = scale * jnp.max(jnp.abs(y))
    return y + jnp.where(hit, sign * magnitude, 0.0).astype(y.dtype)


# ------------------------------------------------------------------------------------------------
# Problems.

@_pytree(meta=("symmetric",))
class SensingProblem:
    """``y = A(M*) + noise``; ``truth`` holds the factors of ``M*`` (``(U*, U*)`` if symmetric).

    Attributes:
      operator: the measurement operator.
      y: the (possibly corrupted) measurements.
      truth: ``(F*, G*)`` with ``M* = F* G*^T``.
      symmetric: whether the model is ``X X^T`` (static).
    """

    operator: Operator
    y: jax.Array
    truth: tuple
    symmetric: bool

    @property
    def ground_truth(self) -> jax.Array:
        """``M* = F* G*^T``."""
        F, G = self.truth
        return F @ G.T

    @property
    def shape(self) -> tuple:
        return self.operator.shape

    @property
    def rank(self) -> int:
        return self.truth[0].shape[1]


def check_identifiable(num_measurements: int, shape: tuple, rank: int, *, symmetric: bool = False,
                       stacklevel: int = 3) -> bool:
    """Warn (and return False) when fewer measurements than the dimension of the rank-r manifold.

    A rank-r ``n1 x n2`` matrix has ``r (n1 + n2 - r)`` degrees of freedom, a rank-r PSD ``n x n`` one
    ``r n - r (r - 1) / 2``; with fewer generic measurements several rank-r matrices fit ``y`` and M*
    cannot be identified.
    """
    n1, n2 = shape
    dof = rank * n1 - rank * (rank - 1) // 2 if symmetric else rank * (n1 + n2 - rank)
    if num_measurements < dof:
        warnings.warn(f"m={num_measurements} measurements are fewer than the {dof} degrees of freedom of a "
                      f"rank-{rank} {n1}x{n2} matrix: the problem is not identifiable (the papers use "
                      f"m >= 5 n r)", UserWarning, stacklevel=stacklevel)
        return False
    return True


def make_problem(key: jax.Array, n: int, rank: int, m: int, *, operator: str = "gaussian",
                 symmetric: bool = True, n2: Optional[int] = None, condition_number=1.0,
                 noise_std=0.0, outlier_fraction=0.0, outlier_scale=10.0,
                 symmetric_operator: Optional[bool] = None, operator_key: Optional[jax.Array] = None,
                 dtype=None) -> SensingProblem:
    """A random sensing problem.

    Args:
      key: PRNG key (ground truth, operator and noise are drawn from split keys).
      n: rows of M* (and columns, unless ``n2`` is given; a symmetric problem is square).
      rank: rank r of M*.
      m: number of measurements.
      operator: ``"gaussian"`` (dense, symmetrised when ``symmetric``) or ``"rank_one"``.
      symmetric: PSD ``M* = U* U*^T`` (model ``X X^T``) or ``M* = F* G*^T`` (model ``F G^T``).
      condition_number: ``sigma_1(M*) / sigma_r(M*)``; the spectrum is geometric from 1.
      noise_std: Gaussian noise on each (normalised) measurement.
      outlier_fraction, outlier_scale: sparse outliers of size ``outlier_scale * ||y||_inf``.
      symmetric_operator: symmetrise the dense ``A_i`` (default: ``symmetric``). Symmetric ``A_i`` see
        only ``sym(X)``; fitting a symmetric M* with the asymmetric model ``F G^T`` needs ``False``,
        or the antisymmetric part of ``F G^T`` is never measured.
      operator_key: draw the operator from this key instead of from ``key``. Sweeps pass one fixed key
        here, so that vmapping over ``key`` varies the ground truth and noise while the (large)
        operator is drawn once, not once per trial.

    >>> prob = make_problem(jax.random.PRNGKey(0), n=10, rank=2, m=200)
    >>> prob.y.shape, prob.ground_truth.shape
    ((200,), (10, 10))
    """
    _check_positive_int("n", n)
    _check_positive_int("rank", rank)
    _check_positive_int("m", m)
    if operator not in ("gaussian", "rank_one"):
        raise ValueError(f"operator must be 'gaussian' or 'rank_one', got {operator!r}")
    if n2 is not None:
        _check_positive_int("n2", n2)
        if symmetric and n2 != n:
            raise ValueError(f"n2 must equal n={n} for a symmetric problem, got {n2}")
    shape = (n, n if n2 is None else n2)
    if rank > min(shape):
        raise ValueError(f"rank must be <= min(n, n2)={min(shape)}, got {rank}")
    _check_positive("noise_std", noise_std, allow_zero=True)
    _check_corruption(condition_number, outlier_fraction, outlier_scale)
    check_identifiable(m, shape, rank, symmetric=symmetric)
    dtype = jnp.dtype(dtype or jnp.result_type(float))
    sym_op = symmetric if symmetric_operator is None else bool(symmetric_operator)
    if sym_op and shape[0] != shape[1]:
        raise ValueError(f"symmetric_operator=True needs a square problem, got shape {shape}")
    keys = jax.random.split(key, 4)
    k_op = keys[1] if operator_key is None else operator_key
    if operator == "gaussian":
        op = gaussian_operator(k_op, m, shape, symmetric=sym_op, dtype=dtype)
    else:
        op = rank_one_operator(k_op, m, shape, dtype=dtype)
    return _build_problem(keys, op, condition_number, noise_std, outlier_fraction, outlier_scale,
                          rank=rank, shape=shape, symmetric=symmetric, dtype=dtype)


@functools.partial(jax.jit, static_argnames=("rank", "shape", "symmetric", "dtype"))
def _build_problem(keys, op, condition_number, noise_std, outlier_fraction, outlier_scale, *, rank,
                   shape, symmetric, dtype):
    # One compiled call for the rest of the problem (op-by-op dispatch of ~20 small ops is far slower).
    k_truth, _, k_noise, k_out = keys
    if symmetric:
        U = symmetric_ground_truth(k_truth, shape[0], rank, condition_number, dtype=dtype)
        truth = (U, U)
    else:
        truth = asymmetric_ground_truth(k_truth, shape, rank, condition_number, dtype=dtype)
    y = op.apply_factored(*truth)
    y = add_gaussian_noise(k_noise, y, noise_std)
    y = add_outliers(k_out, y, outlier_fraction, outlier_scale)
    return SensingProblem(op, y, truth, symmetric)


def make_completion_problem(key: jax.Array, n: int, rank: int, probability, *,
                            symmetric: bool = False, n2: Optional[int] = None, condition_number=1.0,
                            noise_std=0.0, outlier_fraction=0.0, outlier_scale=10.0,
                            dtype=None) -> SensingProblem:
    """A matrix completion problem: ``y = P_Omega(M* + noise) / sqrt(p)``, Omega ~ Bernoulli(p).

    The ground truth has Haar-random (hence incoherent with high probability) singular vectors.
    """
    _check_positive_int("n", n)
    _check_positive_int("rank", rank)
    shape = (n, n if n2 is None else n2)
    if symmetric and shape[0] != shape[1]:
        raise ValueError(f"n2 must equal n={n} for a symmetric problem, got {n2}")
    if rank > min(shape):
        raise ValueError(f"rank must be <= min(n, n2)={min(shape)}, got {rank}")
    if isinstance(probability, numbers.Real):
        if not 0 < probability <= 1:
            raise ValueError(f"probability must be in (0, 1], got {probability!r}")
        # a symmetric mask observes each off-diagonal pair twice
        observed = probability * shape[0] * shape[1] * (0.5 if symmetric else 1.0)
        check_identifiable(int(observed), shape, rank, symmetric=symmetric)
    _check_positive("noise_std", noise_std, allow_zero=True)
    _check_corruption(condition_number, outlier_fraction, outlier_scale)
    dtype = jnp.dtype(dtype or jnp.result_type(float))
    return _build_completion(key, probability, condition_number, noise_std, outlier_fraction,
                             outlier_scale, rank=rank, shape=shape, symmetric=symmetric, dtype=dtype)


@functools.partial(jax.jit, static_argnames=("rank", "shape", "symmetric", "dtype"))
def _build_completion(key, probability, condition_number, noise_std, outlier_fraction, outlier_scale,
                      *, rank, shape, symmetric, dtype):
    k_truth, k_op, k_noise, k_out = jax.random.split(key, 4)
    if symmetric:
        U = symmetric_ground_truth(k_truth, shape[0], rank, condition_number, dtype=dtype)
        truth = (U, U)
    else:
        truth = asymmetric_ground_truth(k_truth, shape, rank, condition_number, dtype=dtype)
    op = completion_operator(k_op, shape, probability, symmetric=symmetric, dtype=dtype)
    y = op.apply_factored(*truth)
    y = add_gaussian_noise(k_noise, y, noise_std) * op.mask
    y = add_outliers(k_out, y, outlier_fraction, outlier_scale, mask=op.mask)
    return SensingProblem(op, y, truth, symmetric)


# ------------------------------------------------------------------------------------------------
# Initialisations.

def small_init(key: jax.Array, shape: tuple, alpha, width=None) -> jax.Array:
    """``alpha * N(0, 1) / sqrt(n)``: the small random initialisation (shape ``(n, k)``) of
    "How Over-Parameterization Slows Down Gradient Descent in Matrix Sensing" (arXiv:2310.01769).

    ``alpha`` may be traced (to vmap over init scales); concrete values must be > 0. ``width`` (<= k,
    may be traced) zeroes the columns from ``width`` on: every solver here keeps zero columns at zero
    (their gradients are ``(...) X``), so a batch of different ranks ``k`` shares one array shape and one
    compiled, vmapped call.
    """
    if not isinstance(shape, tuple) or len(shape) != 2:
        raise ValueError(f"shape must be (n, k), got {shape!r}")
    _check_positive_int("n", shape[0])
    _check_positive_int("k", shape[1])
    _check_positive("alpha", alpha)
    X = alpha * jax.random.normal(key, shape, jnp.result_type(float)) / math.sqrt(shape[0])
    if width is not None:
        if isinstance(width, numbers.Integral) and not 1 <= width <= shape[1]:
            raise ValueError(f"width must be an integer in [1, k={shape[1]}], got {width!r}")
        X = X * (jnp.arange(shape[1]) < width).astype(X.dtype)
    return X


def spectral_init(problem: SensingProblem, k: int) -> tuple[jax.Array, jax.Array]:
    """Top-k SVD of ``A*(y)`` (``= P_Omega(M)/p`` for completion): ``(U sqrt(S), V sqrt(S))``.

    For the symmetric model the symmetric part's top-k eigenpairs are used, clipped at 0, and
    ``(X, X)`` is returned.
    """
    _check_positive_int("k", k)
    if k > min(problem.shape):
        raise ValueError(f"k must be <= min(shape)={min(problem.shape)}, got {k}")
    return _spectral(problem, k)


@functools.partial(jax.jit, static_argnames=("k",))
def _spectral(problem, k):
    # A*(A(M*)) ~= M* for every normalised operator (= P_Omega(M*)/p for completion).
    Y = problem.operator.adjoint(problem.y)
    if problem.symmetric:
        w, V = jnp.linalg.eigh(0.5 * (Y + Y.T))
        X = V[:, ::-1][:, :k] * jnp.sqrt(jnp.maximum(w[::-1][:k], 0.0))
        return X, X
    U, s, Vt = jnp.linalg.svd(Y, full_matrices=False)
    root = jnp.sqrt(s[:k])
    return U[:, :k] * root, Vt[:k].T * root
