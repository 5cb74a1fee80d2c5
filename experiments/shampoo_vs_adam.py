"""Shampoo vs Adam on the byte-level LM: held-out loss against steps and wall time, each at its best lr.

"Scalable Second Order Optimization for Deep Learning" (arXiv:2002.09018) trains Transformers with
Shampoo (Adagrad/Adam-grafted, preconditioners recomputed every few hundred steps on the host) and
reports reaching the baseline's quality in fewer steps. Here: the LLaMA-style decoder and byte corpus of
the ``lm_pretrain`` experiment (its ``lm_preset`` / ``model`` / ``seq_len`` / ``batch_size`` /
``corpus_bytes`` / ``eval_windows`` keys, its ``make_problem``), every optimizer of ``cfg.optimizers``
(``label -> {name, **kw}``) trained for ``cfg.steps`` steps at each learning rate of the log grid
``cfg.lr`` x ``cfg.seeds`` seeds, the whole grid of one optimizer one vmapped ``lab.sweep`` (each trial:
``steps / eval_every`` chunks of the training engine's pure ``lax.scan``, the held-out loss after each).

For each optimizer the learning rate with the lowest final held-out loss (mean over seeds) is selected.
The *target* is the reference's (``cfg.reference``, Adam) final held-out loss at its best learning rate;
``steps_to_target_<label>`` is the first evaluated step at which ``<label>``'s mean held-out curve is at
or below it; one that never gets there within the budget (``reached_target_<label> = 0``) is counted
as ``steps + eval_every``, more than any step of the run, so a claim "fewer steps than Adam" fails. Wall time: each optimizer at its best
learning rate is run again un-vmapped on the jitted engine for ``cfg.timing_chunks`` chunks after a
compile chunk; ``step_ms_<label>`` is the median chunk time per step (a chunk of ``eval_every`` >=
``precondition_every`` steps includes its share of root refreshes), and the wall-time axis of the figure
and ``seconds_to_target_<label>`` are steps x that step time (compile excluded).
"""

from __future__ import annotations

import math
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxopt_lab import models, optim, train
from jaxopt_lab.lab import ConfigError, Range, Rule, plots, sweep
from jaxopt_lab.lab.project import load_experiment

_LM_KEYS = ("lm_preset", "model.dim", "model.n_layers", "model.hidden_dim", "model.n_heads", "seq_len",
            "batch_size", "corpus_bytes", "eval_windows", "optimizers.*.name", "optimizers.*.rank")

# lm_pretrain's rules on the model and on the optimizer table (names, reference, an entry's rank)
_LM_RULES = ("model.n_heads", "optimizers", "reference")

CONFIG_SPEC = {
    **{k: v for k, v in load_experiment("lm_pretrain").CONFIG_SPEC.items() if k in _LM_KEYS},
    "steps": Range(1, integer=True),
    "eval_every": Range(1, integer=True),
    "seeds": Range(1, integer=True),
    "lr.min": Range(0.0, open_low=True),
    "lr.max": Range(0.0, open_low=True),
    "lr.num": Range(1, integer=True),
    "timing_chunks": Range(1, integer=True),
}

CONFIG_DEFAULTS = {
    "seed": (0, "first seed (seeds seed .. seed + seeds - 1: initialisation and batch order) and the corpus's"),
    "lm_preset": ("tiny", "models.LlamaConfig preset the model keys override"),
    "model.dim": (32, "model width; 0 keeps the preset's"),
    "model.n_layers": (2, "decoder layers; 0 keeps the preset's"),
    "model.hidden_dim": (64, "MLP hidden width; 0 keeps the preset's"),
    "model.n_heads": (2, "attention heads (heads of even size); 0 keeps the preset's"),
    "seq_len": (64, "context length in bytes"),
    "batch_size": (16, "windows per step"),
    "corpus_bytes": (1_000_000, "bytes of the standard-library corpus used (train and held-out split)"),
    "eval_windows": (128, "held-out windows of each evaluation"),
    "steps": (400, "training steps, a multiple of eval_every"),
    "eval_every": (20, "steps per chunk: the held-out loss is evaluated after each"),
    "timing_chunks": (5, "timed chunks (after a compile chunk) of the wall-time measurement"),
    "seeds": (2, "seeds per learning rate, vmapped with the learning-rate grid"),
    "lr.min": (1e-3, "smallest learning rate of the log grid, <= lr.max"),
    "lr.max": (0.1, "largest learning rate of the log grid"),
    "lr.num": (5, "learning rates in the grid"),
    "reference": ("adam", "the label whose final held-out loss at its best learning rate is the target"),
    "optimizers": ({
        "adam": {"name": "adam"},
        "shampoo": {"name": "shampoo", "graft": "adam", "precondition_every": 10},
    }, "label -> {name: a registered optimizer, its arguments except learning_rate (swept over lr)}; "
       "replaced as a whole"),
}

# known, so that an entry's learning rate is refused by the rule below (with why) before any import
CONFIG_KEYS = ("optimizers.*.learning_rate",)

# rules relating keys, checked before anything is imported (see jaxopt_lab.lab.rules): lm_pretrain's on
# the model and the optimizer table, and this experiment's
CONFIG_RULES = (
    *(rule for rule in load_experiment("lm_pretrain").CONFIG_RULES if rule.key in _LM_RULES),
    Rule("optimizers", "all('learning_rate' not in entry for entry in optimizers.values())",
         "entries without a learning rate (it is swept over 'lr'); set in: {[f'optimizers.{label}.learning_rate' "
         "for label, entry in optimizers.items() if 'learning_rate' in entry]}"),
    Rule("steps", "steps % eval_every == 0", "a multiple of eval_every = {eval_every}"),
    Rule("lr.min", "lr.min <= lr.max", "<= lr.max = {lr.max!r}"),
)


def check_config(cfg) -> None:
    """What needs the import (the rest is in ``CONFIG_SPEC`` and ``CONFIG_RULES``): every entry can be
    fed by the engine and builds (at ``lr.min``)."""
    for label, entry in cfg.optimizers.to_dict().items():
        train.check_feedable(entry["name"], key=f"optimizers.{label}.name")
        try:
            _optimizer(entry, cfg.lr.min)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"config key 'optimizers.{label}' = {entry}: {e}") from None


def _optimizer(entry: dict, learning_rate):
    return optim.get(entry["name"], learning_rate=learning_rate,
                     **{k: v for k, v in entry.items() if k != "name"})


def make_trial(cfg, entry: dict, loss_fn, init_fn, tokens, eval_batch, sampler):
    """``trial(key, {"lr": lr}) -> {"held_out": (n_eval,), "train_loss": (n_eval,)}``: ``cfg.steps``
    steps from the initialisation of ``key``, the held-out loss and the chunk's mean training loss after
    every ``eval_every`` steps, all in one ``lax.scan``."""
    n_eval = cfg.steps // cfg.eval_every

    def trial(key, hparams):
        engine = train.Engine(loss_fn, _optimizer(entry, hparams["lr"]), sampler, tokens)
        init_key, data_key = jax.random.split(key)

        def chunk(state, i):
            state, metrics = engine.pure_run(state, data_key, i * cfg.eval_every, cfg.eval_every)
            return state, (loss_fn(state.params, eval_batch), jnp.mean(metrics["loss"]))

        _, (held_out, train_loss) = jax.lax.scan(chunk, engine.pure_init(init_fn(init_key)),
                                                 jnp.arange(n_eval))
        return {"held_out": held_out, "train_loss": train_loss}

    return trial


def step_seconds(cfg, entry, learning_rate, loss_fn, params, tokens, sampler, key) -> float:
    """Median wall time per step of the jitted, un-vmapped engine (chunks of ``eval_every`` steps,
    the first chunk, which compiles, excluded)."""
    engine = train.Engine(loss_fn, _optimizer(entry, learning_rate), sampler, tokens)
    state = engine.init(params)
    times = []
    for i in range(cfg.timing_chunks + 1):
        t0 = time.perf_counter()
        state, metrics = engine.run(state, key, i * cfg.eval_every, cfg.eval_every)
        jax.block_until_ready(metrics)
        times.append(time.perf_counter() - t0)
    return float(np.median(times[1:])) / cfg.eval_every


def first_step_at_or_below(steps: np.ndarray, curve: np.ndarray, target: float):
    """The first of ``steps`` where ``curve <= target``, or ``None``."""
    hit = np.flatnonzero(np.isfinite(curve) & (curve <= target))
    return int(steps[hit[0]]) if hit.size else None


def run(cfg, ctx):
    lm = load_experiment("lm_pretrain")
    params0, loss_fn, tokens, eval_batch = lm.make_problem(cfg, ctx.key)
    _, init_fn = models.functional_init(lambda rngs: models.Llama(lm.model_config(cfg), rngs=rngs))
    sampler = train.batches.token_windows(tokens.shape[0], cfg.batch_size, cfg.seq_len)
    entries = cfg.optimizers.to_dict()
    labels = [cfg.reference] + [k for k in entries if k != cfg.reference]
    lrs = np.geomspace(cfg.lr.min, cfg.lr.max, cfg.lr.num)
    steps = cfg.eval_every * np.arange(1, cfg.steps // cfg.eval_every + 1)

    summary = {"learning_rates": lrs.tolist(), "lr_grid_max": float(lrs[-1]),
               "n_params": models.count_params(params0)}
    best_curves = {}
    for label in labels:
        trial = make_trial(cfg, entries[label], loss_fn, init_fn, tokens, eval_batch, sampler)
        result = sweep.sweep(trial, seeds=cfg.seeds, grid={"lr": lrs})
        held_out = np.asarray(result.outputs["held_out"], np.float64)  # (n_lr, n_seeds, n_eval)
        train_loss = np.asarray(result.outputs["train_loss"], np.float64)
        final = held_out[:, :, -1]
        finite = np.all(np.isfinite(held_out), axis=(1, 2))  # a diverged seed disqualifies the lr
        scores = np.where(finite, final.mean(axis=1), np.nan)
        summary[f"{label}_scores"] = [None if not math.isfinite(s) else s for s in scores.tolist()]
        if not finite.any():
            summary[f"{label}_error"] = "every learning rate diverged"
            continue
        i = int(np.nanargmin(scores))
        best_curves[label] = held_out[i].mean(axis=0)
        summary[f"{label}_best_lr"] = float(lrs[i])
        summary[f"{label}_best_final"] = float(scores[i])
        summary[f"{label}_best_final_std"] = float(final[i].std())
        summary[f"{label}_best_train_loss"] = float(train_loss[i, :, -1].mean())
        summary[f"{label}_n_diverged"] = int((~finite).sum())
        for s, value in zip(steps, best_curves[label]):
            ctx.log(int(s), **{f"held_out_{label}": float(value)})
        summary[f"step_ms_{label}"] = 1e3 * step_seconds(
            cfg, entries[label], float(lrs[i]), loss_fn, params0, tokens, sampler,
            jax.random.fold_in(ctx.key, 1))

    if cfg.reference in best_curves:
        target = summary[f"{cfg.reference}_best_final"]
        summary["target_held_out"] = target
        for label, curve in best_curves.items():
            reached = first_step_at_or_below(steps, curve, target)
            summary[f"reached_target_{label}"] = int(reached is not None)
            if reached is None:  # censored: counted as the next evaluation after the budget
                reached = cfg.steps + cfg.eval_every
            summary[f"steps_to_target_{label}"] = reached
            summary[f"seconds_to_target_{label}"] = reached * summary[f"step_ms_{label}"] / 1e3
        for label in best_curves:
            summary[f"step_time_ratio_{label}"] = (summary[f"step_ms_{label}"]
                                                   / summary[f"step_ms_{cfg.reference}"])
    ctx.summary(**summary)

    if best_curves:
        fig, axes = plots.plt.subplots(1, 2, figsize=(11, 3.8))
        names = {k: f"{k} (lr {summary[f'{k}_best_lr']:.2g})" for k in best_curves}
        plots.lines({names[k]: (steps, c) for k, c in best_curves.items()}, xlabel="step",
                    ylabel="held-out loss (nats/byte)", title="at each one's best learning rate",
                    ax=axes[0])
        plots.lines({names[k]: (steps * summary[f"step_ms_{k}"] / 1e3, c)
                     for k, c in best_curves.items()}, xlabel="wall time (s, compile excluded)",
                    ylabel="held-out loss (nats/byte)", title="vs measured step time", ax=axes[1])
        if "target_held_out" in summary:
            for ax in axes:
                ax.axhline(summary["target_held_out"], color="grey", ls=":", lw=1)
        fig.tight_layout()
        ctx.figure("loss_vs_step_and_time", fig)
