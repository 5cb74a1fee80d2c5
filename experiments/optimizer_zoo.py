"""Optimizer zoo: every registered optimizer on three tasks, a learning-rate sweep each (robustness curves).

Tasks (``cfg.tasks``): ``digits`` (an MLP on scikit-learn's digits, minibatch SGD-style training, scored
by the test cross-entropy), ``lm`` (a small LLaMA-style decoder on the standard-library byte corpus,
scored by the held-out next-byte loss) and ``rosenbrock`` (the ill-conditioned Rosenbrock valley in
``rosenbrock.dim`` dimensions from a perturbed classic start, scored by the final ``f(x)``, minimum 0).

For each task and optimizer, one ``lab.sweep`` runs the whole grid ``learning rates x seeds`` as one
vmapped, compiled call: the optimizer is built inside the trial from the traced learning rate, the
training loop is one pure chunk of the training engine (:mod:`jaxopt_lab.train`: every optimizer is fed
``value``, ``grad_fn`` and ``chunk_grad_fn`` on the step's batch; batches come from the engine's samplers:
epochs of the digits training set, random windows of the LM's training bytes, the full "batch" for
Rosenbrock). Outputs: per task a figure of the
final score vs learning rate (mean over seeds, one panel per optimizer family), and a table of the best
learning rate of each optimizer with the score's mean and standard deviation over seeds there (and the
mean training loss over the run there, an area under the loss curve: lower is faster). A
non-finite score (divergence) at any seed marks that learning rate as diverged; an optimizer that
cannot be built or traced is reported in the summary, never silently dropped.
"""

from __future__ import annotations

import math
import traceback
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxopt_lab import data, models, optim, train
from jaxopt_lab.lab import OneOf, Range, Rule, plots, sweep
from jaxopt_lab.lab import metrics as metrics_lib

TASKS = ("digits", "lm", "rosenbrock")

CONFIG_SPEC = {
    "optimizers": OneOf(optim.names),
    "exclude": OneOf(optim.names),
    "tasks": OneOf(TASKS),
    "seeds": Range(1, integer=True),
    "lr.min": Range(0.0, open_low=True),
    "lr.max": Range(0.0, open_low=True),
    "lr.num": Range(1, integer=True),
    "digits.hidden": Range(1, integer=True),
    "digits.steps": Range(1, integer=True),
    "digits.batch_size": Range(1, integer=True),
    "lm.dim": Range(2, integer=True),
    "lm.n_layers": Range(1, integer=True),
    "lm.n_heads": Range(1, integer=True),
    "lm.seq_len": Range(2, integer=True),
    "lm.batch_size": Range(1, integer=True),
    "lm.steps": Range(1, integer=True),
    "lm.corpus_bytes": Range(10_000, integer=True),
    "rosenbrock.dim": Range(2, integer=True),
    "rosenbrock.steps": Range(1, integer=True),
    "rosenbrock.init_noise": Range(0.0),
}

CONFIG_DEFAULTS = {
    "seed": (0, "first seed of each sweep (initialisation, data order, Rosenbrock start)"),
    "optimizers": ((), "registered names to run; (): every registered optimizer"),
    "exclude": ((), "registered names to leave out"),
    "tasks": (("digits", "lm", "rosenbrock"), "the tasks, any of 'digits', 'lm', 'rosenbrock'"),
    "seeds": (2, "seeds per learning rate, vmapped with the learning-rate grid"),
    "lr.min": (1e-5, "smallest learning rate of the geometric grid, <= lr.max"),
    "lr.max": (1.0, "largest learning rate of the grid"),
    "lr.num": (11, "learning rates in the grid (11 from 1e-5 to 1: two per decade)"),
    "digits.hidden": (64, "digits MLP hidden width"),
    "digits.steps": (300, "digits training steps"),
    "digits.batch_size": (64, "digits minibatch size (at most the training set)"),
    "lm.dim": (32, "LM model width"),
    "lm.n_layers": (1, "LM decoder layers"),
    "lm.n_heads": (2, "LM attention heads"),
    "lm.seq_len": (32, "LM context length in bytes"),
    "lm.batch_size": (8, "LM windows per step"),
    "lm.steps": (150, "LM training steps"),
    "lm.corpus_bytes": (300_000, "bytes of the standard-library corpus used (train and held-out split)"),
    "rosenbrock.dim": (10, "Rosenbrock dimension"),
    "rosenbrock.steps": (500, "Rosenbrock steps"),
    "rosenbrock.init_noise": (0.1, "standard deviation of the Gaussian perturbation of the classic start"),
}

# rules relating keys, checked before anything is imported (see jaxopt_lab.lab.rules); the digits batch must
# fit in the training set (an epoch holds at least one batch)
CONFIG_RULES = (
    Rule("lr.min", "lr.min <= lr.max", "<= lr.max = {lr.max!r}"),
    Rule("digits.batch_size", "'digits' not in tasks or digits.batch_size <= digits_train_size()",
         "<= the training set size of digits ({digits_train_size()})"),
    Rule("exclude", "any(name not in exclude for name in optimizers or optimizer_names())",
         "missing at least one of the optimizers run, {tuple(optimizers) or 'every registered one'}"),
)


class Task(NamedTuple):
    """A training problem: ``init(key) -> params``, ``loss(params, batch) -> minibatch loss`` on the
    batches ``sampler`` draws from ``data``, ``score(params) -> final score`` (lower is better),
    ``steps``, and a label for the score."""

    init: Callable
    loss: Callable
    score: Callable
    steps: int
    score_name: str
    sampler: train.Sampler
    data: object


def digits_task(cfg) -> Task:
    ds = data.digits(seed=0)
    x_train, y_train = jnp.asarray(ds.x_train), jnp.asarray(ds.y_train)
    x_test, y_test = jnp.asarray(ds.x_test), jnp.asarray(ds.y_test)
    apply_fn, init_fn = models.functional_init(
        lambda rngs: models.MLP(x_train.shape[1], (cfg.digits.hidden,), ds.num_classes, rngs=rngs))

    def loss(params, batch):
        return models.cross_entropy(apply_fn(params, batch[0]), batch[1])

    def score(params):
        return models.cross_entropy(apply_fn(params, x_test), y_test)

    return Task(init_fn, loss, score, cfg.digits.steps, "digits test cross-entropy",
                train.batches.epochs(x_train.shape[0], cfg.digits.batch_size), (x_train, y_train))


def lm_task(cfg) -> Task:
    train_tokens, test_tokens = data.lm_split(data.byte_corpus(max_bytes=cfg.lm.corpus_bytes, seed=0),
                                              cfg.lm.seq_len)
    train_tokens, test_tokens = jnp.asarray(train_tokens, jnp.int32), jnp.asarray(test_tokens, jnp.int32)
    config = models.LlamaConfig.tiny(dim=cfg.lm.dim, n_layers=cfg.lm.n_layers, n_heads=cfg.lm.n_heads,
                                     hidden_dim=2 * cfg.lm.dim, max_seq_len=cfg.lm.seq_len)
    apply_fn, init_fn = models.functional_init(lambda rngs: models.Llama(config, rngs=rngs))
    # a fixed held-out set of windows, the same for every trial
    held_out = data.sample_lm_batch(jax.random.PRNGKey(12345), test_tokens, 4 * cfg.lm.batch_size,
                                    cfg.lm.seq_len)

    def loss(params, batch):
        return models.cross_entropy(apply_fn(params, batch[0]), batch[1])

    def score(params):
        return models.cross_entropy(apply_fn(params, held_out[0]), held_out[1])

    return Task(init_fn, loss, score, cfg.lm.steps, "LM held-out loss (nats/byte)",
                train.batches.token_windows(train_tokens.shape[0], cfg.lm.batch_size, cfg.lm.seq_len),
                train_tokens)


def rosenbrock_task(cfg) -> Task:
    d = cfg.rosenbrock.dim
    start = jnp.where(jnp.arange(d) % 2 == 0, -1.2, 1.0)  # the classic start, in every pair

    def init(key):
        return {"x": start + cfg.rosenbrock.init_noise * jax.random.normal(key, (d,))}

    def loss(params, batch):
        del batch  # deterministic: the full "batch" is nothing
        return data.rosenbrock(params["x"])

    def score(params):
        return data.rosenbrock(params["x"])

    return Task(init, loss, score, cfg.rosenbrock.steps, f"Rosenbrock f(x), d={d}",
                train.batches.full_batch(), None)


TASK_BUILDERS = {"digits": digits_task, "lm": lm_task, "rosenbrock": rosenbrock_task}


def make_trial(task: Task, name: str) -> Callable:
    """``trial(key, {"lr": lr}) -> {"score", "final_loss"}``: train ``task`` with optimizer ``name``
    built from the (traced) learning rate, in one ``lax.scan``."""

    def trial(key, hparams):
        engine = train.Engine(task.loss, optim.get(name, learning_rate=hparams["lr"]), task.sampler,
                              task.data)
        init_key, data_key = jax.random.split(key)
        state, metrics = engine.pure_run(engine.pure_init(task.init(init_key)), data_key, 0, task.steps)
        losses = metrics["loss"]
        # mean_train_loss: the area under the training-loss curve (lower = faster convergence)
        return {"score": task.score(state.params), "final_loss": losses[-1],
                "mean_train_loss": jnp.mean(losses)}

    return trial


def learning_rates(cfg) -> np.ndarray:
    return np.geomspace(cfg.lr.min, cfg.lr.max, cfg.lr.num)


def selected(cfg) -> list[str]:
    names = list(cfg.optimizers) or optim.names()
    return [n for n in names if n not in set(cfg.exclude)]


def summarize(lrs: np.ndarray, scores: np.ndarray, train_losses: np.ndarray) -> dict:
    """Best learning rate of one (task, optimizer) from its ``(n_lr, n_seeds)`` scores.

    A learning rate with a non-finite score at any seed counts as diverged and cannot be the best.
    """
    finite = np.all(np.isfinite(scores), axis=1)
    means = np.where(finite, scores.mean(axis=1), np.nan)
    stds = np.where(finite, scores.std(axis=1), np.nan)
    if not finite.any():
        return {"best_lr": math.nan, "best_mean": math.nan, "best_std": math.nan,
                "best_mean_train_loss": math.nan, "n_diverged": int(len(lrs)), "means": means,
                "stds": stds}
    i = int(np.nanargmin(means))
    return {"best_lr": float(lrs[i]), "best_mean": float(means[i]), "best_std": float(stds[i]),
            "best_mean_train_loss": float(np.mean(train_losses[i])),
            "n_diverged": int((~finite).sum()), "means": means, "stds": stds}


def table_markdown(rows: list[dict]) -> str:
    lines = ["| task | optimizer | family | best lr | best score (mean +- std over seeds) | "
             "diverged lrs |", "|---|---|---|---|---|---|"]
    for r in rows:
        if r.get("error"):
            lines.append(f"| {r['task']} | {r['optimizer']} | {r['family']} | - | error: "
                         f"{r['error']} | - |")
            continue
        lines.append(f"| {r['task']} | {r['optimizer']} | {r['family']} | {r['best_lr']:.3g} | "
                     f"{r['best_mean']:.4g} +- {r['best_std']:.2g} | {r['n_diverged']} |")
    return "\n".join(lines) + "\n"


def run(cfg, ctx):
    names = selected(cfg)
    lrs = learning_rates(cfg)
    ctx.progress(len(cfg.tasks) * len(names))
    rows, step = [], 0
    for task_name in cfg.tasks:
        task = TASK_BUILDERS[task_name](cfg)
        curves = {}
        for name in names:
            step += 1
            family = optim.info(name).family
            row = {"task": task_name, "optimizer": name, "family": family}
            try:
                result = sweep.sweep(make_trial(task, name), seeds=cfg.seeds, grid={"lr": lrs})
            except Exception as e:  # noqa: BLE001  reported in the table and the summary
                row["error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
                ctx.summary(**{f"{task_name}_{name}_error": row["error"]})
                rows.append(row)
                print(f"[optimizer_zoo] {task_name}/{name} failed:\n{traceback.format_exc()}")
                continue
            scores = np.asarray(result.outputs["score"], np.float64)
            best = summarize(lrs, scores, np.asarray(result.outputs["mean_train_loss"], np.float64))
            curves[name] = (family, best["means"], best["stds"])
            row.update({k: best[k] for k in ("best_lr", "best_mean", "best_std",
                                             "best_mean_train_loss", "n_diverged")})
            rows.append(row)
            if math.isfinite(best["best_mean"]):
                ctx.log(step, **{f"{task_name}_{name}_best": best["best_mean"]})
            ctx.summary(**{f"{task_name}_{name}_best_{k}": row[f"best_{k}"]
                           for k in ("lr", "mean", "std", "mean_train_loss")},
                        **{f"{task_name}_{name}_n_diverged": row["n_diverged"],
                           f"{task_name}_{name}_scores": scores.tolist()})
        ctx.figure(f"robustness_{task_name}", robustness_figure(task, task_name, lrs, curves))
    ctx.summary(learning_rates=lrs.tolist(), optimizers=names, tasks=list(cfg.tasks), table=rows,
                n_errors=sum(1 for r in rows if r.get("error")))
    metrics_lib.atomic_write_text(ctx.run_dir / "table.md", table_markdown(rows))


def robustness_figure(task: Task, task_name: str, lrs: np.ndarray, curves: dict):
    """Final score vs learning rate, one panel per optimizer family (mean over seeds, +- std)."""
    families = sorted({family for family, _, _ in curves.values()}) or ["-"]
    cols = min(3, len(families))
    rows = math.ceil(len(families) / cols)
    fig, axes = plots.plt.subplots(rows, cols, figsize=(5.0 * cols, 3.6 * rows), squeeze=False)
    for ax, family in zip(axes.ravel(), families):
        series = {n: (lrs, m) for n, (f, m, _) in curves.items() if f == family}
        bands = {n: s for n, (f, _, s) in curves.items() if f == family}
        # log scale: a diverging optimizer's score (e.g. Lion at lr 1) would flatten the others
        plots.lines(series, bands=bands, xlabel="learning rate", ylabel=task.score_name, logx=True,
                    logy=True, title=f"{task_name}: {family}", ax=ax)
        ax.legend(fontsize=7)  # also for a family of one
    for ax in axes.ravel()[len(families):]:
        ax.axis("off")
    fig.tight_layout()
    return fig
