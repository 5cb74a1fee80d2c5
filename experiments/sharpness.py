"""Sharpness-aware training on digits (optionally with label noise): test accuracy and lambda_max.

Trains the digits MLP with every optimizer of ``cfg.optimizers`` (``label -> {name, **kwargs}``, e.g.
sgd, sam, asam, gsam, gam, fisher_sam) over ``cfg.seeds`` seeds. Per optimizer, all seeds run as one
compiled, vmapped call (``lab.sweep``): the training loop is a ``lax.scan`` over evaluation blocks of
the training engine's pure chunks (:mod:`jaxopt_lab.train`: every optimizer is fed ``value``,
``grad_fn`` and, for m-sharpness, ``chunk_grad_fn``), and every ``cfg.eval_every`` epochs it records the
test accuracy and the top Hessian eigenvalue of the training loss on a fixed batch of
``cfg.hessian_batch`` training examples (power iteration on Hessian-vector products,
``optim.top_hessian_eigenvalue``). The same seed gives every optimizer the same initialization and the
same minibatch order, so differences are paired.

An entry may set ``momentum`` and ``weight_decay``: the base step is then PyTorch's SGD (davda54/sam's
base optimizer), ``d = g + wd w``, ``buf = momentum buf + d``, ``w -= lr buf``, for SGD and, on the
sharpness-aware direction, for every SAM-family method alike. An ASAM entry may set ``mask``:
``"weights"`` (the ASAM authors' scope, biases not scaled) or ``"all"`` (davda54/sam's); a ``sam_on``
entry's ``mask`` names the perturbed leaves (``"weights"``: all but the biases, ``"kernels"``: no
biases and no LayerNorm parameters). ``schedule`` (optional, default ``"constant"``) decays every
entry's learning rate per epoch: ``"step"`` is davda54/sam's StepLR, ``"cosine"`` the ASAM authors'
CosineAnnealingLR. ``budget_epochs`` (optional) adds a budget curve: each value re-runs every entry
over that many epochs (its own schedule) on the first ``budget_seeds`` seeds.

Summary: per label ``<label>_test_acc_mean/_std`` (final), ``<label>_lambda_max_mean/_std`` (final),
and, against ``cfg.reference``, the paired gain ``<label>_acc_gain_mean/_std/_min`` (over seeds). For
each pair ``(worse, better)`` of ``cfg.comparisons``: the paired test-error difference
``<worse>_minus_<better>_err_mean`` (> 0: ``better`` has the lower error), its one-sided paired t-test
p-value ``..._t_p`` and sign-test p-value ``..._sign_p`` (ties dropped), and ``..._wins`` (seeds where
``better`` is strictly better). ``power_iterations = 0`` skips lambda_max (no lambda_max values, no figure).
Per label also ``_test_acc_per_seed`` and ``_first_bias_abs_per_seed`` (mean |b| of the first layer's
bias at the end); with a budget curve ``budget_epochs``, ``budget_seeds``, ``<label>_test_err_vs_epochs``
(and ``_std_``) and ``<worse>_minus_<better>_err_vs_epochs``.
Figures: test accuracy, first-layer |bias| and lambda_max over training (mean +- std over seeds);
``test_error_vs_epochs`` with a budget curve.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from jax.flatten_util import ravel_pytree
from scipy import stats

from jaxopt_lab import data, models, optim, train
from jaxopt_lab.lab import ConfigError, Each, OneOf, Range, Rule, plots
from jaxopt_lab.lab import sweep as sweep_lib
from jaxopt_lab.optim.sharpness import normalization_mask, weight_mask

SCHEDULES = ("constant", "step", "cosine")
MASK_NAMES = ("weights", "kernels", "all")  # an entry's ``mask``: see MASKS

CONFIG_SPEC = {
    "label_noise": Range(0.0, 1.0, open_high=True),
    "hidden": Range(1, integer=True),
    "epochs": Range(1, integer=True),
    "batch_size": Range(1, integer=True),
    "seeds": Range(1, integer=True),
    "eval_every": Range(1, integer=True),
    "hessian_batch": Range(1, integer=True),
    "power_iterations": Range(0, integer=True),
    "model": OneOf(["mlp", "cnn"]),
    "schedule": OneOf(SCHEDULES),
    "budget_epochs": Each(Range(1, integer=True), may_be_empty=True),
    "budget_seeds": Range(1, integer=True),
    "optimizers.*.name": OneOf(optim.names),
    "optimizers.*.learning_rate": Range(0.0, open_low=True),
    "optimizers.*.mask": OneOf(MASK_NAMES),
}

CONFIG_DEFAULTS = {
    "seed": (0, "first seed; seeds seed .. seed + seeds - 1 give initialisation and minibatch order, "
                "the same for every optimizer (paired)"),
    "data_seed": (0, "the digits train/test split and which labels are flipped"),
    "label_noise": (0.2, "fraction of training labels flipped to a random other class"),
    "model": ("mlp", "'mlp' (64-hidden-hidden-10) or 'cnn' (channels hidden // 8, hidden // 4)"),
    "hidden": (128, "MLP hidden width (the CNN's channels derive from it)"),
    "normalize": (False, "LayerNorm after each MLP hidden layer (gives SAM-ON parameters to perturb)"),
    "epochs": (60, "training epochs, a multiple of eval_every"),
    "batch_size": (64, "examples per minibatch (epoch permutations)"),
    "seeds": (4, "seeds per optimizer, vmapped in one compiled call"),
    "eval_every": (5, "epochs between evaluations of test accuracy and lambda_max"),
    "hessian_batch": (512, "fixed training examples on which lambda_max (top Hessian eigenvalue) is measured"),
    "power_iterations": (20, "power-iteration steps for lambda_max; 0: no lambda_max"),
    "reference": ("sgd", "the label the paired accuracy gains are measured against"),
    "only": ((), "if non-empty: run only these labels (and the reference)"),
    "comparisons": ((), "pairs (worse, better) of labels: paired error difference, t-test and sign test"),
    "schedule": ("constant", "learning-rate decay per epoch: constant, step (davda54/sam's StepLR) or cosine "
                             "(the ASAM authors' CosineAnnealingLR)"),
    "budget_epochs": ((), "extra whole runs over these many epochs for the test-error-vs-budget curve"),
    "budget_seeds": (1, "seeds (the first ones) of each budget_epochs run; <= seeds"),
    "optimizers": ({
        "sgd": {"name": "sgd", "learning_rate": 0.05},
        "sam": {"name": "sam", "learning_rate": 0.05, "rho": 0.05},
        "asam": {"name": "asam", "learning_rate": 0.05, "rho": 0.5},
        "gsam": {"name": "gsam", "learning_rate": 0.05, "rho": 0.05, "alpha": 0.1},
        "gam": {"name": "gam", "learning_rate": 0.05},
        "fisher_sam": {"name": "fisher_sam", "learning_rate": 0.05, "rho": 0.05},
    }, "label -> {name: a registered optimizer, its arguments (learning_rate, rho, ...), and optionally "
       "momentum / weight_decay (PyTorch-SGD base) and mask ('weights' or 'all', ASAM)}; replaced as a whole"),
}
# the PyTorch-SGD base of any entry, m-sharpness's micro-batches (the engine reads them too) and ASAM's eta:
# the arguments the shipped configs state beyond the defaults' entries, known without the import (each entry
# is built from its arguments by check_config)
CONFIG_KEYS = ("optimizers.*.momentum", "optimizers.*.weight_decay", "optimizers.*.num_chunks",
               "optimizers.*.eta")

# rules relating keys, checked before anything is imported (see jaxopt_lab.lab.rules); the digits training
# set's size does not depend on the label noise
CONFIG_RULES = (
    Rule("optimizers", "all('name' in entry and 'learning_rate' in entry for entry in optimizers.values())",
         "entries that each state name (a registered optimizer) and learning_rate"),
    Rule("reference", "reference in optimizers", "one of the optimizer labels {sorted(optimizers.keys())}"),
    Rule("only", "all(label in optimizers for label in only)",
         "optimizer labels, of {sorted(optimizers.keys())}"),
    Rule("comparisons", "all(len(pair) == 2 and all(label in optimizers for label in pair) "
                        "for pair in comparisons)",
         "pairs (worse, better) of optimizer labels, of {sorted(optimizers.keys())}"),
    Rule("budget_seeds", "not budget_epochs or budget_seeds <= seeds",
         "<= seeds = {seeds} (the budget runs use the first budget_seeds seeds)"),
    Rule("eval_every", "epochs % eval_every == 0", "a divisor of epochs = {epochs}"),
    Rule("batch_size", "batch_size <= digits_train_size()", "<= the training set size {digits_train_size()}"),
    Rule("batch_size", "all(batch_size % entry.get('num_chunks', 1) == 0 for entry in optimizers.values())",
         "divisible by every optimizer's num_chunks (m-sharpness splits each batch into that many chunks)"),
    Rule("hessian_batch", "hessian_batch <= digits_train_size()",
         "<= the training set size {digits_train_size()}"),
)


def kernel_mask(params) -> Any:
    """True for the kernels only: neither a bias nor a normalization layer's parameter."""
    return jax.tree.map(lambda weight, norm: weight and not norm, weight_mask(params),
                        normalization_mask(params))


# an entry's ``mask`` by name: which leaves ASAM scales adaptively (optim.sharpness.weight_mask: the
# ASAM authors' scope, biases excluded; "all": davda54/sam's, every leaf), or which leaves SAM-ON
# perturbs ("kernels": SAM without its perturbation of biases and LayerNorm parameters); the names are the
# literal MASK_NAMES, so that CONFIG_SPEC checks them before the import
MASKS = dict(zip(MASK_NAMES, (weight_mask, kernel_mask, None)))


def learning_rate_schedule(learning_rate: float, schedule: str, epochs: int, steps_per_epoch: int):
    """The per-epoch learning rate at step ``t`` (epoch ``e = t // steps_per_epoch`` of ``epochs``).

    ``"constant"``: ``lr``. ``"step"``: davda54/sam's ``StepLR`` (example/utility/step_lr.py),
    ``lr * 0.2^k`` with ``k`` the number of fractions ``3/10, 6/10, 8/10`` of the epochs that ``e`` has
    reached. ``"cosine"``: PyTorch's ``CosineAnnealingLR(T_max=epochs)`` stepped once per epoch, as in
    SamsungLabs/ASAM's example_cifar.py, ``lr (1 + cos(pi e / epochs)) / 2``.
    """
    if schedule == "constant":
        return learning_rate

    def rate(step):
        epoch = (step // steps_per_epoch).astype(jnp.float32)
        if schedule == "step":
            decays = sum((epoch >= fraction * epochs).astype(jnp.float32) for fraction in (0.3, 0.6, 0.8))
            return learning_rate * 0.2 ** decays
        return learning_rate * 0.5 * (1.0 + jnp.cos(jnp.pi * epoch / epochs))

    return rate


def first_layer_bias(params) -> jax.Array:
    """Mean |b| of the first layer's bias (``convs/0`` of the CNN, ``layers/0`` of the MLP): on the CNN it
    feeds a LayerNorm over channels, and when it dominates the conv output every pixel normalizes to
    the same features (the collapse seen under sharpness-aware perturbations)."""
    first = params["convs" if "convs" in params else "layers"][0]
    return jnp.mean(jnp.abs(first["bias"]))


def check_config(cfg: ml_collections.ConfigDict) -> None:
    """What needs the import (the rest is in ``CONFIG_SPEC`` and ``CONFIG_RULES``): the engine can feed
    every entry's optimizer, and each is built from its arguments."""
    for label, entry in cfg.optimizers.to_dict().items():
        train.check_feedable(entry["name"], key=f"optimizers.{label}.name")
        try:
            build_optimizer(entry["name"], {k: v for k, v in entry.items() if k != "name"})
        except (TypeError, ValueError) as e:
            raise ConfigError(f"config key 'optimizers.{label}' = {entry}: {e}") from None


def _data_and_model(cfg):
    digits = data.digits(label_noise=cfg.label_noise, seed=cfg.data_seed,
                         flatten=cfg.model == "mlp")
    if cfg.model == "mlp":
        make = lambda rngs: models.MLP(64, (cfg.hidden, cfg.hidden), digits.num_classes,  # noqa: E731
                                       rngs=rngs, normalize=cfg.normalize)
    else:
        make = lambda rngs: models.CNN(digits.num_classes, (cfg.hidden // 8, cfg.hidden // 4),  # noqa: E731
                                       rngs=rngs)
    apply_fn, init_fn = models.functional_init(make)
    return digits, apply_fn, init_fn


def initial_params(cfg, seeds) -> Any:
    """Initial parameters of every seed, stacked on a leading axis (built once, eagerly, and shared
    by all optimizers: compiling the model's initializer inside every sweep costs more than the
    training itself on CPU)."""
    _, _, init_fn = _data_and_model(cfg)
    inits = [init_fn(jax.random.PRNGKey(int(s))) for s in seeds]
    return jax.tree.map(lambda *xs: jnp.stack(xs), *inits)


def build_optimizer(name: str, kwargs: dict) -> optax.GradientTransformation:
    """The registry optimizer ``name``; with ``momentum`` / ``weight_decay`` in ``kwargs`` its base step
    is PyTorch's coupled-weight-decay heavy-ball SGD (davda54/sam's ``base_optimizer``); a ``mask``
    name is looked up in ``MASKS``."""
    kwargs = dict(kwargs)
    if "mask" in kwargs:
        kwargs["mask"] = MASKS[kwargs["mask"]]
    momentum, weight_decay = kwargs.pop("momentum", None), kwargs.pop("weight_decay", None)
    if momentum is None and weight_decay is None:
        return optim.get(name, **kwargs)
    torch_sgd = optax.chain(optax.add_decayed_weights(weight_decay or 0.0),
                            optax.trace(decay=momentum or 0.0))
    if name == "sgd":
        learning_rate = kwargs.pop("learning_rate")
        if kwargs:  # as the registry refuses an argument its optimizer does not take
            raise ValueError(f"sgd on the PyTorch-SGD base takes no argument {sorted(kwargs)}")
        return optax.chain(torch_sgd, optax.scale_by_learning_rate(learning_rate))
    return optim.get(name, base=torch_sgd, **kwargs)


def paired_statistics(worse: np.ndarray, better: np.ndarray, prefix: str) -> dict:
    """Paired test-error difference (worse - better) over seeds: mean, one-sided paired t-test and
    sign-test p-values for 'better has the lower error', and the number of strict wins."""
    diff = np.asarray(better, np.float64) - np.asarray(worse, np.float64)  # accuracy gain = error drop
    wins, losses = int(np.sum(diff > 0)), int(np.sum(diff < 0))
    t_p = (float(stats.ttest_rel(better, worse, alternative="greater").pvalue) if np.std(diff) > 0
           else (0.0 if diff.mean() > 0 else 1.0))
    sign_p = (float(stats.binomtest(wins, wins + losses, 0.5, alternative="greater").pvalue)
              if wins + losses else 1.0)
    return {f"{prefix}_err_mean": float(diff.mean()), f"{prefix}_err_std": float(diff.std(ddof=1))
            if len(diff) > 1 else 0.0, f"{prefix}_t_p": t_p, f"{prefix}_sign_p": sign_p,
            f"{prefix}_wins": wins, f"{prefix}_losses": losses}


def make_trial(cfg, entry: dict, stacked_params):
    """``trial(key, {"seed_index": i}) -> {"test_acc", "train_loss", "first_bias_abs"}`` (one value per
    evaluation) for one optimizer entry, from the ``i``-th initialization of ``stacked_params``: a pure
    function that ``lab.sweep`` vmaps over the seed index. With ``cfg.power_iterations`` it also returns
    the flattened parameters and the power-iteration key of every evaluation (``"params"``,
    ``"power_key"``) for :func:`lambda_max_fn`."""
    digits, apply_fn, _ = _data_and_model(cfg)
    x_train, y_train = jnp.asarray(digits.x_train), jnp.asarray(digits.y_train)
    x_test, y_test = jnp.asarray(digits.x_test), jnp.asarray(digits.y_test)
    n = len(x_train)
    steps_per_epoch = n // cfg.batch_size
    kwargs = {k: v for k, v in entry.items() if k != "name"}
    kwargs["learning_rate"] = learning_rate_schedule(kwargs["learning_rate"], cfg.schedule,
                                                     cfg.epochs, steps_per_epoch)
    tx = build_optimizer(entry["name"], kwargs)

    def loss_fn(params, batch):
        inputs, labels = batch
        return models.cross_entropy(apply_fn(params, inputs), labels)

    engine = train.Engine(loss_fn, tx,
                          train.batches.epochs(n, cfg.batch_size), (x_train, y_train),
                          num_chunks=kwargs.get("num_chunks", 1))
    block_steps = cfg.eval_every * steps_per_epoch

    def trial(key, hparams):
        index = hparams["seed_index"].astype(jnp.int32)
        batch_key, power_key = jax.random.split(jax.random.fold_in(key, index))
        state = engine.pure_init(jax.tree.map(lambda x: x[index], stacked_params))

        def evaluation_block(state, block):
            state, metrics = engine.pure_run(state, batch_key, block * block_steps, block_steps)
            record = {"test_acc": models.accuracy(apply_fn(state.params, x_test), y_test),
                      "train_loss": jnp.mean(metrics["loss"]),
                      "first_bias_abs": first_layer_bias(state.params)}
            if cfg.power_iterations:
                record.update(params=ravel_pytree(state.params)[0],
                              power_key=jax.random.fold_in(power_key, block))
            return state, record

        blocks = jnp.arange(cfg.epochs // cfg.eval_every)
        _, trace = jax.lax.scan(evaluation_block, state, blocks)
        return trace

    return trial


def lambda_max_fn(cfg, stacked_params):
    """``(params (seeds, evaluations, P), keys (seeds, evaluations, ...)) -> lambda_max (seeds,
    evaluations)``: the top Hessian eigenvalue of the training loss on the first ``cfg.hessian_batch``
    training examples (power iteration on Hessian-vector products), jitted once and shared by every
    optimizer -- compiled inside each optimizer's sweep it was most of a small run's time. The
    evaluations run one after another (``lax.map``): a vmapped power iteration takes twice as long to
    compile, and its run time is negligible either way."""
    digits, apply_fn, _ = _data_and_model(cfg)
    inputs = jnp.asarray(digits.x_train[: cfg.hessian_batch])
    labels = jnp.asarray(digits.y_train[: cfg.hessian_batch])
    _, unravel = ravel_pytree(jax.tree.map(lambda x: x[0], stacked_params))

    def top_eigenvalue(flat_params, key):
        return optim.top_hessian_eigenvalue(
            lambda p: models.cross_entropy(apply_fn(p, inputs), labels), unravel(flat_params), key,
            max_iterations=cfg.power_iterations, min_iterations=cfg.power_iterations,
            inner_iterations=cfg.power_iterations).eigenvalue

    @jax.jit
    def lambda_max(params, keys):
        flat = lambda x: x.reshape(-1, *x.shape[2:])  # noqa: E731  (seeds, evaluations) -> one axis
        eigenvalues = jax.lax.map(lambda args: top_eigenvalue(*args), (flat(params), flat(keys)))
        return eigenvalues.reshape(params.shape[:2])

    return lambda_max


def train_all(cfg, entries: dict, stacked_params, ctx=None) -> dict:
    """Per label: ``{metric: array (seeds, evaluations)}``, each optimizer one compiled call whose grid
    is the seed index (seed ``s`` <-> ``init_fn(PRNGKey(s))``, minibatch order from
    ``fold_in(PRNGKey(cfg.seed), s)``), identical for every optimizer."""
    num_seeds = len(jax.tree.leaves(stacked_params)[0])
    lambda_max = lambda_max_fn(cfg, stacked_params) if cfg.power_iterations else None
    results = {}
    for i, (label, entry) in enumerate(entries.items()):
        out = sweep_lib.sweep(make_trial(cfg, entry, stacked_params), [cfg.seed],
                              grid={"seed_index": np.arange(num_seeds)}).outputs
        out = {k: np.asarray(v)[:, 0] for k, v in out.items()}
        if lambda_max is not None:
            out["lambda_max"] = np.asarray(lambda_max(out.pop("params"), out.pop("power_key")))
        results[label] = out
        if ctx is not None:
            ctx.log(i + 1, **{f"{label}_{k}": float(out[k][:, -1].mean())
                              for k in ("test_acc", "lambda_max") if k in out})
    return results


def budget_curve(cfg, entries: dict, stacked_params, results: dict):
    """Final test error against the training budget: every ``cfg.budget_epochs`` value is a whole run
    (its own learning-rate schedule over that many epochs) on the first ``cfg.budget_seeds`` seeds;
    the main run (``cfg.epochs``, all seeds) is one more point. Points are in increasing epochs.
    Returns the summary entries and the figure."""
    budgets = sorted(set(cfg.budget_epochs) - {cfg.epochs})
    num_seeds = cfg.budget_seeds
    errors = {label: [] for label in entries}  # per budget: (seeds,) final test errors
    for epochs in budgets:
        variant = cfg.copy_and_resolve_references()
        variant.epochs, variant.eval_every = epochs, epochs
        subset = jax.tree.map(lambda x: x[:num_seeds], stacked_params)
        for label, out in train_all(variant, entries, subset).items():
            errors[label].append(1.0 - out["test_acc"][:, -1])
    for label, out in results.items():
        errors[label].append(1.0 - out["test_acc"][:, -1])
    order = np.argsort([*budgets, cfg.epochs], kind="stable")
    epochs = [[*budgets, cfg.epochs][j] for j in order]
    seeds = [([num_seeds] * len(budgets) + [cfg.seeds])[j] for j in order]
    errors = {label: [errs[j] for j in order] for label, errs in errors.items()}
    summary = {"budget_epochs": epochs, "budget_seeds": seeds}
    for label, errs in errors.items():
        summary[f"{label}_test_err_vs_epochs"] = [float(e.mean()) for e in errs]
        summary[f"{label}_test_err_std_vs_epochs"] = [float(e.std()) for e in errs]
    for worse, better in cfg.comparisons:
        summary[f"{worse}_minus_{better}_err_vs_epochs"] = [
            float((errors[worse][j] - errors[better][j]).mean())
            for j in range(len(epochs))]
    series = {label: (np.asarray(epochs), np.asarray(summary[f"{label}_test_err_vs_epochs"]))
              for label in errors}
    bands = {label: np.asarray(summary[f"{label}_test_err_std_vs_epochs"]) for label in errors}
    figure = plots.lines(series, xlabel="epochs (whole run, schedule over it)", ylabel="final test error",
                         bands=bands, title=f"{cfg.schedule} learning rate; seeds: "
                                            + ", ".join(f"{n} at {e}" for e, n in zip(epochs, seeds)))
    return summary, figure


def run(cfg, ctx):
    entries = {label: entry for label, entry in cfg.optimizers.to_dict().items()
               if not cfg.only or label in cfg.only or label == cfg.reference}
    ctx.progress(len(entries))
    seeds = cfg.seed + np.arange(cfg.seeds)
    stacked = initial_params(cfg, seeds)
    results = train_all(cfg, entries, stacked, ctx)

    epochs = cfg.eval_every * (1 + np.arange(cfg.epochs // cfg.eval_every))
    reference = np.asarray(results[cfg.reference]["test_acc"])[:, -1]
    summary: dict[str, Any] = {"seeds": len(seeds), "label_noise": cfg.label_noise,
                               "reference": cfg.reference, "schedule": cfg.schedule}
    for label, out in results.items():
        acc = np.asarray(out["test_acc"])[:, -1]
        gain = acc - reference
        summary.update({f"{label}_test_acc_mean": acc.mean(), f"{label}_test_acc_std": acc.std(),
                        f"{label}_test_acc_per_seed": acc.tolist(),
                        f"{label}_train_loss_final": float(np.asarray(out["train_loss"])[:, -1].mean()),
                        f"{label}_first_bias_abs_per_seed": np.asarray(out["first_bias_abs"])[:, -1].tolist(),
                        f"{label}_acc_gain_mean": gain.mean(), f"{label}_acc_gain_std": gain.std(),
                        f"{label}_acc_gain_min": gain.min(),
                        f"{label}_test_acc_curve": np.asarray(out["test_acc"]).mean(0).tolist()})
        if "lambda_max" in out:
            sharpness = np.asarray(out["lambda_max"])[:, -1]
            summary.update({f"{label}_lambda_max_mean": sharpness.mean(),
                            f"{label}_lambda_max_std": sharpness.std(),
                            f"{label}_lambda_max_curve": np.asarray(out["lambda_max"]).mean(0).tolist()})
    finals = {label: np.asarray(out["test_acc"])[:, -1] for label, out in results.items()}
    for worse, better in cfg.comparisons:
        summary.update(paired_statistics(finals[worse], finals[better], f"{worse}_minus_{better}"))
    if cfg.budget_epochs:
        budget_summary, budget_figure = budget_curve(cfg, entries, stacked, results)
        summary.update(budget_summary)
        ctx.figure("test_error_vs_epochs", budget_figure)
    ctx.summary(**summary)

    figures = [("test_acc", "test accuracy", False), ("first_bias_abs", "mean |bias| of the first layer", True)]
    if cfg.power_iterations:
        figures.append(("lambda_max", "top Hessian eigenvalue", True))
    for key, ylabel, logy in figures:
        series = {label: (epochs, np.asarray(out[key]).mean(0)) for label, out in results.items()}
        bands = {label: np.asarray(out[key]).std(0) for label, out in results.items()}
        ctx.figure(key, plots.lines(series, xlabel="epoch", ylabel=ylabel, logy=logy, bands=bands,
                                    title=f"digits, {cfg.label_noise:.0%} label noise, "
                                          f"{len(seeds)} seeds"))
