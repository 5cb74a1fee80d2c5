"""One namespace for every optimizer: jaxopt_lab's own and the optax ones the papers use.

``get(name, **kwargs)`` builds an ``optax.GradientTransformationExtraArgs``; ``names()`` lists what
exists; ``info(name)`` says where it comes from (family, paper, which extra arguments it reads).
Our own optimizers register themselves with the :func:`register` decorator in their module; optax's
are wrapped here (wrapped, never re-implemented).

Every optimizer returned by ``get`` accepts and ignores extra arguments it does not use, so one
training step ``tx.update(grads, state, params, value=loss, grad_fn=grad_fn)`` drives all of them.
A gradient with a NaN or inf entry gives an update with a non-finite entry (never a silent finite
step), so ``optax.apply_if_finite`` or a loop's finiteness check can refuse the step.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import optax
import optax.contrib

from ._common import check_float_params

__all__ = ["OptimizerInfo", "register", "get", "names", "info", "families"]


@dataclasses.dataclass(frozen=True)
class OptimizerInfo:
    """What the registry knows about one optimizer.

    Attributes:
      name: registry name (the paper's name for ours, optax's name for optax's).
      factory: ``(learning_rate, **hyperparameters) -> GradientTransformationExtraArgs``.
      family: ``optax``, ``sharpness``, ``lowrank``, ``factored``, ``adaptive`` or ``curvature``.
      paper: title and arXiv id of the paper it implements.
      extra_args: the extra ``update`` keyword arguments it reads (``grad_fn``, ``value``).
      source: ``jaxopt_lab`` or the optax function it wraps.
    """

    name: str
    factory: Callable[..., optax.GradientTransformationExtraArgs]
    family: str
    paper: str
    extra_args: tuple[str, ...] = ()
    source: str = "jaxopt_lab"


_REGISTRY: dict[str, OptimizerInfo] = {}


def register(name: str, *, family: str, paper: str, extra_args: tuple[str, ...] = (),
             source: str = "jaxopt_lab"):
    """Decorator registering an optimizer alias under ``name``.

    >>> @register("my_sgd", family="adaptive", paper="(example)")  # doctest: +SKIP
    ... def my_sgd(learning_rate): ...
    """

    def decorator(factory):
        if name in _REGISTRY and _REGISTRY[name].factory is not factory:
            raise ValueError(f"optimizer {name!r} is registered twice")
        _REGISTRY[name] = OptimizerInfo(name, factory, family, paper, tuple(extra_args), source)
        return factory

    return decorator


def names(family: Optional[str] = None) -> list[str]:
    """Sorted names of all registered optimizers (of one ``family`` if given)."""
    return sorted(n for n, i in _REGISTRY.items() if family is None or i.family == family)


def families() -> list[str]:
    return sorted({i.family for i in _REGISTRY.values()})


def _unknown(name: str) -> ValueError:
    close = difflib.get_close_matches(name, list(_REGISTRY), n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
    return ValueError(f"unknown optimizer {name!r}{hint} (see jaxopt_lab.optim.names() for all "
                      f"{len(_REGISTRY)})")


def info(name: str) -> OptimizerInfo:
    """The :class:`OptimizerInfo` of ``name``; ``ValueError`` listing close matches if unknown."""
    if name not in _REGISTRY:
        raise _unknown(name)
    return _REGISTRY[name]


def get(name: str, **kwargs: Any) -> optax.GradientTransformationExtraArgs:
    """Build the optimizer ``name`` with keyword hyperparameters.

    >>> import jax.numpy as jnp
    >>> tx = get("adam", learning_rate=1e-3)
    >>> state = tx.init({"w": jnp.ones(3)})

    Raises:
      ValueError: unknown name (with close matches), or a keyword the optimizer does not take.
    """
    entry = info(name)
    signature = inspect.signature(entry.factory)
    takes_any = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    if not takes_any:
        allowed = [p for p in signature.parameters if p != "self"]
        for key in kwargs:
            if key not in signature.parameters:
                raise ValueError(f"optimizer {name!r} has no argument {key!r}; it takes: "
                                 f"{', '.join(allowed)}")
    return optax.with_extra_args_support(entry.factory(**kwargs))


# ----------------------------------------------------------------------------------------------
# Every optimizer optax ships: thin wrappers, no re-implementation. Not registered:
# ``optax.contrib.dpsgd`` (needs per-example gradients with a leading batch axis, not the contract's
# batch gradient), ``optax.contrib.galore`` and ``optax.contrib.sam`` (replaced by the lowrank and
# sharpness families' own ``galore`` and ``sam``).

def _optax(name: str, fn: Callable, paper: str, extra_args: tuple[str, ...] = ()):
    inner = getattr(fn, "func", fn)  # optax.nadam/nadamw are functools.partial of adam/adamw
    module = "optax.contrib" if inner.__module__.startswith("optax.contrib") else "optax"
    register(name, family="optax", paper=paper, extra_args=extra_args,
             source=f"{module}.{name if inner is not fn else inner.__name__}")(fn)


_optax("sgd", optax.sgd, "Robbins & Monro (1951); momentum: Polyak (1964)")
_optax("adam", optax.adam, "Adam: A Method for Stochastic Optimization, arXiv:1412.6980")
_optax("adamw", optax.adamw, "Decoupled Weight Decay Regularization, arXiv:1711.05101")
_optax("lion", optax.lion, "Symbolic Discovery of Optimization Algorithms, arXiv:2302.06675")
_optax("lars", optax.lars, "Large Batch Training of Convolutional Networks, arXiv:1708.03888")
_optax("adafactor", optax.adafactor,
       "Adafactor: Adaptive Learning Rates with Sublinear Memory Cost, arXiv:1804.04235")
_optax("ademamix", optax.contrib.ademamix,
       "The AdEMAMix Optimizer: Better, Faster, Older, arXiv:2409.03137")
_optax("dadapt_adamw", optax.contrib.dadapt_adamw,
       "Learning-Rate-Free Learning by D-Adaptation, arXiv:2301.07733")
_optax("prodigy", optax.contrib.prodigy,
       "Prodigy: An Expeditiously Adaptive Parameter-Free Learner, arXiv:2306.06101")
_optax("momo", optax.contrib.momo,
       "MoMo: Momentum Models for Adaptive Learning Rates, arXiv:2305.07583", extra_args=("value",))
_optax("schedule_free_adamw", optax.contrib.schedule_free_adamw,
       "The Road Less Scheduled, arXiv:2405.15682")
_optax("muon", optax.contrib.muon,
       "Muon: An optimizer for hidden layers in neural networks (Jordan et al., 2024); "
       "Muon is Scalable for LLM Training, arXiv:2502.16982")
_optax("adamax", optax.adamax, "Adam: A Method for Stochastic Optimization (AdaMax), arXiv:1412.6980")
_optax("adamaxw", optax.adamaxw, "AdaMax with decoupled weight decay, arXiv:1412.6980 / arXiv:1711.05101")
_optax("lamb", optax.lamb,
       "Large Batch Optimization for Deep Learning: Training BERT in 76 minutes, arXiv:1904.00962")
_optax("sign_sgd", optax.sign_sgd,
       "signSGD: Compressed Optimisation for Non-Convex Problems, arXiv:1802.04434")
_optax("simplified_ademamix", optax.contrib.simplified_ademamix,
       "Connections between Schedule-Free Optimizers, AdEMAMix, and Accelerated SGD Variants, "
       "arXiv:2502.02431")
_optax("momo_adam", optax.contrib.momo_adam,
       "MoMo: Momentum Models for Adaptive Learning Rates, arXiv:2305.07583", extra_args=("value",))
_optax("dog", optax.contrib.dog,
       "DoG is SGD's Best Friend: A Parameter-Free Dynamic Step Size Schedule, arXiv:2302.12022")
_optax("dowg", optax.contrib.dowg,
       "DoWG Unleashed: An Efficient Universal Parameter-Free Gradient Descent Method, arXiv:2305.16284")
_optax("schedule_free_sgd", optax.contrib.schedule_free_sgd,
       "The Road Less Scheduled, arXiv:2405.15682")


_optax("adabelief", optax.adabelief,
       "AdaBelief Optimizer: Adapting Stepsizes by the Belief in Observed Gradients, arXiv:2010.07468")
_optax("adadelta", optax.adadelta, "ADADELTA: An Adaptive Learning Rate Method, arXiv:1212.5701")
_optax("adagrad", optax.adagrad,
       "Adaptive Subgradient Methods for Online Learning and Stochastic Optimization (Duchi, Hazan, "
       "Singer, JMLR 2011)")
_optax("amsgrad", optax.amsgrad, "On the Convergence of Adam and Beyond, arXiv:1904.09237")
_optax("adan", optax.adan,
       "Adan: Adaptive Nesterov Momentum Algorithm for Faster Optimizing Deep Models, "
       "arXiv:2208.06677")
_optax("fromage", optax.fromage,
       "On the distance between two neural networks and the stability of learning, arXiv:2002.03432")
_optax("nadam", optax.nadam, "Incorporating Nesterov Momentum into Adam (Dozat, ICLR 2016 workshop)")
_optax("nadamw", optax.nadamw,
       "Incorporating Nesterov Momentum into Adam (Dozat, 2016) with decoupled weight decay, "
       "arXiv:1711.05101")
_optax("novograd", optax.novograd,
       "Stochastic Gradient Methods with Layer-wise Adaptive Moments for Training of Deep Networks, "
       "arXiv:1905.11286")
_optax("optimistic_gradient_descent", optax.optimistic_gradient_descent,
       "Training GANs with Optimism, arXiv:1711.00141")
_optax("optimistic_adam", optax.optimistic_adam, "Training GANs with Optimism, arXiv:1711.00141")
_optax("optimistic_adam_v2", optax.optimistic_adam_v2,
       "Training GANs with Optimism, arXiv:1711.00141")
_optax("radam", optax.radam,
       "On the Variance of the Adaptive Learning Rate and Beyond, arXiv:1908.03265")
_optax("rmsprop", optax.rmsprop,
       "RMSProp: Tieleman & Hinton, Neural Networks for Machine Learning, lecture 6.5 (2012)")
_optax("rprop", optax.rprop,
       "A Direct Adaptive Method for Faster Backpropagation Learning: The RPROP Algorithm "
       "(Riedmiller & Braun, 1993)")
_optax("signum", optax.signum,
       "signSGD: Compressed Optimisation for Non-Convex Problems, arXiv:1802.04434")
_optax("sm3", optax.sm3, "Memory-Efficient Adaptive Optimization, arXiv:1901.11150")
_optax("yogi", optax.yogi,
       "Adaptive Methods for Nonconvex Optimization (Zaheer et al., NeurIPS 2018)")
_optax("acprop", optax.contrib.acprop,
       "Momentum Centering and Asynchronous Update for Adaptive Gradient Methods, arXiv:2110.05454")
_optax("cocob", optax.contrib.cocob,
       "Training Deep Networks without Learning Rates Through Coin Betting, arXiv:1705.07795")
_optax("madgrad", optax.contrib.madgrad,
       "Adaptivity without Compromise: A Momentumized, Adaptive, Dual Averaged Gradient Method for "
       "Stochastic Optimization, arXiv:2101.11075")


@register("adopt", family="optax", source="optax.contrib.adopt",
          paper="ADOPT: Modified Adam Can Converge with Any beta2 with the Optimal Rate, "
                "arXiv:2411.02853")
def adopt(learning_rate: optax.ScalarOrSchedule, b1: float = 0.9, b2: float = 0.9999,
          eps: float = 1e-6, nesterov: bool = False, use_clipping: bool = True):
    """optax.contrib.adopt with its default clipping schedule ``step**0.25`` kept fixed: passed as an
    argument, ``optax.inject_hyperparams`` would take that callable for a hyperparameter schedule."""
    return optax.contrib.adopt(learning_rate, b1=b1, b2=b2, eps=eps, nesterov=nesterov,
                               use_clipping=use_clipping)


class _RawKeyState(NamedTuple):
    inner: Any


def _raw_keys(tx: optax.GradientTransformation) -> optax.GradientTransformationExtraArgs:
    """``tx`` with the typed PRNG keys of its state stored as raw key data, which checkpointers
    (orbax's StandardCheckpointer) can save; they are re-wrapped for each update."""

    def is_key(x):
        return jnp.issubdtype(x.dtype, jax.dtypes.prng_key)

    def to_raw(state):
        return jax.tree.map(lambda x: jax.random.key_data(x) if is_key(x) else x, state)

    def init(params):
        return _RawKeyState(to_raw(tx.init(params)))

    def update(updates, state, params=None, **extra):
        del extra
        template = jax.eval_shape(tx.init, updates)
        typed = jax.tree.map(lambda t, x: jax.random.wrap_key_data(x) if is_key(t) else x,
                             template, state.inner)
        updates, inner = tx.update(updates, typed, params)
        return updates, _RawKeyState(to_raw(inner))

    return optax.GradientTransformationExtraArgs(init, update)


@register("noisy_sgd", family="optax", source="optax.noisy_sgd",
          paper="Adding Gradient Noise Improves Learning for Very Deep Networks, arXiv:1511.06807")
def noisy_sgd(learning_rate: optax.ScalarOrSchedule, eta: float = 0.01, gamma: float = 0.55,
              seed: int = 0):
    """optax.noisy_sgd (noise variance ``eta / (1 + t)^gamma``) keyed by ``seed``, its key kept as
    raw key data in the state so that checkpoints can hold it."""
    return _raw_keys(optax.noisy_sgd(learning_rate, eta=eta, gamma=gamma, key=jax.random.key(seed)))


@register("sgd_nesterov", family="optax", source="optax.sgd",
          paper="On the importance of initialization and momentum in deep learning (Sutskever et al., "
                "ICML 2013); Nesterov (1983)")
def sgd_nesterov(learning_rate: optax.ScalarOrSchedule, momentum: float = 0.9):
    """optax.sgd with Nesterov momentum (``nesterov=True``)."""
    return optax.sgd(learning_rate, momentum=momentum, nesterov=True)


@register("lbfgs", family="optax", source="optax.lbfgs",
          paper="On the limited memory BFGS method for large scale optimization (Liu & Nocedal, "
                "1989)")
def lbfgs(learning_rate: optax.ScalarOrSchedule = 1.0, memory_size: int = 10,
          scale_init_precond: bool = True):
    """optax.lbfgs with a fixed step ``learning_rate`` along the L-BFGS direction.

    optax's default zoom line search needs the extra argument ``value_fn`` (``params -> loss``),
    which the registry's training step does not pass; use ``optax.lbfgs`` directly with
    ``optax.value_and_grad_from_state`` for the line-searched method.
    """
    return optax.lbfgs(learning_rate, memory_size=memory_size,
                       scale_init_precond=scale_init_precond, linesearch=None)


@register("mechanize", family="optax", source="optax.contrib.mechanize",
          paper="Mechanic: A Learning Rate Tuner, arXiv:2306.00144")
def mechanize(learning_rate: optax.ScalarOrSchedule, base: str = "adam",
              weight_decay: float = 0.01, eps: float = 1e-8, s_init: float = 1e-6,
              num_betas: int = 6):
    """optax.contrib.mechanize around the registry optimizer ``base`` built with ``learning_rate``
    (Mechanic learns the scale of the base updates)."""
    return optax.contrib.mechanize(get(base, learning_rate=learning_rate),
                                   weight_decay=weight_decay, eps=eps, s_init=s_init,
                                   num_betas=num_betas)


@register("polyak_sgd", family="optax", extra_args=("value",), source="optax.polyak_sgd",
          paper="Polyak step size (Polyak, 1987); Loizou et al., Stochastic Polyak Step-size for SGD, "
                "arXiv:2002.10542")
def polyak_sgd(learning_rate: float = 1.0, scaling: float = 1.0, f_min: float = 0.0,
               eps: float = 0.0):
    """optax.polyak_sgd with its ``max_learning_rate`` under the registry's common name
    ``learning_rate`` (the cap on the Polyak step); reads the ``value`` extra argument."""
    return optax.polyak_sgd(max_learning_rate=learning_rate, scaling=scaling, f_min=f_min, eps=eps)


@register("schedule_free", family="optax", source="optax.contrib.schedule_free",
          paper="The Road Less Scheduled, arXiv:2405.15682")
def schedule_free(learning_rate: optax.ScalarOrSchedule, base: str = "sgd", b1: float = 0.9,
                  weight_lr_power: float = 2.0):
    """optax.contrib.schedule_free around the registry optimizer ``base`` (built with learning rate
    ``learning_rate``); evaluate with ``optax.contrib.schedule_free_eval_params``."""
    return optax.contrib.schedule_free(get(base, learning_rate=learning_rate),
                                       learning_rate=learning_rate, b1=b1,
                                       weight_lr_power=weight_lr_power)


class _HutchinsonState(NamedTuple):
    key: jax.Array


def _hutchinson_from_grad_fn(seed: int) -> optax.GradientTransformationExtraArgs:
    """Hutchinson's Hessian-diagonal estimate v * (H v), H v = jvp of ``grad_fn`` (our contract's
    extra argument) instead of optax's ``obj_fn``; v is Rademacher."""

    def init(params):
        del params
        return _HutchinsonState(jax.random.PRNGKey(seed))

    def update(updates, state, params=None, *, grad_fn=None, **extra):
        del updates, extra
        if grad_fn is None:
            raise ValueError("sophia needs the extra argument grad_fn (params -> grads) to estimate "
                             "the Hessian diagonal")
        key, sub = jax.random.split(state.key)
        leaves, treedef = jax.tree.flatten(params)
        keys = jax.random.split(sub, len(leaves))
        signs = treedef.unflatten([jax.random.rademacher(k, p.shape, p.dtype)
                                   for k, p in zip(keys, leaves)])
        hvp = jax.jvp(grad_fn, (params,), (signs,))[1]
        return jax.tree.map(jnp.multiply, signs, hvp), _HutchinsonState(key)

    return optax.GradientTransformationExtraArgs(init, update)


@register("sophia", family="optax", extra_args=("grad_fn",), source="optax.contrib.sophia",
          paper="Sophia: A Scalable Stochastic Second-order Optimizer for Language Model "
                "Pre-training, arXiv:2305.14342")
def sophia(learning_rate: optax.ScalarOrSchedule, b1: float = 0.965, b2: float = 0.99,
           eps: float = 1e-8, weight_decay: float = 1e-4, gamma: float = 0.01,
           clip_threshold: Optional[float] = 1.0, update_interval: int = 10, seed: int = 0):
    """optax.contrib.sophia with Hutchinson's estimator driven by the ``grad_fn`` extra argument.

    Parameters must be real floating-point arrays (``TypeError`` naming the leaf at ``init``); an
    empty parameter tree gives empty updates."""
    inner = optax.contrib.sophia(learning_rate, b1=b1, b2=b2, eps=eps, weight_decay=weight_decay,
                                 gamma=gamma, clip_threshold=clip_threshold,
                                 update_interval=update_interval,
                                 hessian_diagonal_fn=_hutchinson_from_grad_fn(seed))

    def init(params):
        check_float_params("sophia", params)
        return inner.init(params)

    def update(updates, state, params=None, **extra):
        if not jax.tree.leaves(updates):  # optax's global clipping reduces over the leaves
            return updates, state
        return inner.update(updates, state, params, **extra)

    return optax.GradientTransformationExtraArgs(init, update)


class _LookaheadState(NamedTuple):
    inner: Any
    slow: Any


@register("lookahead", family="optax", source="optax.lookahead",
          paper="Lookahead Optimizer: k steps forward, 1 step back, arXiv:1907.08610")
def lookahead(learning_rate: optax.ScalarOrSchedule, sync_period: int = 6,
              slow_step_size: float = 0.5, base: str = "adam", reset_state: bool = False):
    """optax.lookahead over the registry optimizer ``base``, with the slow weights kept in the
    optimizer state so that it takes and returns plain parameters like every other optimizer."""
    fast = get(base, learning_rate=learning_rate)
    inner = optax.lookahead(fast, sync_period=sync_period, slow_step_size=slow_step_size,
                            reset_state=reset_state)

    def init(params):
        return _LookaheadState(inner.init(optax.LookaheadParams.init_synced(params)), params)

    def update(updates, state, params=None, **extra):
        del extra
        if params is None:
            raise ValueError("lookahead needs params")
        both = optax.LookaheadParams(fast=params, slow=state.slow)
        out, inner_state = inner.update(updates, state.inner, both)
        slow = optax.apply_updates(state.slow, out.slow)
        return out.fast, _LookaheadState(inner_state, slow)

    return optax.GradientTransformationExtraArgs(init, update)
