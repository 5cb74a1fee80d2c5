"""Benchmark problem generators for the OT solvers.

Every generator is a pure function of an explicit ``key`` and returns ott-jax objects (a
``LinearProblem`` over a ``PointCloud`` geometry), so our solvers, ott-jax and POT can always be run on the
same problem. Epsilon belongs to the geometry (as in ott-jax); the generators set it relative to the
median of the cost matrix, ``epsilon = epsilon_scale * median(C)``, the scale used by Sinkhorn-Newton-Sparse (arXiv:2401.12253).

* :func:`point_cloud_problem` -- two empirical distributions in R^d ("optimal transportation between
  empirical distributions", the first problem family of Sinkhorn-Newton-Sparse, arXiv:2401.12253).
* :func:`grid_density_problem` -- W1 / W2 between discretized densities on a regular grid over [0, 1]^2
  (Gaussian-bump mixtures, normalized and floored at 1e-12 so that ``log a`` stays finite), the second
  family of the same paper.
* :func:`imbalanced_mixture` -- a long-tailed Gaussian mixture with known labels, class sizes decaying
  geometrically from the head to the tail with a chosen imbalance ratio n_tail / n_head (the setting of
  P^2OT, arXiv:2401.09266, with CIFAR-100-LT replaced by synthetic features).
"""

from __future__ import annotations

from typing import Literal, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float
from ott.geometry import costs, pointcloud
from ott.problems.linear import linear_problem

__all__ = [
    "median_cost",
    "point_cloud_problem",
    "grid_points",
    "grid_densities",
    "grid_density_problem",
    "Mixture",
    "long_tailed_class_sizes",
    "imbalanced_mixture",
]


def _check_positive_int(name: str, value, minimum: int = 1) -> None:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")


def _check_epsilon_scale(epsilon_scale) -> None:
    if isinstance(epsilon_scale, (int, float)) and not (np.isfinite(epsilon_scale) and epsilon_scale > 0):
        raise ValueError(f"epsilon_scale must be a finite number > 0 (epsilon = epsilon_scale * "
                         f"median cost), got {epsilon_scale!r}")


def median_cost(x: Float[Array, "n d"], y: Float[Array, "m d"], cost_fn: costs.CostFn) -> jax.Array:
    """Median entry of the cost matrix ``C_ij = cost_fn(x_i, y_j)`` (the unit for epsilon)."""
    return jnp.median(pointcloud.PointCloud(x, y, cost_fn=cost_fn).cost_matrix)


def _problem(x, y, a, b, cost_fn, epsilon_scale) -> linear_problem.LinearProblem:
    epsilon = epsilon_scale * median_cost(x, y, cost_fn)
    geom = pointcloud.PointCloud(x, y, cost_fn=cost_fn, epsilon=epsilon)
    return linear_problem.LinearProblem(geom, a=a, b=b)


def point_cloud_problem(
    key: jax.Array,
    n: int,
    m: Optional[int] = None,
    *,
    dim: int = 2,
    epsilon_scale: float = 0.01,
    uniform_weights: bool = False,
    cost: Literal["sqeuclidean", "euclidean"] = "sqeuclidean",
    dtype=jnp.float32,
) -> linear_problem.LinearProblem:
    r"""Entropic OT between two random empirical measures in R^dim.

    Source points x_i ~ N(0, I); target points y_j ~ N(mu, diag(s^2)) with a random shift ``mu`` and
    scales ``s`` in [0.5, 1.5] (so the transport is not the identity). Weights are uniform, or (with
    ``uniform_weights=False``) drawn as ``w ∝ 0.5 + Uniform(0, 1)`` and normalized to total mass one.
    Cost ``||x - y||^2`` (W2) or ``||x - y||`` (W1); ``epsilon = epsilon_scale * median(C)``.

    Example:
      >>> prob = point_cloud_problem(jax.random.PRNGKey(0), 50, epsilon_scale=0.05)
      >>> prob.geom.shape, float(prob.a.sum())
      ((50, 50), 1.0)
    """
    m = n if m is None else m
    _check_positive_int("n", n)
    _check_positive_int("m", m)
    _check_positive_int("dim", dim)
    _check_epsilon_scale(epsilon_scale)
    if cost not in ("sqeuclidean", "euclidean"):
        raise ValueError(f"cost must be 'sqeuclidean' or 'euclidean', got {cost!r}")
    kx, ky, kmu, ks, ka, kb = jax.random.split(key, 6)
    x = jax.random.normal(kx, (n, dim), dtype)
    shift = jax.random.normal(kmu, (dim,), dtype)
    scale = jax.random.uniform(ks, (dim,), dtype, 0.5, 1.5)
    y = shift + scale * jax.random.normal(ky, (m, dim), dtype)
    if uniform_weights:
        a, b = jnp.full((n,), 1.0 / n, dtype), jnp.full((m,), 1.0 / m, dtype)
    else:
        a = 0.5 + jax.random.uniform(ka, (n,), dtype)
        b = 0.5 + jax.random.uniform(kb, (m,), dtype)
        a, b = a / a.sum(), b / b.sum()
    cost_fn = costs.SqEuclidean() if cost == "sqeuclidean" else costs.Euclidean()
    return _problem(x, y, a, b, cost_fn, epsilon_scale)


def grid_points(grid_size: int, dtype=jnp.float32) -> Float[Array, "n 2"]:
    """Cell centres of a ``grid_size x grid_size`` grid over [0, 1]^2, row-major, shape (grid_size^2, 2)."""
    _check_positive_int("grid_size", grid_size)
    t = (jnp.arange(grid_size, dtype=dtype) + 0.5) / grid_size
    gx, gy = jnp.meshgrid(t, t, indexing="ij")
    return jnp.stack([gx.ravel(), gy.ravel()], axis=-1)


def grid_densities(key: jax.Array, grid_size: int, *, n_bumps: int = 3, floor: float = 1e-12,
                   dtype=jnp.float32) -> Float[Array, "n"]:
    r"""A random mixture of ``n_bumps`` Gaussian bumps evaluated on the grid, normalized to mass one.

    Bump centres ~ Uniform([0.15, 0.85]^2), widths ~ Uniform(0.05, 0.2), weights ~ Uniform(0.5, 1.5).
    The density is floored at ``floor`` before renormalizing: zero-mass cells would make ``log a`` infinite
    (a pitfall of discretized-density benchmarks).
    """
    _check_positive_int("n_bumps", n_bumps)
    if not floor > 0:
        raise ValueError(f"floor must be > 0 (zero-mass cells break log a), got {floor!r}")
    pts = grid_points(grid_size, dtype)
    kc, kw, ks = jax.random.split(key, 3)
    centres = jax.random.uniform(kc, (n_bumps, 2), dtype, 0.15, 0.85)
    widths = jax.random.uniform(ks, (n_bumps,), dtype, 0.05, 0.2)
    weights = jax.random.uniform(kw, (n_bumps,), dtype, 0.5, 1.5)
    sq = jnp.sum((pts[:, None, :] - centres[None]) ** 2, axis=-1)
    density = jnp.sum(weights * jnp.exp(-0.5 * sq / widths ** 2), axis=-1)
    density = jnp.maximum(density / density.sum(), floor)
    return density / density.sum()


def grid_density_problem(
    key: jax.Array,
    grid_size: int,
    *,
    power: Literal[1, 2] = 2,
    n_bumps: int = 3,
    epsilon_scale: float = 0.01,
    dtype=jnp.float32,
) -> linear_problem.LinearProblem:
    r"""W_p (p = 1 or 2) between two random bump-mixture densities on a ``grid_size^2`` grid.

    The support of both measures is the grid; the cost is the Euclidean distance ``||x - y||_2`` for
    ``power=1`` (W1) and its square for ``power=2`` (W2); ``epsilon = epsilon_scale * median(C)``.
    The problem has ``n = grid_size^2`` points (16^2 = 256, 32^2 = 1024, 48^2 = 2304 in arXiv:2401.12253's grid experiments).
    """
    if power not in (1, 2):
        raise ValueError(f"power must be 1 (W1, cost ||x-y||) or 2 (W2, cost ||x-y||^2), got {power!r}")
    _check_epsilon_scale(epsilon_scale)
    ka, kb = jax.random.split(key)
    pts = grid_points(grid_size, dtype)
    a = grid_densities(ka, grid_size, n_bumps=n_bumps, dtype=dtype)
    b = grid_densities(kb, grid_size, n_bumps=n_bumps, dtype=dtype)
    cost_fn = costs.Euclidean() if power == 1 else costs.SqEuclidean()
    return _problem(pts, pts, a, b, cost_fn, epsilon_scale)


class Mixture(NamedTuple):
    """A labelled Gaussian mixture.

    Attributes:
      x: samples, shape (n, dim), grouped by class (class 0 first, the head).
      labels: int32 class of each sample, shape (n,).
      means: class means, shape (n_classes, dim).
      class_sizes: number of samples per class (host ints, decreasing from the head to the tail).
    """

    x: jax.Array
    labels: jax.Array
    means: jax.Array
    class_sizes: tuple

    @property
    def proportions(self) -> jax.Array:
        """Class proportions n_k / n (the prior that partial / progressive OT should recover)."""
        sizes = jnp.asarray(self.class_sizes, dtype=self.x.dtype)
        return sizes / sizes.sum()


def long_tailed_class_sizes(n_head: int, n_classes: int, imbalance_ratio: float) -> tuple:
    r"""Class sizes n_k = floor(n_head * ratio^(k / (K - 1))), k = 0..K-1 (the CIFAR-LT profile).

    ``imbalance_ratio`` = n_tail / n_head; every class keeps at least one sample.
    """
    _check_positive_int("n_head", n_head)
    _check_positive_int("n_classes", n_classes)
    if not (isinstance(imbalance_ratio, (int, float)) and 0 < imbalance_ratio <= 1):
        raise ValueError(f"imbalance_ratio (n_tail / n_head) must be in (0, 1], got {imbalance_ratio!r}")
    k = np.arange(n_classes)
    expo = k / max(n_classes - 1, 1)
    return tuple(int(max(1, np.floor(n_head * imbalance_ratio ** e))) for e in expo)


def imbalanced_mixture(
    key: jax.Array,
    *,
    n_head: int = 500,
    n_classes: int = 10,
    imbalance_ratio: float = 0.01,
    dim: int = 16,
    separation: float = 4.0,
    dtype=jnp.float32,
) -> Mixture:
    r"""Long-tailed Gaussian mixture for imbalanced clustering (P^2OT's setting, arXiv:2401.09266).

    Class k has n_k = floor(n_head * ratio^(k/(K-1))) samples (:func:`long_tailed_class_sizes`) drawn
    from N(mu_k, I_dim), with means mu_k = separation * (random unit vector), so the classes overlap
    when ``separation`` is a few units. Labels are known, for Hungarian-matched accuracy.

    Example:
      >>> mix = imbalanced_mixture(jax.random.PRNGKey(0), n_head=100, imbalance_ratio=0.1)
      >>> mix.class_sizes[0], mix.class_sizes[-1], mix.x.shape[0] == sum(mix.class_sizes)
      (100, 10, True)
    """
    _check_positive_int("dim", dim)
    if not (isinstance(separation, (int, float)) and separation > 0):
        raise ValueError(f"separation must be > 0, got {separation!r}")
    sizes = long_tailed_class_sizes(n_head, n_classes, imbalance_ratio)
    kmu, kx = jax.random.split(key)
    directions = jax.random.normal(kmu, (n_classes, dim), dtype)
    means = separation * directions / jnp.linalg.norm(directions, axis=-1, keepdims=True)
    labels = jnp.asarray(np.repeat(np.arange(n_classes), sizes), dtype=jnp.int32)
    x = means[labels] + jax.random.normal(kx, (labels.shape[0], dim), dtype)
    return Mixture(x, labels, means, sizes)
