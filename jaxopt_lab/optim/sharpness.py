"""The sharpness-aware family as optax transforms: perturb, re-evaluate the gradient, combine.

Every method here replaces the gradient ``g = grad L(w)`` of the current batch by a direction built
from gradients at perturbed weights. They share one mechanism, :func:`scale_by_perturbation`:

1. **perturb**: ``epsilon = perturb(g, w)`` (e.g. SAM's ascent step ``rho g / ||g||``);
2. **re-evaluate**: ``g_adv = grad_fn(w + epsilon)``, with ``grad_fn`` the keyword extra argument of
   ``update`` (``params -> grads`` on the *same* batch, the optimizer contract of ``docs/``);
3. **combine**: ``direction = combine(g, g_adv, ...)`` (SAM: ``g_adv``; GSAM: ``g_adv`` minus part of
   ``g`` orthogonal to it; finite-difference GR: a mix of ``g`` and ``g_adv``; GAM probes twice more).

Each method is a small ``(perturb, combine)`` pair, a ``scale_by_<name>`` transform (gradient-
replacing, first in a chain: ``optax.chain(scale_by_sam(0.05), optax.adam(1e-3))``) and an alias
``<name>(learning_rate, ..., base=None)`` = ``chain(scale_by_<name>, base or identity,
scale_by_learning_rate(learning_rate))``. ``base`` is any optax direction
(``optax.scale_by_adam()``) or a registry name (``"adam"``: that whole optimizer, with
``learning_rate``).

Conventions shared by all methods:

* ``||.||`` is the global l2 norm over the pytree, computed in float32 or wider. Normalisations use a
  *safe* division ``x / (||x|| + eps)`` that returns exactly 0 when ``x = 0`` (no NaN, even with
  ``eps = 0``; ``optax.contrib.normalize`` returns NaN there);
* radii (``rho``) are ``optax.ScalarOrSchedule`` evaluated at the transform's own step count;
* concrete Python hyperparameters are validated with a ``ValueError``; traced ones (from
  ``optax.inject_hyperparams``, ``jit``, ``vmap``) are not branched on;
* ``update`` raises a ``ValueError`` if ``grad_fn`` is missing, and ignores extra arguments it does not
  use (``value=...``).

Papers: SAM, Foret et al., "Sharpness-Aware Minimization for Efficiently Improving
Generalization", arXiv:2010.01412 (m-sharpness in its Section 4); ASAM, Kwon et al., arXiv:2102.11600;
GSAM, Zhuang et al., "Surrogate Gap Minimization Improves Sharpness-Aware Training", arXiv:2203.08065;
GAM, Zhang et al., "Gradient Norm Aware Minimization Seeks First-Order Flatness and Improves
Generalization", arXiv:2303.03108; Fisher SAM, Kim et al., "Fisher SAM: Information Geometry and
Sharpness Aware Minimisation", arXiv:2206.04920; FSAM, Zhong et al., "Improving Sharpness-Aware
Minimization with Fisher Mask for Better Generalization on Language Models", arXiv:2210.05497; SAM-ON,
Mueller et al., "Normalization Layers Are All That Sharpness-Aware Minimization Needs",
arXiv:2306.04226; finite-difference GR, Karakida et al., "Understanding Gradient Regularization in Deep
Learning: Efficient Finite-Difference Computation and Implicit Bias", arXiv:2210.02720.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional, Union

import jax
import jax.numpy as jnp
import optax

from ._common import (alias, check_int, check_nonnegative, check_positive, check_range,
                      concrete_number)
from .curvature import TopEigenOutput, hessian_vector_product, top_hessian_eigenvalue
from .registry import get as _get_optimizer
from .registry import info as _optimizer_info
from .registry import register

__all__ = [
    # the mechanism
    "SharpnessState", "Probe", "scale_by_perturbation", "safe_normalize", "global_norm",
    # methods
    "scale_by_sam", "sam", "scale_by_asam", "asam", "gsam_rho_schedule", "scale_by_gsam", "gsam",
    "scale_by_gam", "gam", "scale_by_fisher_sam", "fisher_sam", "scale_by_fsam_fisher_mask",
    "fsam_fisher_mask", "normalization_mask", "weight_mask", "scale_by_sam_on", "sam_on", "chunked_grad_fn",
    "scale_by_m_sam", "m_sam", "scale_by_fd_gr", "fd_gr",
    # curvature (jaxopt_lab/optim/curvature.py)
    "hessian_vector_product", "TopEigenOutput", "top_hessian_eigenvalue",
]

Params = Any
Updates = Any
GradFn = Callable[[Params], Updates]
Base = Union[None, str, optax.GradientTransformation]
Mask = Union[None, Any, Callable[[Params], Any]]

_SAM_PAPER = ("Sharpness-Aware Minimization for Efficiently Improving Generalization, "
              "arXiv:2010.01412")


# ------------------------------------------------------------------------------------------------
# validation and small numerics


def _evaluate(value: optax.ScalarOrSchedule, count: jax.Array) -> jax.Array:
    return value(count) if callable(value) else value


def _real_dtype(leaves):
    """float32, or wider when the leaves are (float64 / complex128 under jax_enable_x64)."""
    dtype = jnp.result_type(*leaves)
    if jnp.issubdtype(dtype, jnp.complexfloating):
        dtype = jnp.finfo(dtype).dtype
    return jnp.promote_types(dtype, jnp.float32)


def global_norm(tree: Updates) -> jax.Array:
    """``sqrt(sum of |x|^2)`` over all leaves in float32 (or wider), without overflow.

    The squares are taken of ``x / max|x|`` and the root rescaled (as LAPACK's ``nrm2``), so a
    float32 gradient with entries near 1e20 (whose squares overflow) has a finite norm. Complex
    leaves count ``|x|^2``. 0 for a zero (or empty) tree, with a zero-safe gradient.
    """
    leaves = jax.tree.leaves(tree)
    if not leaves:
        return jnp.zeros((), jnp.float32)
    dtype = _real_dtype(leaves)
    magnitudes = [jnp.abs(x).astype(dtype) for x in leaves]
    largest = jnp.max(jnp.stack([jnp.max(m, initial=0.0) for m in magnitudes]))
    positive = largest > 0
    scale = jnp.where(positive, largest, 1.0)
    squares = sum((jnp.sum(jnp.square(m / scale)) for m in magnitudes), jnp.zeros((), dtype))
    # squares >= 1 where positive (the largest entry contributes 1): sqrt is smooth there
    return jnp.where(positive, scale * jnp.sqrt(jnp.where(positive, squares, 1.0)), 0.0)


def _dot(a: Updates, b: Updates) -> jax.Array:
    """The real inner product ``sum Re(conj(a) b)`` (for real leaves ``sum a b``), in float32 or
    wider; callers pass at least one unit-norm argument, so it cannot overflow."""
    leaves_a, leaves_b = jax.tree.leaves(a), jax.tree.leaves(b)
    if not leaves_a:
        return jnp.zeros((), jnp.float32)
    dtype = _real_dtype(leaves_a + leaves_b)

    def widen(x):
        return x if jnp.issubdtype(x.dtype, jnp.complexfloating) else x.astype(dtype)

    return sum((jnp.real(jnp.vdot(widen(x), widen(y))).astype(dtype)
                for x, y in zip(leaves_a, leaves_b)), jnp.zeros((), dtype))


def _structured(grad_fn: Callable, like: Updates, name: str, argument: str = "grad_fn") -> Callable:
    """``grad_fn`` whose result is put in the pytree structure of ``like`` (the incoming gradient).

    A gradient function may return the same leaves in another container: flax nnx's ``nnx.grad``
    returns a ``State`` of ``nnx.Param`` variables while ``nnx.Optimizer`` hands the transform the
    plain arrays. Same leaves (count and shapes), other structure: re-wrapped; anything else is a
    ValueError naming the argument.
    """
    like_leaves, like_def = jax.tree.flatten(like)
    like_shapes = [jnp.shape(x) for x in like_leaves]

    def wrapped(*args):
        out = grad_fn(*args)
        if jax.tree.structure(out) == like_def:
            return out
        leaves = jax.tree.leaves(out)
        shapes = [jnp.shape(x) for x in leaves]
        if shapes != like_shapes:
            raise ValueError(f"{name}: {argument} returned {len(leaves)} leaves of shapes {shapes}; "
                             f"expected the gradient's {len(like_leaves)} leaves of shapes "
                             f"{like_shapes}")
        return like_def.unflatten(leaves)

    return wrapped


def _check_inexact(method: str, params: Params) -> None:
    """TypeError naming the first leaf that is not a floating-point (real or complex) array."""
    for path, leaf in jax.tree_util.tree_leaves_with_path(params):
        if not jnp.issubdtype(jnp.result_type(leaf), jnp.inexact):
            raise TypeError(f"{method}: params{jax.tree_util.keystr(path)} has dtype "
                            f"{jnp.result_type(leaf)}; allowed: floating-point (real or complex) "
                            f"arrays")


def safe_normalize(tree: Updates, radius=1.0, eps: float = 1e-12,
                   norm: Optional[jax.Array] = None) -> Updates:
    """``radius * tree / (||tree|| + eps)``, and exactly 0 where ``tree`` is 0 (never NaN).

    >>> safe_normalize({"w": jnp.zeros(2)})["w"].tolist()
    [0.0, 0.0]
    >>> [round(v, 6) for v in safe_normalize(jnp.array([3.0, 4.0]), eps=0.0).tolist()]
    [0.6, 0.8]
    """
    norm = global_norm(tree) if norm is None else norm
    scale = jnp.where(norm > 0, radius / (norm + eps), 0.0)
    return jax.tree.map(lambda x: (scale * x).astype(x.dtype), tree)


def _add(a: Params, b: Updates) -> Params:
    return jax.tree.map(lambda x, y: (x + y).astype(x.dtype), a, b)


def _resolve_mask(mask: Mask, params: Params) -> Any:
    """A bool pytree with the structure of ``params`` (``None`` -> all True)."""
    if mask is None:
        return jax.tree.map(lambda _: True, params)
    return mask(params) if callable(mask) else mask


def _where_mask(mask: Any, tree: Updates) -> Updates:
    return jax.tree.map(lambda m, x: jnp.where(m, x, jnp.zeros_like(x)), mask, tree)


# ------------------------------------------------------------------------------------------------
# the mechanism


class SharpnessState(NamedTuple):
    """State of every transform built by :func:`scale_by_perturbation`.

    Attributes:
      count: int32 number of updates taken (the step at which radius schedules are evaluated).
      aux: method-specific state (FSAM's Fisher estimate and mask); ``()`` for most methods.
    """

    count: jax.Array
    aux: Any = ()


class Probe(NamedTuple):
    """What a method's ``perturb`` and ``combine`` see at one step.

    Attributes:
      grads: ``g = grad L(w)``, the incoming updates.
      params: the current weights ``w``.
      grad_fn: ``params -> grads`` on the current batch.
      count: int32 step.
      aux: the method's state (after its ``update_aux``).
    """

    grads: Updates
    params: Params
    grad_fn: GradFn
    count: jax.Array
    aux: Any


Perturb = Callable[[Probe], Updates]
Combine = Callable[[Probe, Updates, Updates], Updates]


def _missing_grad_fn(method: str) -> ValueError:
    return ValueError(
        f"{method} needs the keyword extra argument grad_fn (params -> grads on the current batch): "
        f"call tx.update(grads, state, params, grad_fn=grad_fn); got grad_fn=None")


def _missing_params(method: str) -> ValueError:
    return ValueError(f"{method} needs params (the perturbation is taken around them); got None")


def scale_by_perturbation(perturb: Perturb, combine: Optional[Combine] = None, *,
                          name: str = "scale_by_perturbation",
                          init_aux: Optional[Callable[[Params], Any]] = None,
                          update_aux: Optional[Callable[[Probe], Any]] = None,
                          ) -> optax.GradientTransformationExtraArgs:
    """The shared mechanism: ``direction = combine(g, grad_fn(w + perturb(g, w)))``.

    Args:
      perturb: ``probe -> epsilon``, a pytree like ``params``.
      combine: ``(probe, epsilon, g_adv) -> direction``; default: ``g_adv`` (SAM).
      name: the method's name, for error messages.
      init_aux, update_aux: optional method state (``params -> aux`` and ``probe -> aux``, the latter
        run before ``perturb`` with ``probe.aux`` the previous state).

    The returned transform reads the extra argument ``grad_fn`` (``params -> grads`` on the same batch
    as the incoming gradient; its result may come in another container with the same leaves, e.g. a
    flax nnx ``State`` of ``Param`` s) and ignores every other extra argument. The direction is cast
    to the dtype of the incoming gradient. ``init`` raises a TypeError for a leaf that is not a
    floating-point array; complex leaves are supported (norms use ``|x|^2``, inner products
    ``Re<x, y>``: the (re, im) pair geometry).
    """

    def init_fn(params):
        _check_inexact(name, params)
        aux = init_aux(params) if init_aux is not None else ()
        return SharpnessState(jnp.zeros([], jnp.int32), aux)

    def update_fn(updates, state, params=None, *, grad_fn=None, **extra):
        del extra
        if grad_fn is None:
            raise _missing_grad_fn(name)
        if params is None:
            raise _missing_params(name)
        grad_fn = _structured(grad_fn, updates, name)
        probe = Probe(updates, params, grad_fn, state.count, state.aux)
        if update_aux is not None:
            probe = probe._replace(aux=update_aux(probe))
        epsilon = perturb(probe)
        adversarial = grad_fn(_add(params, epsilon))
        direction = adversarial if combine is None else combine(probe, epsilon, adversarial)
        direction = jax.tree.map(lambda d, g: d.astype(g.dtype), direction, updates)
        return direction, SharpnessState(optax.safe_increment(state.count), probe.aux)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def _alias(direction: optax.GradientTransformation, learning_rate: optax.ScalarOrSchedule,
           base: Base, method: str) -> optax.GradientTransformationExtraArgs:
    """``chain(direction, base or identity, scale_by_learning_rate(lr))``; a registry name as
    ``base`` is that whole optimizer (it applies ``learning_rate`` itself)."""
    if isinstance(base, str):
        check_nonnegative("learning_rate", learning_rate)
        _optimizer_info(base)  # ValueError with close matches if unknown
        return optax.chain(direction, _get_optimizer(base, learning_rate=learning_rate))
    if base is None:
        base = optax.identity()
    if not isinstance(base, (optax.GradientTransformation, optax.GradientTransformationExtraArgs)):
        raise ValueError(f"{method}: base must be None, an optax GradientTransformation or a "
                         f"registry name (jaxopt_lab.optim.names()), got {base!r}")
    # the shared alias builder; the sharpness aliases leave weight decay to ``base``
    return alias(optax.chain(direction, base), learning_rate, weight_decay=None)


def _register(name: str, paper: str, extra_args: tuple[str, ...] = ("grad_fn",)):
    return register(name, family="sharpness", paper=paper, extra_args=extra_args)


# ------------------------------------------------------------------------------------------------
# SAM


def _sam_perturb(rho: optax.ScalarOrSchedule, eps: float, normalize: bool = True) -> Perturb:
    if not normalize:  # unnormalized SAM: epsilon = rho g
        return lambda probe: jax.tree.map(
            lambda g: (_evaluate(rho, probe.count) * g).astype(g.dtype), probe.grads)
    return lambda probe: safe_normalize(probe.grads, _evaluate(rho, probe.count), eps)


def scale_by_sam(rho: optax.ScalarOrSchedule = 0.05, *, eps: float = 1e-12,
                 normalize: bool = True) -> optax.GradientTransformationExtraArgs:
    """SAM's direction: the gradient at the ascent point ``w + rho g / (||g|| + eps)``.

    .. math:: \\epsilon = \\rho\\, g / (\\|g\\| + \\delta),\\qquad d = \\nabla L(w + \\epsilon)

    Foret et al., "Sharpness-Aware Minimization for Efficiently Improving Generalization",
    arXiv:2010.01412. ``rho`` may be a schedule; ``eps`` is davda54/sam's 1e-12 (``g = 0`` gives
    ``epsilon = 0``, not NaN). ``normalize=False`` is unnormalized SAM, ``epsilon = rho g`` (the
    variant whose edge of stability "SAM operates far from home", arXiv:2301.09949, analyses).

    >>> import optax
    >>> tx = optax.chain(scale_by_sam(rho=0.05), optax.sgd(0.1))
    >>> loss = lambda w: jnp.sum(w ** 2)
    >>> w = jnp.array([1.0])
    >>> updates, _ = tx.update(jax.grad(loss)(w), tx.init(w), w, grad_fn=jax.grad(loss))
    >>> round(float(updates[0]), 6)  # -0.1 * 2 * (1 + 0.05)
    -0.21
    """
    check_nonnegative("rho", rho)
    check_nonnegative("eps", eps)
    return scale_by_perturbation(_sam_perturb(rho, eps, normalize), name="scale_by_sam")


@_register("sam", _SAM_PAPER)
def sam(learning_rate: optax.ScalarOrSchedule, rho: optax.ScalarOrSchedule = 0.05, *,
        base: Base = None, eps: float = 1e-12, normalize: bool = True
        ) -> optax.GradientTransformationExtraArgs:
    """SAM with any base direction: ``chain(scale_by_sam(rho), base, scale_by_learning_rate)``.

    ``w <- w - lr * base(grad L(w + rho g/||g||))``; ``base=None`` is SAM-SGD,
    ``base=optax.scale_by_adam()`` SAM-Adam, ``base="adamw"`` the registry's AdamW. arXiv:2010.01412.

    >>> tx = sam(0.1, rho=0.05, base=optax.scale_by_adam())
    """
    return _alias(scale_by_sam(rho, eps=eps, normalize=normalize), learning_rate, base, "sam")


# ------------------------------------------------------------------------------------------------
# ASAM


def _asam_perturb(rho, eta, mask: Mask, eps: float) -> Perturb:
    def perturb(probe: Probe) -> Updates:
        selected = _resolve_mask(mask, probe.params)
        # T_w = |w| + eta on adaptive leaves, 1 elsewhere.
        scaling = jax.tree.map(lambda m, w: jnp.where(m, jnp.abs(w) + eta, jnp.ones_like(w)),
                               selected, probe.params)
        scaled = jax.tree.map(jnp.multiply, scaling, probe.grads)  # T g
        direction = safe_normalize(scaled, _evaluate(rho, probe.count), eps)  # rho T g / ||T g||
        return jax.tree.map(jnp.multiply, scaling, direction)  # rho T^2 g / ||T g||

    return perturb


def weight_mask(params: Params) -> Any:
    """False for the leaves named ``bias``, True elsewhere: the scope of ASAM's adaptive scaling in
    the authors' code (SamsungLabs/ASAM ``asam.py``, ``ASAM.ascent_step``: ``T_w = |w| + eta`` only
    for parameters whose name contains ``weight`` -- PyTorch's kernels and normalization scales --
    and ``T_w = 1`` for biases). davda54/sam's ``adaptive=True`` scales every parameter instead.

    Why it matters: with ``T_w = |b| + eta`` a bias's perturbation grows with the bias itself; on
    jaxopt_lab.models.CNN (conv -> LayerNorm) the first conv bias then grows from ~0.2 to ~5 in three
    epochs even at rho = 0.01, the LayerNorm output becomes the same for every pixel and training
    stalls at chance (the sam-asam-ranking reproduction, configs/reproduce/sam_asam_ranking.py).

    >>> weight_mask({"conv": {"kernel": 0, "bias": 0}, "norm": {"scale": 0, "bias": 0}})
    {'conv': {'bias': False, 'kernel': True}, 'norm': {'bias': False, 'scale': True}}
    """

    def is_weight(path, _):
        last = path[-1] if path else None
        return str(getattr(last, "key", getattr(last, "name", ""))) != "bias"

    return jax.tree_util.tree_map_with_path(is_weight, params)


def scale_by_asam(rho: optax.ScalarOrSchedule = 0.5, *, eta: float = 0.01, mask: Mask = None,
                  eps: float = 1e-12) -> optax.GradientTransformationExtraArgs:
    """Adaptive SAM: the ascent step in the scale-invariant geometry ``T_w = |w| + eta``.

    .. math:: \\epsilon = \\rho\\, T_w^2 g / \\|T_w g\\|, \\qquad d = \\nabla L(w + \\epsilon)

    with ``T_w = |w| + eta`` on the leaves selected by ``mask`` (a bool pytree or ``params -> bool
    pytree``; default all leaves, as davda54/sam's ``adaptive=True``; :func:`weight_mask` is the
    ASAM authors' scope, biases excluded) and ``T_w = 1`` elsewhere, so an all-False mask is SAM.
    Kwon et al., "ASAM: Adaptive Sharpness-Aware Minimization for Scale-Invariant Learning of Deep
    Neural Networks", arXiv:2102.11600 (defaults rho=0.5, eta=0.01 from SamsungLabs/ASAM; rho is on
    a different scale from SAM's).

    >>> tx = scale_by_asam(0.5, eta=0.0)
    """
    check_nonnegative("rho", rho)
    check_nonnegative("eta", eta)
    check_nonnegative("eps", eps)
    return scale_by_perturbation(_asam_perturb(rho, eta, mask, eps), name="scale_by_asam")


@_register("asam", "ASAM: Adaptive Sharpness-Aware Minimization for Scale-Invariant Learning of "
                   "Deep Neural Networks, arXiv:2102.11600")
def asam(learning_rate: optax.ScalarOrSchedule, rho: optax.ScalarOrSchedule = 0.5,
         eta: float = 0.01, *, mask: Mask = None, base: Base = None, eps: float = 1e-12
         ) -> optax.GradientTransformationExtraArgs:
    """ASAM with any base: ``chain(scale_by_asam(rho, eta), base, scale_by_learning_rate)``."""
    return _alias(scale_by_asam(rho, eta=eta, mask=mask, eps=eps), learning_rate, base, "asam")


# ------------------------------------------------------------------------------------------------
# GSAM


def gsam_rho_schedule(learning_rate: optax.ScalarOrSchedule, rho_max: float, rho_min: float,
                      lr_max: Optional[float] = None, lr_min: Optional[float] = None
                      ) -> optax.ScalarOrSchedule:
    """GSAM's radius tied to the learning rate:
    ``rho_t = rho_min + (rho_max - rho_min) (lr_t - lr_min) / (lr_max - lr_min)``.

    A constant learning rate (or ``lr_max == lr_min``, or ``rho_min == rho_max``) gives the constant
    ``rho_max`` (big_vision's guard). For a schedule with ``rho_min != rho_max`` give ``lr_max`` and
    ``lr_min`` (the schedule's peak and floor).

    >>> rho = gsam_rho_schedule(optax.linear_schedule(1.0, 0.0, 10), 0.1, 0.0, 1.0, 0.0)
    >>> round(float(rho(5)), 6)
    0.05
    """
    check_nonnegative("rho_max", rho_max)
    check_nonnegative("rho_min", rho_min)
    constant = (not callable(learning_rate) or (concrete_number(rho_max) is not None
                and concrete_number(rho_min) is not None and rho_max == rho_min))
    if constant:
        return rho_max
    if lr_max is None or lr_min is None:
        raise ValueError("gsam_rho_schedule: with a learning-rate schedule and rho_min != rho_max, "
                         f"give lr_max and lr_min (got lr_max={lr_max!r}, lr_min={lr_min!r})")
    if lr_max == lr_min:
        return rho_max

    def schedule(count):
        fraction = (learning_rate(count) - lr_min) / (lr_max - lr_min)
        return rho_min + (rho_max - rho_min) * fraction

    return schedule


def _gsam_combine(alpha) -> Combine:
    def combine(probe: Probe, epsilon, robust):
        del epsilon
        # minimize_fp=True (big_vision's default): remove alpha times the part of g orthogonal to
        # g_r = grad L(w + eps), i.e. descend the surrogate gap h = L(w + eps) - L(w) sideways.
        unit_robust = safe_normalize(robust, 1.0, 0.0)
        parallel = _dot(probe.grads, unit_robust)
        return jax.tree.map(lambda r, g, u: r - alpha * (g - (parallel * u).astype(g.dtype)),
                            robust, probe.grads, unit_robust)

    return combine


def _gsam_perturb(rho, adaptive: bool, eps: float) -> Perturb:
    def perturb(probe: Probe):
        epsilon = safe_normalize(probe.grads, _evaluate(rho, probe.count), eps)
        if adaptive:  # big_vision: |w| * rho g / ||g||
            epsilon = jax.tree.map(lambda e, w: jnp.abs(w) * e, epsilon, probe.params)
        return epsilon

    return perturb


def scale_by_gsam(rho: optax.ScalarOrSchedule = 0.05, alpha: float = 0.6, *,
                  adaptive: bool = False, eps: float = 1e-12
                  ) -> optax.GradientTransformationExtraArgs:
    """GSAM's direction (surrogate gap guided SAM, big_vision's ``minimize_fp=True``).

    .. math:: g_r = \\nabla L(w + \\rho_t g/\\|g\\|), \\qquad
              d = g_r - \\alpha\\,(g - \\langle g, \\hat g_r\\rangle \\hat g_r)

    ``rho`` is a schedule tied to the learning rate (:func:`gsam_rho_schedule`); ``alpha = 0`` with a
    constant ``rho`` is SAM. ``adaptive`` perturbs by ``|w| rho g / ||g||``. Zhuang et al.,
    "Surrogate Gap Minimization Improves Sharpness-Aware Training", arXiv:2203.08065.
    """
    check_nonnegative("rho", rho)
    check_nonnegative("alpha", alpha)
    check_nonnegative("eps", eps)
    return scale_by_perturbation(_gsam_perturb(rho, adaptive, eps), _gsam_combine(alpha),
                                 name="scale_by_gsam")


@_register("gsam", "Surrogate Gap Minimization Improves Sharpness-Aware Training, "
                   "arXiv:2203.08065")
def gsam(learning_rate: optax.ScalarOrSchedule, rho: float = 0.05, alpha: float = 0.6, *,
         rho_min: Optional[float] = None, lr_max: Optional[float] = None,
         lr_min: Optional[float] = None, adaptive: bool = False, base: Base = None,
         eps: float = 1e-12) -> optax.GradientTransformationExtraArgs:
    """GSAM with any base; ``rho`` is ``rho_max`` and the radius follows the learning-rate schedule
    down to ``rho_min`` (default ``rho``: constant), see :func:`gsam_rho_schedule`."""
    check_nonnegative("rho", rho)
    check_nonnegative("rho_min", rho_min if rho_min is not None else 0.0)
    radius = gsam_rho_schedule(learning_rate, rho, rho if rho_min is None else rho_min,
                               lr_max, lr_min)
    return _alias(scale_by_gsam(radius, alpha, adaptive=adaptive, eps=eps), learning_rate, base,
                  "gsam")


# ------------------------------------------------------------------------------------------------
# GAM


def _gam_combine(rho, norm_rho, beta1, beta2, beta3, gamma, eps) -> Combine:
    def combine(probe: Probe, epsilon, g1):
        del epsilon
        w, g0, grad_fn = probe.params, probe.grads, probe.grad_fn
        radius = _evaluate(rho, probe.count)
        # Ascend the gradient norm: H g0 ~ (g1 - g0) / step is the gradient of ||grad L||, so
        # w2 = w + norm_rho * unit(g1 - g0) maximises ||grad L|| within norm_rho (first-order flatness).
        difference = jax.tree.map(jnp.subtract, g1, g0)
        w2 = _add(w, safe_normalize(difference, _evaluate(norm_rho, probe.count), eps))
        g2 = grad_fn(w2)
        g3 = grad_fn(_add(w2, safe_normalize(g2, radius, eps)))  # SAM gradient at w2
        # xxgege/GAM's gradient_decompose: new = b1 g1 + b3 g3, reference = g0 + |b2| g2; remove
        # gamma times the reference's component orthogonal to new.
        new = jax.tree.map(lambda a, b: beta1 * a + beta3 * b, g1, g3)
        reference = jax.tree.map(lambda a, b: a + abs(beta2) * b, g0, g2)
        new_norm, reference_norm = global_norm(new), global_norm(reference)
        # cos = <r, n> / (|n| |r| + eps), formed from unit vectors: no product of two norms
        # (which overflows float32 for gradients near 1e20)
        unit_new, unit_reference = safe_normalize(new, 1.0, 0.0, new_norm), \
            safe_normalize(reference, 1.0, 0.0, reference_norm)
        norms = new_norm * reference_norm
        cosine = _dot(unit_reference, unit_new) * jnp.where(
            jnp.isfinite(norms) & (norms > 0), norms / (norms + eps), 1.0)
        along = cosine * reference_norm / (new_norm + eps)
        return jax.tree.map(lambda n, r: n - gamma * (r - along * n), new, reference)

    return combine


def scale_by_gam(rho: optax.ScalarOrSchedule = 0.02, norm_rho: optax.ScalarOrSchedule = 0.2, *,
                 beta1: float = 1.0, beta2: float = -1.0, beta3: float = 1.0, gamma: float = 0.03,
                 eps: float = 1e-12) -> optax.GradientTransformationExtraArgs:
    """Gradient-norm-aware minimization (the accelerated version of xxgege/GAM), 4 gradients a step.

    With ``g0 = g``, ``g1 = grad L(w + rho g0/||g0||)`` (SAM), ``w2 = w + norm_rho u/||u||`` for
    ``u = g1 - g0`` (a finite-difference ``H g``: the ascent direction of the gradient norm, i.e. of the
    first-order flatness ``rho max_{||delta|| <= rho} ||grad L(w + delta)||``), ``g2 = grad L(w2)`` and
    ``g3 = grad L(w2 + rho g2/||g2||)``:

    .. math:: n = \\beta_1 g_1 + \\beta_3 g_3,\\quad r = g_0 + |\\beta_2| g_2,\\quad
              d = n - \\gamma\\,(r - \\cos(r, n)\\,\\|r\\|\\, n/\\|n\\|)

    Defaults are the reference code's (``grad_rho=0.02, grad_norm_rho=0.2, grad_beta_1=1,
    grad_beta_2=-1, grad_beta_3=1, grad_gamma=0.03``; ``grad_beta_0`` is unused there). Zhang et al.,
    "Gradient Norm Aware Minimization Seeks First-Order Flatness and Improves Generalization",
    arXiv:2303.03108.
    """
    for name, value in (("rho", rho), ("norm_rho", norm_rho)):
        check_nonnegative(name, value)
    check_nonnegative("gamma", gamma)
    check_nonnegative("eps", eps)
    return scale_by_perturbation(
        _sam_perturb(rho, eps), _gam_combine(rho, norm_rho, beta1, beta2, beta3, gamma, eps),
        name="scale_by_gam")


@_register("gam", "Gradient Norm Aware Minimization Seeks First-Order Flatness and Improves "
                  "Generalization, arXiv:2303.03108")
def gam(learning_rate: optax.ScalarOrSchedule, rho: optax.ScalarOrSchedule = 0.02,
        norm_rho: optax.ScalarOrSchedule = 0.2, *, beta1: float = 1.0, beta2: float = -1.0,
        beta3: float = 1.0, gamma: float = 0.03, base: Base = None, eps: float = 1e-12
        ) -> optax.GradientTransformationExtraArgs:
    """GAM with any base: ``chain(scale_by_gam(...), base, scale_by_learning_rate)``."""
    return _alias(scale_by_gam(rho, norm_rho, beta1=beta1, beta2=beta2, beta3=beta3, gamma=gamma,
                               eps=eps), learning_rate, base, "gam")


# ------------------------------------------------------------------------------------------------
# Fisher SAM (Kim et al.) and FSAM's Fisher mask (Zhong et al.)


def _fisher_sam_perturb(rho, eta) -> Perturb:
    def perturb(probe: Probe):
        # epsilon = rho F^{-1} g / sqrt(g^T F^{-1} g), with the diagonal F = 1 + eta g^2.
        preconditioned = jax.tree.map(lambda g: g / (1.0 + eta * jnp.square(jnp.abs(g))),
                                      probe.grads)
        quadratic = _dot(probe.grads, preconditioned)
        positive = quadratic > 0
        scale = jnp.where(positive, _evaluate(rho, probe.count)
                          / jnp.sqrt(jnp.where(positive, quadratic, 1.0)), 0.0)
        return jax.tree.map(lambda p: (scale * p).astype(p.dtype), preconditioned)

    return perturb


def scale_by_fisher_sam(rho: optax.ScalarOrSchedule = 0.1, *, eta: float = 1.0
                        ) -> optax.GradientTransformationExtraArgs:
    """Fisher SAM: the ascent step in the Fisher geometry (diagonal ``F = 1 + eta g^2``).

    .. math:: \\epsilon = \\rho \\frac{g / (1 + \\eta g^2)}{\\sqrt{\\sum g^2 / (1 + \\eta g^2)}}, \\qquad
              d = \\nabla L(w + \\epsilon)

    Kim et al., "Fisher SAM: Information Geometry and Sharpness Aware Minimisation",
    arXiv:2206.04920 (defaults gamma=0.1 -> ``rho``, eta=1.0). ``eta = 0`` is SAM.
    """
    check_nonnegative("rho", rho)
    check_nonnegative("eta", eta)
    return scale_by_perturbation(_fisher_sam_perturb(rho, eta), name="scale_by_fisher_sam")


@_register("fisher_sam", "Fisher SAM: Information Geometry and Sharpness Aware Minimisation, "
                         "arXiv:2206.04920")
def fisher_sam(learning_rate: optax.ScalarOrSchedule, rho: optax.ScalarOrSchedule = 0.1,
               eta: float = 1.0, *, base: Base = None) -> optax.GradientTransformationExtraArgs:
    """Fisher SAM with any base: ``chain(scale_by_fisher_sam(rho, eta), base, lr)``."""
    return _alias(scale_by_fisher_sam(rho, eta=eta), learning_rate, base, "fisher_sam")


class FisherMaskState(NamedTuple):
    """FSAM's method state: the running diagonal Fisher estimate and the current 0/1 mask."""

    fisher: Updates
    mask: Updates


def _top_fraction_mask(scores: Updates, keep) -> Updates:
    """1 on the global top-``keep`` fraction of entries of ``scores`` (one threshold over all
    leaves), 0 elsewhere. ``keep`` may be traced (the rank is a dynamic index into the sort)."""
    leaves = [x for x in jax.tree.leaves(scores) if x.size]
    if not leaves:  # nothing to rank (an empty tree, or only empty leaves)
        return jax.tree.map(jnp.ones_like, scores)
    flat = jnp.concatenate([x.reshape(-1).astype(jnp.float32) for x in leaves])
    k = jnp.clip(jnp.ceil(keep * flat.size).astype(jnp.int32), 1, flat.size)
    threshold = jnp.sort(flat)[flat.size - k]
    return jax.tree.map(lambda x: (x.astype(jnp.float32) >= threshold).astype(x.dtype), scores)


def scale_by_fsam_fisher_mask(rho: optax.ScalarOrSchedule = 0.05, *, sparsity: float = 0.9,
                              mask_interval: int = 100, fisher_decay: float = 0.9,
                              eps: float = 1e-12) -> optax.GradientTransformationExtraArgs:
    """FSAM: SAM perturbing only the parameters with the largest empirical Fisher information.

    ``F`` is a running average of squared minibatch gradients (``F <- b F + (1 - b) g^2``, our
    stand-in for the per-example average, which the ``grad_fn`` contract does not expose); every
    ``mask_interval`` steps the mask ``mu`` is recomputed as the global top ``1 - sparsity`` fraction
    of ``F``. Then

    .. math:: \\epsilon = \\rho (\\mu\\odot g)/\\|\\mu\\odot g\\|, \\qquad d = \\nabla L(w+\\epsilon)

    Zhong et al., "Improving Sharpness-Aware Minimization with Fisher Mask for Better Generalization
    on Language Models", arXiv:2210.05497. ``sparsity = 0`` is SAM.
    """
    check_nonnegative("rho", rho)
    check_range("sparsity", sparsity, 0.0, 1.0)
    if concrete_number(sparsity) is not None and sparsity >= 1.0:
        raise ValueError(f"scale_by_fsam_fisher_mask: sparsity must be in [0, 1), got {sparsity!r}")
    if concrete_number(mask_interval) is not None:  # may be traced (inject_hyperparams): count % interval
        check_int("mask_interval", mask_interval)
    check_range("fisher_decay", fisher_decay, 0.0, 1.0)

    def init_aux(params):
        # the Fisher estimate |g|^2 is real, also for complex leaves
        zeros = jax.tree.map(lambda p: jnp.zeros(jnp.shape(p), _real_dtype([p])), params)
        return FisherMaskState(zeros, jax.tree.map(jnp.ones_like, zeros))

    def update_aux(probe: Probe):
        fisher = jax.tree.map(
            lambda f, g: fisher_decay * f + (1 - fisher_decay) * jnp.square(jnp.abs(g)),
            probe.aux.fisher, probe.grads)
        refresh = probe.count % mask_interval == 0
        mask = jax.lax.cond(refresh, lambda: _top_fraction_mask(fisher, 1.0 - sparsity),
                            lambda: probe.aux.mask)
        return FisherMaskState(fisher, mask)

    def perturb(probe: Probe):
        masked = jax.tree.map(jnp.multiply, probe.aux.mask, probe.grads)
        return safe_normalize(masked, _evaluate(rho, probe.count), eps)

    return scale_by_perturbation(perturb, name="scale_by_fsam_fisher_mask", init_aux=init_aux,
                                 update_aux=update_aux)


@_register("fsam_fisher_mask", "Improving Sharpness-Aware Minimization with Fisher Mask for Better "
                               "Generalization on Language Models, arXiv:2210.05497")
def fsam_fisher_mask(learning_rate: optax.ScalarOrSchedule, rho: optax.ScalarOrSchedule = 0.05,
                     sparsity: float = 0.9, *, mask_interval: int = 100, fisher_decay: float = 0.9,
                     base: Base = None) -> optax.GradientTransformationExtraArgs:
    """FSAM (Fisher mask) with any base."""
    return _alias(scale_by_fsam_fisher_mask(rho, sparsity=sparsity, mask_interval=mask_interval,
                                            fisher_decay=fisher_decay),
                  learning_rate, base, "fsam_fisher_mask")


# ------------------------------------------------------------------------------------------------
# SAM-ON


def normalization_mask(params: Params) -> Any:
    """True for the leaves under a module whose name contains ``norm`` (``norms/0/scale``,
    ``attention_norm/scale``, ...: the affine normalization parameters of jaxopt_lab.models).

    >>> normalization_mask({"layers": {"kernel": 0}, "norms": {0: {"scale": 0, "bias": 0}}})
    {'layers': {'kernel': False}, 'norms': {0: {'bias': True, 'scale': True}}}
    """

    def is_norm(path, _):
        keys = [getattr(k, "key", getattr(k, "name", getattr(k, "idx", ""))) for k in path]
        return any("norm" in str(k).lower() for k in keys)

    return jax.tree_util.tree_map_with_path(is_norm, params)


def scale_by_sam_on(rho: optax.ScalarOrSchedule = 0.05, *, mask: Mask = None,
                    adaptive: bool = False, eta: float = 0.0, eps: float = 1e-12
                    ) -> optax.GradientTransformationExtraArgs:
    """SAM-ON: (A)SAM with the perturbation restricted to the ``mask`` leaves (default: the
    normalization layers' affine parameters).

    .. math:: \\epsilon = \\rho\\, T^2 (\\mu\\odot g) / \\|T (\\mu\\odot g)\\|, \\qquad
              d = \\nabla L(w + \\epsilon)

    with ``mu`` the mask (a bool pytree or ``params -> bool pytree``; ``None``:
    :func:`normalization_mask`; the default is ``None`` rather than the function because
    ``optax.inject_hyperparams`` takes callable arguments for schedules) and ``T = |w| + eta`` if
    ``adaptive`` else 1; the norm runs over the
    perturbed parameters only, as in mueller-mp/SAM-ON. If the mask selects nothing, ``epsilon = 0``
    and the direction is the plain gradient. Mueller et al., "Normalization Layers Are All That
    Sharpness-Aware Minimization Needs", arXiv:2306.04226 (their ASAM runs use rho = 10).
    """
    check_nonnegative("rho", rho)
    check_nonnegative("eta", eta)
    inner = _asam_perturb(rho, eta, None if adaptive else (lambda p: jax.tree.map(lambda _: False, p)),
                          eps)

    def perturb(probe: Probe):
        selected = _resolve_mask(normalization_mask if mask is None else mask, probe.params)
        return inner(probe._replace(grads=_where_mask(selected, probe.grads)))

    return scale_by_perturbation(perturb, name="scale_by_sam_on")


@_register("sam_on", "Normalization Layers Are All That Sharpness-Aware Minimization Needs, "
                     "arXiv:2306.04226")
def sam_on(learning_rate: optax.ScalarOrSchedule, rho: optax.ScalarOrSchedule = 0.05, *,
           mask: Mask = None, adaptive: bool = False, eta: float = 0.0,
           base: Base = None, eps: float = 1e-12) -> optax.GradientTransformationExtraArgs:
    """SAM-ON with any base: ``chain(scale_by_sam_on(rho, mask=...), base, lr)``."""
    return _alias(scale_by_sam_on(rho, mask=mask, adaptive=adaptive, eta=eta, eps=eps),
                  learning_rate, base, "sam_on")


# ------------------------------------------------------------------------------------------------
# m-sharpness


def chunked_grad_fn(loss_fn: Callable[..., jax.Array], batch: Any, num_chunks: int
                    ) -> Callable[[Params, jax.Array], Updates]:
    """``chunk_grad_fn(params, c)``: the gradient of ``loss_fn(params, chunk_c)`` on the ``c``-th of
    ``num_chunks`` equal micro-batches of ``batch`` (a pytree whose leaves share a leading axis
    divisible by ``num_chunks``); the extra argument :func:`scale_by_m_sam` reads."""
    check_int("num_chunks", num_chunks)
    sizes = {x.shape[0] for x in jax.tree.leaves(batch)}
    if len(sizes) != 1 or next(iter(sizes)) % num_chunks:
        raise ValueError(f"chunked_grad_fn: batch leaves must share a leading size divisible by "
                         f"num_chunks={num_chunks}, got leading sizes {sorted(sizes)}")
    chunks = jax.tree.map(lambda x: x.reshape(num_chunks, -1, *x.shape[1:]), batch)

    def chunk_grad_fn(params, chunk):
        return jax.grad(loss_fn)(params, jax.tree.map(lambda x: x[chunk], chunks))

    return chunk_grad_fn


def scale_by_m_sam(rho: optax.ScalarOrSchedule = 0.05, num_chunks: int = 1, *,
                   eps: float = 1e-12) -> optax.GradientTransformationExtraArgs:
    """SAM with m-sharpness: each of ``num_chunks`` micro-batches gets its own ascent step.

    .. math:: \\epsilon_c = \\rho\\, g_c/\\|g_c\\|,\\qquad d = \\frac1C\\sum_c \\nabla L_c(w + \\epsilon_c)

    with ``g_c = grad L_c(w)`` the gradient of chunk ``c`` (never averaged across chunks before
    perturbing). Chunks come from the extra argument ``chunk_grad_fn(params, c)`` (build it with
    :func:`chunked_grad_fn`), evaluated for all chunks at once with ``vmap``; this costs one pass
    over the batch at ``w`` and one at the perturbed points (the incoming full-batch gradient is not
    used). ``num_chunks = 1`` is SAM on the whole batch and needs only ``grad_fn``. Foret et al.,
    arXiv:2010.01412, Section 4 (m = batch size / num_chunks).
    """
    check_nonnegative("rho", rho)
    check_int("num_chunks", num_chunks)
    if num_chunks == 1:
        return scale_by_perturbation(_sam_perturb(rho, eps), name="scale_by_m_sam")

    def init_fn(params):
        _check_inexact("scale_by_m_sam", params)
        return SharpnessState(jnp.zeros([], jnp.int32), ())

    def update_fn(updates, state, params=None, *, chunk_grad_fn=None, **extra):
        del extra
        if chunk_grad_fn is None:
            raise ValueError(
                f"scale_by_m_sam with num_chunks={num_chunks} needs the keyword extra argument "
                "chunk_grad_fn (params, chunk_index) -> grads of that micro-batch (see "
                "jaxopt_lab.optim.chunked_grad_fn); got None")
        if params is None:
            raise _missing_params("scale_by_m_sam")
        radius = _evaluate(rho, state.count)
        chunk_grad_fn = _structured(chunk_grad_fn, updates, "scale_by_m_sam", "chunk_grad_fn")

        def one_chunk(chunk):
            epsilon = safe_normalize(chunk_grad_fn(params, chunk), radius, eps)
            return chunk_grad_fn(_add(params, epsilon), chunk)

        per_chunk = jax.vmap(one_chunk)(jnp.arange(num_chunks))
        direction = jax.tree.map(lambda d, g: jnp.mean(d, axis=0).astype(g.dtype), per_chunk,
                                 updates)
        return direction, SharpnessState(optax.safe_increment(state.count), ())

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


@_register("m_sam", _SAM_PAPER + " (m-sharpness, Section 4)", extra_args=("grad_fn", "chunk_grad_fn"))
def m_sam(learning_rate: optax.ScalarOrSchedule, rho: optax.ScalarOrSchedule = 0.05,
          num_chunks: int = 1, *, base: Base = None, eps: float = 1e-12
          ) -> optax.GradientTransformationExtraArgs:
    """m-sharpness SAM with any base (``num_chunks`` micro-batches perturbed independently)."""
    return _alias(scale_by_m_sam(rho, num_chunks, eps=eps), learning_rate, base, "m_sam")


# ------------------------------------------------------------------------------------------------
# finite-difference gradient regularization


def _fd_gr_perturb(rho, normalize: bool, eps: float) -> Perturb:
    def perturb(probe: Probe):
        radius = _evaluate(rho, probe.count)
        if normalize:
            return safe_normalize(probe.grads, radius, eps)
        return jax.tree.map(lambda g: (radius * g).astype(g.dtype), probe.grads)

    return perturb


def _fd_gr_combine(rho, gamma, normalize: bool) -> Combine:
    def combine(probe: Probe, epsilon, ascent):
        del epsilon
        # The perturbation is step * g with step = rho/||g|| (normalized) or rho; the finite
        # difference H g ~ (grad L(w + step g) - g) / step gives g + gamma H g =
        # (1 - gamma/step) g + (gamma/step) grad L(w + step g).
        radius = _evaluate(rho, probe.count)
        weight = gamma * global_norm(probe.grads) / radius if normalize else gamma / radius
        # g + w (a - g): the difference first, so a huge g never meets the huge weight
        return jax.tree.map(lambda g, a: g + weight * (a - g), probe.grads, ascent)

    return combine


def scale_by_fd_gr(gamma: float = 0.05, rho: optax.ScalarOrSchedule = 0.05, *,
                   normalize: bool = True, eps: float = 1e-12
                   ) -> optax.GradientTransformationExtraArgs:
    """Gradient regularization ``L + (gamma/2) ||grad L||^2`` by a forward finite difference.

    Its gradient ``g + gamma H g`` with ``H g ~ (grad L(w + s g) - g)/s`` (ascent, then descent):

    .. math:: d = (1 - \\gamma/s)\\, g + (\\gamma/s)\\, \\nabla L(w + s g)

    with the step ``s = rho/||g||`` (``normalize=True``: the probe point is SAM's ``w + rho g/||g||``)
    or ``s = rho``. ``gamma = s`` is (unnormalized) SAM. Karakida et al., "Understanding Gradient
    Regularization in Deep Learning: Efficient Finite-Difference Computation and Implicit Bias",
    arXiv:2210.02720.
    """
    check_nonnegative("gamma", gamma)
    check_positive("rho", rho)
    return scale_by_perturbation(_fd_gr_perturb(rho, normalize, eps),
                                 _fd_gr_combine(rho, gamma, normalize), name="scale_by_fd_gr")


@_register("fd_gr", "Understanding Gradient Regularization in Deep Learning: Efficient "
                    "Finite-Difference Computation and Implicit Bias, arXiv:2210.02720")
def fd_gr(learning_rate: optax.ScalarOrSchedule, gamma: float = 0.05,
          rho: optax.ScalarOrSchedule = 0.05, *, normalize: bool = True, base: Base = None,
          eps: float = 1e-12) -> optax.GradientTransformationExtraArgs:
    """Finite-difference gradient regularization with any base."""
    return _alias(scale_by_fd_gr(gamma, rho, normalize=normalize, eps=eps), learning_rate, base,
                  "fd_gr")
