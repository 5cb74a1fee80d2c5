"""Train an MLP (or small CNN) on scikit-learn's digits with any registry optimizer.

Runs on the training engine (:mod:`jaxopt_lab.train`): minibatches are epoch permutations drawn from
``(data key, step)`` alone, so a run resumed from a checkpoint replays exactly the batches of an
uninterrupted one; each ``train.log_every`` steps are one jitted ``lax.scan``, sharded over the ``mesh``
section's devices, and the host only logs, evaluates and checkpoints between chunks. ``trial(cfg)`` trains
the same model in one scan for ``jaxopt-lab sweep`` / ``lab.sweep``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxopt_lab import data, models, optim, train
from jaxopt_lab.lab import ConfigError, Each, OneOf, Range, Rule, plots

CONFIG_SPEC = {
    "optimizer.name": OneOf(optim.names),
    "optimizer.learning_rate": Range(0.0, open_low=True),
    "model.kind": OneOf(("mlp", "cnn")),
    "model.hidden": Each(Range(1, integer=True), may_be_empty=True),
    "model.channels": Each(Range(1, integer=True)),
    "data.label_noise": Range(0.0, 1.0, open_high=True),
    "data.test_fraction": Range(0.0, 1.0, open_low=True, open_high=True),
    "train.steps": Range(1, integer=True),
    "train.batch_size": Range(1, integer=True),
    "train.log_every": Range(1, integer=True),
    "train.checkpoint_every": Range(0, integer=True),
    "mesh.data": Range(0, integer=True),
    "mesh.fsdp": Range(1, integer=True),
}

CONFIG_DEFAULTS = {
    "seed": (0, "PRNG seed of model initialisation and minibatch order"),
    "data.seed": (0, "seed of the train/test split and of the label noise (apart from `seed`)"),
    "data.test_fraction": (0.25, "fraction of the 1797 digits held out for testing"),
    "data.label_noise": (0.0, "fraction of training labels replaced by a random other class"),
    "model.kind": ("mlp", "'mlp' (uses model.hidden) or 'cnn' (uses model.channels)"),
    "model.hidden": ((64, 64), "MLP hidden-layer widths"),
    "model.channels": ((16, 32), "CNN convolution channels, one layer each"),
    "optimizer.name": ("adam", "a registered optimizer (see `jaxopt-lab list`); its other arguments may be "
                               "set beside it, e.g. optimizer.b1"),
    "optimizer.learning_rate": (1e-3, "(peak) learning rate"),
    "train.steps": (1000, "optimizer steps"),
    "train.batch_size": (128, "examples per minibatch (minibatches are epoch permutations)"),
    "train.log_every": (50, "steps per jitted chunk: train loss and test metrics are logged after each"),
    "train.checkpoint_every": (250, "steps between checkpoints, a multiple of train.log_every; 0: none"),
    "mesh.data": (0, "devices on the data axis; 0: all devices not on fsdp"),
    "mesh.fsdp": (1, "devices each parameter is split over"),
}

# rules relating keys, checked before anything is imported (see jaxopt_lab.lab.rules)
CONFIG_RULES = (
    Rule("train.checkpoint_every", "train.checkpoint_every % train.log_every == 0",
         "a multiple of train.log_every = {train.log_every} (0: no checkpoints)"),
    Rule("train.batch_size", "train.batch_size <= digits_train_size(data.test_fraction)",
         "<= the training set size {digits_train_size(data.test_fraction)} (data.test_fraction = "
         "{data.test_fraction})"),
    Rule("train.batch_size", "mesh.data == 0 or train.batch_size % (mesh.data * mesh.fsdp) == 0",
         "divisible by the mesh size mesh.data x mesh.fsdp = {mesh.data * mesh.fsdp} (the batch is split "
         "over all devices)"),
)


class Problem(NamedTuple):
    engine: train.Engine
    init_params: Any  # key -> params
    evaluate: Any     # params -> (test loss, test accuracy)
    n_train: int


def _dataset(cfg):
    return data.digits(test_fraction=cfg.data.test_fraction, label_noise=cfg.data.label_noise,
                       seed=cfg.data.seed, flatten=cfg.model.kind != "cnn")


def make_problem(cfg, learning_rate=None, mesh=None) -> Problem:
    """The engine for ``cfg``; ``learning_rate`` may be a traced value (sweeps, with ``mesh=None``)."""
    ds = _dataset(cfg)
    x_test, y_test = jnp.asarray(ds.x_test), jnp.asarray(ds.y_test)
    if cfg.model.kind == "cnn":
        apply_fn, init_params = models.functional_init(
            lambda rngs: models.CNN(ds.num_classes, tuple(cfg.model.channels), rngs=rngs))
    else:
        apply_fn, init_params = models.functional_init(
            lambda rngs: models.MLP(ds.x_train.shape[-1], tuple(cfg.model.hidden), ds.num_classes,
                                    rngs=rngs))
    lr = cfg.optimizer.learning_rate if learning_rate is None else learning_rate
    tx = make_optimizer(cfg, lr)

    def loss_fn(params, batch):
        return models.cross_entropy(apply_fn(params, batch[0]), batch[1])

    def evaluate(params):
        logits = apply_fn(params, x_test)
        return models.cross_entropy(logits, y_test), models.accuracy(logits, y_test)

    n = len(ds.y_train)
    engine = train.Engine(loss_fn, tx, train.batches.epochs(n, cfg.train.batch_size),
                          (jnp.asarray(ds.x_train), jnp.asarray(ds.y_train)), mesh=mesh)
    return Problem(engine, init_params, evaluate, n)


def split_key(key):
    """Model-init key and data-order key from the run's key."""
    init_key, data_key = jax.random.split(key)
    return init_key, data_key


def trial(cfg):
    """``(key, hparams) -> final metrics``: the whole run as one pure function (for sweeps)."""

    def run_trial(key, hparams):
        problem = make_problem(cfg, hparams.get("optimizer.learning_rate"))
        init_key, data_key = split_key(key)
        state = problem.engine.pure_init(problem.init_params(init_key))
        state, metrics = problem.engine.pure_run(state, data_key, 0, cfg.train.steps)
        test_loss, test_acc = problem.evaluate(state.params)
        tail = max(1, min(cfg.train.log_every, cfg.train.steps))
        return {"train_loss": jnp.mean(metrics["loss"][-tail:]), "test_loss": test_loss,
                "test_accuracy": test_acc}

    return run_trial


def make_optimizer(cfg, learning_rate):
    """``optimizer.name`` with ``learning_rate`` and the other arguments stated beside the name
    (e.g. ``optimizer.b1``)."""
    arguments = {k: v for k, v in cfg.optimizer.to_dict().items() if k not in ("name", "learning_rate")}
    return optim.get(cfg.optimizer.name, learning_rate=learning_rate, **arguments)


def check_config(cfg):
    """What needs the import (the rest is in ``CONFIG_SPEC`` and ``CONFIG_RULES``): the optimizer built
    from its arguments, and the batch over the devices when ``mesh.data = 0`` (all of them)."""
    train.check_feedable(cfg.optimizer.name)
    try:
        make_optimizer(cfg, cfg.optimizer.learning_rate)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"config key 'optimizer' = {cfg.optimizer.to_dict()}: {e}") from None
    train.sharding.check_batch_size(train.mesh_from_config(cfg), cfg.train.batch_size)




def run(cfg, ctx):
    problem = make_problem(cfg, mesh=train.mesh_from_config(cfg))
    init_key, data_key = split_key(ctx.key)
    state = problem.engine.init(problem.init_params(init_key))
    evaluate = jax.jit(problem.evaluate)

    def test_metrics(state):
        test_loss, test_acc = evaluate(state.params)
        return {"test_loss": test_loss, "test_accuracy": test_acc}

    train.fit(problem.engine, state, ctx, steps=cfg.train.steps, log_every=cfg.train.log_every,
              data_key=data_key, checkpoint_every=cfg.train.checkpoint_every, evaluate=test_metrics)

    records = ctx.metrics()
    steps, train_loss = plots.metric_series(records, "train_loss")
    _, test_loss = plots.metric_series(records, "test_loss")
    _, test_acc = plots.metric_series(records, "test_accuracy")
    fig = plots.lines({"train loss": (steps, train_loss), "test loss": (steps, test_loss)},
                      xlabel="step", ylabel="cross-entropy", logy=True,
                      title=f"digits {cfg.model.kind}, {cfg.optimizer.name} "
                            f"lr={cfg.optimizer.learning_rate:g}")
    ctx.figure("loss", fig)
    ctx.summary(final_train_loss=float(train_loss[-1]), final_test_loss=float(test_loss[-1]),
                final_test_accuracy=float(test_acc[-1]), best_test_accuracy=float(np.max(test_acc)),
                steps=cfg.train.steps)
