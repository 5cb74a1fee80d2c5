"""Benchmark: time of one jitted training step per optimizer, as ratios measured side by side.

For each optimizer of ``cfg.optimizers`` (``label -> {name: registry name, **kwargs}``) it times the
training engine's own step (:func:`jaxopt_lab.train.make_step`: loss and gradient, ``tx.update`` fed
``value``, ``grad_fn`` and ``chunk_grad_fn``, apply_updates) on ``cfg.model`` (``mlp``: the digits MLP;
``lm``: the small LLaMA-style decoder of ``jaxopt_lab.models`` on byte tokens), runs
``cfg.steps_per_call`` steps per call inside one ``lax.scan`` (so dispatch overhead does not dominate
tiny models), and times it with ``lab.bench.time_jitted`` (compile time apart). Run times are then
measured round-robin, one call of every function per round for ``cfg.repeats`` rounds, and the median
per step is reported (on a shared machine, interleaving exposes every optimizer to the same background
load), with its ratio to ``cfg.reference``.

For every ``sam`` entry it also times, in the same process, (a) its base optimizer alone (``base``
from the registry, SGD when absent) and (b) ``optax.contrib.sam`` in the equivalent configuration:
``sam(base optimizer, chain(normalize(), sgd(rho)), sync_period=2, opaque_mode=True)`` (one
adversarial gradient per update, like ours), and reports ``<label>_ratio_to_base`` and
``<label>_ratio_to_optax_sam`` against the issue's targets (<= 2.1x and <= 1.05x).
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import optax.contrib

from jaxopt_lab import data, models, optim, train
from jaxopt_lab.lab import OneOf, Range, bench, plots
from jaxopt_lab.lab.config import ConfigError

CONFIG_SPEC = {
    "model": OneOf(["mlp", "lm"]),
    "batch_size": Range(1, integer=True),
    "steps_per_call": Range(1, integer=True),
    "repeats": Range(1, integer=True),
    "mlp_hidden": Range(1, integer=True),
    "lm_preset": OneOf(["tiny", "mini", "base", "small"]),
    "seq_len": Range(1, integer=True),
}

CONFIG_DEFAULTS = {
    "seed": (0, "seed of the initialisation and the fixed batch"),
    "model": ("mlp", "'mlp' (the digits MLP) or 'lm' (models.Llama of preset lm_preset on byte tokens)"),
    "mlp_hidden": (256, "width of the MLP's two hidden layers"),
    "lm_preset": ("tiny", "models.LlamaConfig preset for model = 'lm'"),
    "seq_len": (64, "tokens per sequence for model = 'lm'"),
    "batch_size": (128, "examples (sequences) per step"),
    "steps_per_call": (20, "training steps per timed call (one lax.scan)"),
    "repeats": (20, "timed rounds (one call of every optimizer each); the median is reported"),
    "reference": ("sgd", "the label the ratio_to_reference columns divide by"),
    "only": ((), "if non-empty: time only these labels (and the reference)"),
    "optimizers": ({
        "sgd": {"name": "sgd", "learning_rate": 0.1},
        "adam": {"name": "adam", "learning_rate": 1e-3},
        "sam": {"name": "sam", "learning_rate": 0.1, "rho": 0.05},
        "sam_adam": {"name": "sam", "learning_rate": 1e-3, "rho": 0.05, "base": "adam"},
        "gsam": {"name": "gsam", "learning_rate": 0.1},
        "gam": {"name": "gam", "learning_rate": 0.1},
    }, "label -> {name: a registered optimizer, keyword arguments of optim.get}; replaced as a whole"),
}

TARGET_RATIO_TO_BASE = 2.1  # target: one sam step <= 2.1x one step of its base optimizer
TARGET_RATIO_TO_OPTAX_SAM = 1.05  # target: and <= 1.05x optax.contrib.sam


def validate(cfg: ml_collections.ConfigDict) -> None:
    """Every entry names a registered optimizer; the reference is one of the labels."""
    entries = cfg.optimizers.to_dict()
    if not entries:
        raise ConfigError("config key 'optimizers' = {}: must list at least one optimizer")
    for label, entry in entries.items():
        name = entry.get("name")
        if name not in optim.names():
            close = [n for n in optim.names() if isinstance(name, str) and n.startswith(name[:3])]
            raise ConfigError(f"config key 'optimizers.{label}.name' = {name!r}: must be one of "
                              f"jaxopt_lab.optim.names(){' (did you mean ' + ', '.join(close) + '?)' if close else ''}")
    unknown = [label for label in cfg.only if label not in entries]
    if unknown:
        raise ConfigError(f"config key 'only' = {tuple(cfg.only)!r}: must name optimizer labels "
                          f"{sorted(entries)}")
    if cfg.reference not in entries:
        raise ConfigError(f"config key 'reference' = {cfg.reference!r}: must be one of the "
                          f"optimizer labels {sorted(entries)}")


# ------------------------------------------------------------------------------------------------
# models and batches


def _problem(cfg, key) -> tuple[Any, Callable, Any, int]:
    """``(params, loss_fn(params, batch), batch, n_params)`` for ``cfg.model``."""
    if cfg.model == "mlp":
        digits = data.digits(seed=cfg.seed)
        hidden = (cfg.mlp_hidden, cfg.mlp_hidden)
        apply_fn, init_fn = models.functional_init(
            lambda rngs: models.MLP(digits.x_train.shape[1], hidden, digits.num_classes, rngs=rngs))
        index = np.arange(cfg.batch_size) % len(digits.x_train)
        batch = (jnp.asarray(digits.x_train[index]), jnp.asarray(digits.y_train[index]))
    else:
        config = getattr(models.LlamaConfig, cfg.lm_preset)(max_seq_len=cfg.seq_len)
        apply_fn, init_fn = models.functional_init(lambda rngs: models.Llama(config, rngs=rngs))
        # Random byte windows: a step's cost does not depend on the token values.
        tokens = jax.random.randint(jax.random.fold_in(key, 1), (cfg.batch_size, cfg.seq_len + 1),
                                    0, data.BYTE_VOCAB_SIZE, dtype=jnp.int32)
        batch = (tokens[:, :-1], tokens[:, 1:])
    params = init_fn(key)

    def loss_fn(params, batch):
        inputs, labels = batch
        return models.cross_entropy(apply_fn(params, inputs), labels)

    return params, loss_fn, batch, models.count_params(params)


def _optax_sam(base: optax.GradientTransformation, rho: float):
    """optax.contrib.sam equivalent to ``jaxopt_lab.optim.sam(lr, rho, base=...)``, adapted to the
    ``grad_fn: params -> grads`` contract (optax's opaque mode calls ``grad_fn(params, i)``)."""
    tx = optax.contrib.sam(base, optax.chain(optax.contrib.normalize(), optax.sgd(rho)),
                           sync_period=2, opaque_mode=True)

    def update(grads, state, params, *, grad_fn, **extra):
        del extra
        return tx.update(grads, state, params, grad_fn=lambda p, _: grad_fn(p))

    return optax.GradientTransformationExtraArgs(tx.init, update)


def _compile(tx, params, loss_fn, batch, cfg):
    """``steps_per_call`` steps of the training engine on the fixed ``batch`` (jitted), its arguments,
    and its timing by ``time_jitted`` (compile time apart, then the median of a few warm calls)."""
    engine = train.Engine(loss_fn, tx, train.batches.full_batch(), batch)
    # the batch is an argument, as a training run's batches are, not a constant folded into the program
    args = (engine.pure_init(params), jax.random.key(0), jnp.int32(0), batch)
    fn = jax.jit(lambda state, key, start, data: engine.pure_run(state, key, start, cfg.steps_per_call, data))
    return fn, args, bench.time_jitted(fn, *args, repeats=3)


def _interleaved(compiled: dict, rounds: int) -> dict[str, list[float]]:
    """Seconds per call of every compiled function, measured round-robin: each round calls each
    function once, so load from other processes on a shared machine hits all of them alike."""
    runs = {label: [] for label in compiled}
    for _ in range(rounds):
        for label, (fn, args, _) in compiled.items():
            runs[label].append(bench.time_call(fn, *args, repeats=1, warmup=1).run_s)
    return runs


def run(cfg, ctx):
    params, loss_fn, batch, n_params = _problem(cfg, ctx.key)
    entries = {label: entry for label, entry in cfg.optimizers.to_dict().items()
               if not cfg.only or label in cfg.only or label == cfg.reference}
    ctx.progress(len(entries) + 1)
    compiled: dict[str, tuple] = {}
    sam_bases: dict[str, str] = {}

    for i, (label, entry) in enumerate(entries.items()):
        kwargs = {k: v for k, v in entry.items() if k != "name"}
        tx = optim.get(entry["name"], **kwargs)
        compiled[label] = _compile(tx, params, loss_fn, batch, cfg)
        if entry["name"] == "sam":
            base_name = kwargs.get("base") or "sgd"
            lr = kwargs.get("learning_rate")
            base = optim.get(base_name, learning_rate=lr)
            compiled[f"{label}:base"] = _compile(base, params, loss_fn, batch, cfg)
            reference_sam = _optax_sam(optim.get(base_name, learning_rate=lr),
                                       kwargs.get("rho", 0.05))
            compiled[f"{label}:optax_sam"] = _compile(reference_sam, params, loss_fn, batch, cfg)
            sam_bases[label] = base_name
        ctx.log(i + 1, compile_s=compiled[label][2].compile_s)

    runs = _interleaved(compiled, cfg.repeats)
    timings = {label: bench.Timing(compiled[label][2].compile_s,
                                   float(np.median(r)) / cfg.steps_per_call,
                                   tuple(t / cfg.steps_per_call for t in r))
               for label, r in runs.items()}
    extra: dict[str, Any] = {}
    for label, base_name in sam_bases.items():
        to_base = timings[label].run_s / timings[f"{label}:base"].run_s
        to_optax = timings[label].run_s / timings[f"{label}:optax_sam"].run_s
        extra.update({f"{label}_base": base_name,
                      f"{label}_ratio_to_base": to_base,
                      f"{label}_ratio_to_optax_sam": to_optax,
                      f"{label}_meets_base_target": bool(to_base <= TARGET_RATIO_TO_BASE),
                      f"{label}_meets_optax_sam_target": bool(to_optax <= TARGET_RATIO_TO_OPTAX_SAM)})
    ctx.log(len(entries) + 1, **{f"{k}_ms": 1e3 * t.run_s for k, t in timings.items()
                                 if ":" not in k})

    reference = timings[cfg.reference].run_s
    table = {label: {"run_ms_per_step": 1e3 * t.run_s, "compile_s": t.compile_s,
                     "ratio_to_reference": t.run_s / reference,
                     "runs_ms_per_step": [1e3 * r for r in t.runs_s],
                     "sequential_ms_per_step":
                         1e3 * compiled[label][2].run_s / cfg.steps_per_call}
             for label, t in timings.items()}
    ctx.summary(model=cfg.model, n_params=n_params, reference=cfg.reference,
                devices=str(jax.devices()), timings=table,
                **{f"{label.replace(':', '_')}_ms_per_step": 1e3 * t.run_s
                   for label, t in timings.items()},
                **{f"{label.replace(':', '_')}_ratio_to_reference": t.run_s / reference
                   for label, t in timings.items()},
                **extra)
    ctx.figure("step_time", plots.bars({k: 1e3 * t.run_s for k, t in timings.items()},
                                       ylabel="ms per step",
                                       title=f"{cfg.model}: one training step (median)"))
