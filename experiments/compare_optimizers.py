"""Compare optimizers on the digits classifier over seeds, each optimizer one vmapped lab.sweep.

Every optimizer trains the ``train_classifier`` model (on the training engine) with its own learning
rate; the seeds of one optimizer run as one compiled, sharded call (``lab.sweep``). The summary has, per
optimizer, the mean and standard deviation over seeds of the final test accuracy and train loss.
"""

from __future__ import annotations

import numpy as np

from jaxopt_lab import optim, train
from jaxopt_lab.lab import Each, OneOf, Range, Rule, plots, sweep
from jaxopt_lab.lab.project import load_experiment

CONFIG_SPEC = {
    **load_experiment("train_classifier").CONFIG_SPEC,
    "compare.names": OneOf(optim.names),
    "compare.learning_rates": Each(Range(0.0, open_low=True)),
    "compare.seeds": Range(1, integer=True),
}

CONFIG_DEFAULTS = {
    **load_experiment("train_classifier").CONFIG_DEFAULTS,
    "compare.names": (("adam", "sgd"), "the optimizers compared (registered names), each trained alike"),
    "compare.learning_rates": ((1e-3, 0.1), "one learning rate per name in compare.names (these replace "
                                            "optimizer.name / optimizer.learning_rate)"),
    "compare.seeds": (8, "seeds per optimizer, run as one vmapped sweep"),
    "train.checkpoint_every": (0, "unused here: each optimizer's seeds run as one compiled call"),
}

CONFIG_RULES = (
    *load_experiment("train_classifier").CONFIG_RULES,
    Rule("compare.learning_rates", "len(compare.learning_rates) == len(compare.names)",
         "one learning rate per name in compare.names = {tuple(compare.names)!r}"),
)


def check_config(cfg):
    """What needs the import: the engine can feed every compared optimizer."""
    for name in cfg.compare.names:
        train.check_feedable(name, key="compare.names")


def run(cfg, ctx):
    classifier = load_experiment("train_classifier")
    means, stds = {}, {}
    ctx.progress(len(cfg.compare.names))
    for i, (name, lr) in enumerate(zip(cfg.compare.names, cfg.compare.learning_rates)):
        variant = cfg.copy_and_resolve_references()
        variant.optimizer.name, variant.optimizer.learning_rate = name, float(lr)
        result = sweep.sweep(classifier.trial(variant), seeds=cfg.compare.seeds)
        acc = np.asarray(result.outputs["test_accuracy"])
        loss = np.asarray(result.outputs["train_loss"])
        means[name], stds[name] = float(acc.mean()), float(acc.std())
        ctx.log(i + 1, **{f"{name}_test_accuracy_mean": acc.mean(),
                          f"{name}_train_loss_mean": loss.mean()})
        ctx.summary(**{f"{name}_test_accuracy_mean": acc.mean(), f"{name}_test_accuracy_std": acc.std(),
                       f"{name}_test_accuracy_min": acc.min(), f"{name}_train_loss_mean": loss.mean(),
                       f"{name}_test_accuracy_per_seed": acc.tolist()})
    fig = plots.bars(means, errors=stds, ylabel="final test accuracy",
                     title=f"digits, {cfg.train.steps} steps, {cfg.compare.seeds} seeds (mean +- std)")
    ctx.figure("test_accuracy", fig)
