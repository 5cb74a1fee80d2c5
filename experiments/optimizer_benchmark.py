"""An optimizer benchmark in the spirit of AlgoPerf: time-to-target on fixed workloads, performance profiles.

"Benchmarking Neural Network Training Algorithms" (Dahl et al., arXiv:2306.07179) scores a training
algorithm by how fast it reaches a fixed validation target on each workload, and aggregates workloads
with performance profiles ("Benchmarking Optimization Software with Performance Profiles", Dolan and
Moré, arXiv:cs/0102001). This experiment does the same at CPU size:

* **Workloads** (``cfg.workloads``, each defined once in :data:`WORKLOAD_BUILDERS`): ``digits_mlp`` and
  ``digits_cnn`` (scikit-learn's digits, epochs of minibatches, scored by the held-out cross-entropy) and
  ``llama`` (a small LLaMA-style decoder on the standard-library byte corpus, scored by the held-out
  next-byte loss on a fixed set of windows). A workload is a model, a sampler, a loss, a validation
  metric (lower is better), a step budget, an evaluation interval and a target.
* **Tuning**: every optimizer runs the same fixed learning-rate grid (``lr.num`` log-spaced values from
  ``lr.min`` to ``lr.max``) x ``seeds`` as one :func:`jaxopt_lab.lab.sweep` call per (workload,
  optimizer): vmapped trials, sharded over the devices. A trial trains on the engine
  (:mod:`jaxopt_lab.train`, which feeds ``value``, ``grad_fn`` and ``chunk_grad_fn``) in one ``lax.scan``
  over evaluation intervals and returns the validation curve.
* **Targets** are set before any optimizer is compared: a workload's ``target`` from the config, or, when
  it is 0, by the *reference* optimizer (``cfg.reference``, Adam) alone: the validation metric that
  its best learning rate of the grid reaches (median over seeds) at ``target_fraction`` (75%) of the
  budget, as AlgoPerf sets targets from tuned reference runs. The seeds are fixed, so the target is a
  deterministic function of the config, and no other optimizer's result enters it.
* **Measurements** per (workload, optimizer): steps-to-target of each trial (the first evaluation step
  whose metric is at or below the target, infinity if none: diverged runs never reach it); the best
  learning rate is the one with the smallest median steps-to-target over seeds (ties: the lower median
  final metric). Time-to-target = steps-to-target x the measured time of one trial-step: the sweep's
  run time (compile time measured apart) over trials x steps, all trials being the same program.
* **Outputs**: Dolan–Moré performance profiles of time-to-target (and of steps-to-target) per workload
  (problems: the seeds at each optimizer's best learning rate) and over workloads (problems: the
  workloads, median over seeds), ``figures/performance_profiles.png``; learning curves at the best
  learning rate per workload (``figures/curves_<workload>.png``); a ranked table (``table.md``,
  ``table.json``) ordered by the AlgoPerf benchmark score (the normalised area under the overall
  profile up to ``tau_max``); ``summary.json`` with the targets and each workload's top 5.

An optimizer that cannot be built or run on a workload is listed with the error as its reason (never
dropped silently); it solves nothing there.
"""

from __future__ import annotations

import math
import time
import traceback
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxopt_lab import data, models, optim, train
from jaxopt_lab.lab import Each, OneOf, Range, Rule, plots, sweep
from jaxopt_lab.lab import metrics as metrics_lib

WORKLOADS = ("digits_mlp", "digits_cnn", "llama")

CONFIG_SPEC = {
    "optimizers": OneOf(optim.names),
    "exclude": OneOf(optim.names),
    "workloads": Each(OneOf(WORKLOADS)),
    "reference": OneOf(optim.names),
    "target_fraction": Range(0.0, 1.0, open_low=True),
    "tau_max": Range(1.0, open_low=True),
    "rank_by": OneOf(("time", "steps")),
    "seeds": Range(1, integer=True),
    "lr.min": Range(0.0, open_low=True),
    "lr.max": Range(0.0, open_low=True),
    "lr.num": Range(1, integer=True),
    "digits_mlp.hidden": Each(Range(1, integer=True)),
    "digits_cnn.channels": Each(Range(1, integer=True)),
    "llama.dim": Range(2, integer=True),
    "llama.n_layers": Range(1, integer=True),
    "llama.n_heads": Range(1, integer=True),
    "llama.seq_len": Range(2, integer=True),
    "llama.corpus_bytes": Range(10_000, integer=True),
    **{f"{w}.{key}": Range(1, integer=True) for w in WORKLOADS
       for key in ("steps", "eval_every", "batch_size")},
    **{f"{w}.target": Range(0.0) for w in WORKLOADS},
}

CONFIG_DEFAULTS = {
    "seed": (0, "first seed of every sweep (the seeds are fixed, so each target is a function of the config)"),
    "optimizers": (("sgd", "sgd_nesterov", "adam", "adamw", "lion", "muon", "schedule_free_adamw", "adopt",
                    "mars", "sam", "galore", "sophia", "prodigy"),
                   "registered names benchmarked: one or two per family"),
    "exclude": ((), "registered names to leave out"),
    "workloads": (("digits_mlp", "digits_cnn", "llama"), "the workloads, any of 'digits_mlp', 'digits_cnn', "
                                                         "'llama'"),
    "reference": ("adam", "the optimizer that alone sets each target whose value is 0"),
    "target_fraction": (0.75, "the reference's target is its metric at this fraction of the step budget"),
    "tau_max": (4.0, "upper limit of the performance-profile integral (AlgoPerf's)"),
    "rank_by": ("time", "rank by time-to-target ('time', AlgoPerf's) or steps-to-target ('steps')"),
    "seeds": (3, "seeds per learning rate, vmapped with the learning-rate grid"),
    "lr.min": (1e-4, "smallest learning rate of the log-spaced grid, <= lr.max"),
    "lr.max": (1.0, "largest learning rate of the grid"),
    "lr.num": (6, "learning rates in the grid"),
    "digits_mlp.hidden": ((64,), "digits MLP hidden widths"),
    "digits_mlp.batch_size": (64, "digits MLP minibatch size"),
    "digits_mlp.steps": (400, "digits MLP step budget, a multiple of eval_every"),
    "digits_mlp.eval_every": (20, "steps between held-out evaluations"),
    "digits_mlp.target": (0.0, "held-out cross-entropy target; 0: set by the reference"),
    "digits_cnn.channels": ((8, 16), "digits CNN channels per layer"),
    "digits_cnn.batch_size": (64, "digits CNN minibatch size"),
    "digits_cnn.steps": (300, "digits CNN step budget, a multiple of eval_every"),
    "digits_cnn.eval_every": (20, "steps between held-out evaluations"),
    "digits_cnn.target": (0.0, "held-out cross-entropy target; 0: set by the reference"),
    "llama.dim": (32, "LM model width"),
    "llama.n_layers": (1, "LM decoder layers"),
    "llama.n_heads": (2, "LM attention heads"),
    "llama.seq_len": (32, "LM context length in bytes"),
    "llama.batch_size": (8, "LM windows per step"),
    "llama.corpus_bytes": (300_000, "bytes of the standard-library corpus used"),
    "llama.steps": (300, "LM step budget, a multiple of eval_every"),
    "llama.eval_every": (20, "steps between held-out evaluations"),
    "llama.target": (0.0, "held-out next-byte loss target; 0: set by the reference"),
}

# rules relating keys, checked before anything is imported (see jaxopt_lab.lab.rules); a workload's rules
# hold only when it is benchmarked
CONFIG_RULES = (
    Rule("lr.min", "lr.min <= lr.max", "<= lr.max = {lr.max!r}"),
    *(Rule(f"{w}.eval_every", f"{w!r} not in workloads or {w}.steps % {w}.eval_every == 0",
           f"a divisor of {w}.steps = {{{w}.steps}}") for w in WORKLOADS),
    *(Rule(f"{w}.batch_size", f"{w!r} not in workloads or {w}.batch_size <= digits_train_size()",
           "<= the training set size of digits ({digits_train_size()})") for w in WORKLOADS
      if w.startswith("digits")),
    Rule("llama.n_heads", "'llama' not in workloads or llama_config('tiny', llama.seq_len, dict(dim=llama.dim, "
         "n_layers=llama.n_layers, n_heads=llama.n_heads, hidden_dim=2 * llama.dim))",
         "a divisor of llama.dim = {llama.dim} into heads of even size"),
    Rule("exclude", "any(name not in exclude for name in optimizers or optimizer_names())",
         "missing at least one of the optimizers benchmarked, {tuple(optimizers) or 'every registered one'}"),
)


# ------------------------------------------------------------------------------------------------
# Workloads

class Workload(NamedTuple):
    """A training problem: ``init(key) -> params``, ``loss(params, batch)`` on batches ``sampler`` draws
    from ``data``, ``metric(params)`` the validation metric (lower is better, named ``metric_name``),
    ``steps`` in the budget, evaluated every ``eval_every`` steps, and ``target`` (0: set by the
    reference optimizer)."""

    init: Callable
    loss: Callable
    sampler: train.Sampler
    data: object
    metric: Callable
    metric_name: str
    steps: int
    eval_every: int
    target: float

    @property
    def eval_steps(self) -> np.ndarray:
        return np.arange(self.eval_every, self.steps + 1, self.eval_every)


def _classifier(section, model_fn, flatten: bool) -> Workload:
    ds = data.digits(seed=0, flatten=flatten)
    x_test, y_test = jnp.asarray(ds.x_test), jnp.asarray(ds.y_test)
    apply_fn, init_fn = models.functional_init(lambda rngs: model_fn(ds, rngs))

    def loss(params, batch):
        return models.cross_entropy(apply_fn(params, batch[0]), batch[1])

    def metric(params):
        return models.cross_entropy(apply_fn(params, x_test), y_test)

    return Workload(init_fn, loss, train.batches.epochs(ds.x_train.shape[0], section.batch_size),
                    (jnp.asarray(ds.x_train), jnp.asarray(ds.y_train)), metric, "held-out cross-entropy",
                    section.steps, section.eval_every, float(section.target))


def digits_mlp(cfg) -> Workload:
    return _classifier(cfg.digits_mlp, lambda ds, rngs: models.MLP(
        ds.x_train.shape[1], tuple(cfg.digits_mlp.hidden), ds.num_classes, rngs=rngs), flatten=True)


def digits_cnn(cfg) -> Workload:
    return _classifier(cfg.digits_cnn, lambda ds, rngs: models.CNN(
        ds.num_classes, tuple(cfg.digits_cnn.channels), rngs=rngs), flatten=False)


def llama(cfg) -> Workload:
    c = cfg.llama
    train_tokens, test_tokens = data.lm_split(data.byte_corpus(max_bytes=c.corpus_bytes, seed=0), c.seq_len)
    train_tokens, test_tokens = jnp.asarray(train_tokens, jnp.int32), jnp.asarray(test_tokens, jnp.int32)
    config = models.LlamaConfig.tiny(dim=c.dim, n_layers=c.n_layers, n_heads=c.n_heads,
                                     hidden_dim=2 * c.dim, max_seq_len=c.seq_len)
    apply_fn, init_fn = models.functional_init(lambda rngs: models.Llama(config, rngs=rngs))
    # a fixed held-out set of windows, the same for every trial
    held_out = data.sample_lm_batch(jax.random.PRNGKey(12345), test_tokens, 4 * c.batch_size, c.seq_len)

    def loss(params, batch):
        return models.cross_entropy(apply_fn(params, batch[0]), batch[1])

    def metric(params):
        return models.cross_entropy(apply_fn(params, held_out[0]), held_out[1])

    return Workload(init_fn, loss, train.batches.token_windows(train_tokens.shape[0], c.batch_size, c.seq_len),
                    train_tokens, metric, "held-out next-byte loss (nats)", c.steps, c.eval_every,
                    float(c.target))


WORKLOAD_BUILDERS = {"digits_mlp": digits_mlp, "digits_cnn": digits_cnn, "llama": llama}


def make_trial(workload: Workload, name: str) -> Callable:
    """``trial(key, {"lr": lr}) -> {"curve": metric after each eval interval}``: train ``workload`` with
    optimizer ``name`` built from the (traced) learning rate, one ``lax.scan`` over the intervals."""

    def trial(key, hparams):
        engine = train.Engine(workload.loss, optim.get(name, learning_rate=hparams["lr"]), workload.sampler,
                              workload.data)
        init_key, data_key = jax.random.split(key)

        def interval(state, start):
            state, _ = engine.pure_run(state, data_key, start, workload.eval_every)
            return state, workload.metric(state.params)

        starts = jnp.arange(0, workload.steps, workload.eval_every, dtype=jnp.int32)
        _, curve = jax.lax.scan(interval, engine.pure_init(workload.init(init_key)), starts)
        return {"curve": curve}

    return trial


# ------------------------------------------------------------------------------------------------
# Measurements (host side, numpy)

def steps_to_target(curves: np.ndarray, eval_steps: np.ndarray, target: float) -> np.ndarray:
    """The first evaluation step at which each curve is at or below ``target`` (``inf`` if never).

    ``curves``: ``(..., n_evals)`` metric values measured at ``eval_steps``; NaN (a diverged run) never
    counts as reaching the target.
    """
    curves = np.asarray(curves, np.float64)
    reached = curves <= target  # False for NaN
    first = np.argmax(reached, axis=-1)
    return np.where(reached.any(axis=-1), np.asarray(eval_steps, np.float64)[first], np.inf)


def reference_target(curves: np.ndarray, eval_steps: np.ndarray, fraction: float) -> float:
    """The target a tuned reference sets: the best (over learning rates) median-over-seeds metric at the
    last evaluation at or before ``fraction`` of the budget. ``curves``: ``(n_lr, n_seeds, n_evals)``."""
    index = max(int(np.searchsorted(eval_steps, fraction * eval_steps[-1], side="right")) - 1, 0)
    medians = np.median(np.asarray(curves, np.float64)[:, :, index], axis=1)
    if not np.isfinite(medians).any():
        raise ValueError("the reference optimizer diverged at every learning rate: no target can be set")
    return float(np.nanmin(np.where(np.isfinite(medians), medians, np.nan)))


def best_learning_rate(steps: np.ndarray, final: np.ndarray) -> int:
    """Index of the learning rate with the fewest median (over seeds) steps-to-target; ties (also
    "never") go to the lower median final metric (a non-finite metric is the worst).
    ``steps``, ``final``: ``(n_lr, n_seeds)``."""
    median_steps = np.median(steps, axis=1)
    final = np.where(np.isfinite(final), final, np.inf)
    median_final = np.median(final, axis=1)
    return int(np.lexsort((median_final, median_steps))[0])


def performance_ratios(costs: np.ndarray) -> np.ndarray:
    """Dolan–Moré ratios ``r[p, s] = t[p, s] / min_s t[p, s]`` of costs ``(n_problems, n_solvers)``.

    ``inf`` marks a failure; a problem nobody solves gives every solver ``inf``.
    """
    costs = np.asarray(costs, np.float64)
    best = np.min(costs, axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratios = costs / best
    return np.where(np.isfinite(best) & np.isfinite(costs), ratios, np.inf)


def performance_profile(ratios: np.ndarray, taus: np.ndarray) -> np.ndarray:
    """``rho[i, s]``: the fraction of problems that solver ``s`` solves within ``taus[i]`` x the best."""
    return np.mean(np.asarray(ratios)[None, :, :] <= np.asarray(taus)[:, None, None], axis=1)


def profile_score(ratios: np.ndarray, tau_max: float) -> np.ndarray:
    """AlgoPerf's benchmark score ``B_s = 1/(tau_max - 1) * integral_1^tau_max rho_s(tau) dtau``
    (arXiv:2306.07179, Section 4.5), exactly: a problem solved at ratio ``r`` adds
    ``(tau_max - r)^+ / (tau_max - 1)``, averaged over problems."""
    ratios = np.asarray(ratios, np.float64)
    area = np.where(np.isfinite(ratios), np.maximum(tau_max - ratios, 0.0), 0.0)
    return area.mean(axis=0) / (tau_max - 1.0)


def rank(names: list[str], scores: np.ndarray, n_solved: np.ndarray) -> list[str]:
    """Names by score (high first), then by problems solved (more first), then alphabetically."""
    order = sorted(range(len(names)), key=lambda i: (-scores[i], -n_solved[i], names[i]))
    return [names[i] for i in order]


# ------------------------------------------------------------------------------------------------
# The run

def selected(cfg) -> list[str]:
    names = list(cfg.optimizers) or optim.names()
    return [n for n in names if n not in set(cfg.exclude)]


def run_sweep(workload: Workload, name: str, lrs: np.ndarray, seeds: int) -> dict:
    """One (workload, optimizer) sweep over ``lrs`` x seeds: curves ``(n_lr, n_seeds, n_evals)`` and the
    compile and run times (apart)."""
    prepared = sweep.prepare(make_trial(workload, name), seeds, {"lr": lrs})
    start = time.perf_counter()
    compiled = prepared.fn.lower(*prepared.args).compile()
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    outputs = jax.block_until_ready(compiled(*prepared.args))
    run_s = time.perf_counter() - start
    curves = np.asarray(prepared.finish(outputs).outputs["curve"], np.float64)
    return {"curves": curves, "compile_s": compile_s, "run_s": run_s,
            "step_s": run_s / (prepared.n_trials * workload.steps)}


def measure(workload: Workload, result: dict, lrs: np.ndarray) -> dict:
    """Steps- and time-to-target of one (workload, optimizer) at its best learning rate."""
    steps = steps_to_target(result["curves"], workload.eval_steps, workload.target)  # (n_lr, n_seeds)
    final = result["curves"][..., -1]
    i = best_learning_rate(steps, final)
    median_steps = float(np.median(steps[i]))
    return {"best_lr": float(lrs[i]), "steps_per_seed": steps[i], "steps": median_steps,
            "time_per_seed": steps[i] * result["step_s"], "time": median_steps * result["step_s"],
            "final_metric": float(np.median(final[i])), "step_s": result["step_s"],
            "compile_s": result["compile_s"], "run_s": result["run_s"],
            "n_diverged_lrs": int(np.sum(~np.all(np.isfinite(final), axis=1))),
            "median_curve": np.median(result["curves"][i], axis=0)}


def run(cfg, ctx):
    names = selected(cfg)
    lrs = np.geomspace(cfg.lr.min, cfg.lr.max, cfg.lr.num)
    calibrate = [w for w in cfg.workloads if cfg[w].target == 0]
    run_reference = cfg.reference not in names and calibrate
    ctx.progress(len(cfg.workloads) * len(names) + (len(calibrate) if run_reference else 0))
    step = 0
    targets, results, errors = {}, {w: {} for w in cfg.workloads}, {w: {} for w in cfg.workloads}
    for w in cfg.workloads:
        workload = WORKLOAD_BUILDERS[w](cfg)
        order = [cfg.reference] * (workload.target == 0) + [n for n in names if n != cfg.reference
                                                            or workload.target != 0]
        for name in order:
            step += 1
            try:
                raw = run_sweep(workload, name, lrs, cfg.seeds)
            except Exception as e:  # noqa: BLE001  reported in the table and the summary
                if name == cfg.reference and workload.target == 0:
                    raise
                errors[w][name] = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
                print(f"[optimizer_benchmark] {w}/{name} failed:\n{traceback.format_exc()}")
                continue
            if workload.target == 0:  # the reference's own sweep sets the target, before anyone else runs
                workload = workload._replace(target=reference_target(raw["curves"], workload.eval_steps,
                                                                     cfg.target_fraction))
            if name in names:
                results[w][name] = measure(workload, raw, lrs)
                m = results[w][name]
                # ctx.log stops a run at a non-finite value: "never reached" and divergence stay in the table
                ctx.log(step, **{f"{w}_{name}_{k}": m[k] for k in ("steps", "final_metric")
                                 if math.isfinite(m[k])})
        targets[w] = {"target": workload.target, "metric": workload.metric_name, "steps": workload.steps,
                      "eval_every": workload.eval_every,
                      "set_by": f"{cfg.reference} at {cfg.target_fraction:g} of the budget"
                      if cfg[w].target == 0 else "config"}
        if results[w]:
            ctx.figure(f"curves_{w}", curves_figure(w, workload, results[w]))

    report = aggregate(cfg, names, results, errors)
    ctx.figure("performance_profiles", profiles_figure(cfg, names, report))
    table = report["table"]
    metrics_lib.atomic_write_text(ctx.run_dir / "table.md", table_markdown(cfg, table, targets))
    metrics_lib.atomic_write_json(ctx.run_dir / "table.json", table)
    ctx.summary(learning_rates=lrs.tolist(), optimizers=names, workloads=list(cfg.workloads),
                targets=targets, ranking=[r["optimizer"] for r in table], rank_by=cfg.rank_by,
                top5={w: report["top5"][w] for w in cfg.workloads}, table=table,
                errors={w: e for w, e in errors.items() if e},
                n_errors=sum(len(e) for e in errors.values()))


def aggregate(cfg, names: list[str], results: dict, errors: dict) -> dict:
    """Profiles, scores, the ranked table and the per-workload top 5."""
    key = cfg.rank_by  # "time" or "steps"
    workloads = list(cfg.workloads)
    inf = np.full(cfg.seeds, np.inf)

    def cost(w, name, field):
        m = results[w].get(name)
        return m[field] if m is not None else (inf if field.endswith("per_seed") else np.inf)

    per_workload, top5 = {}, {}
    for w in workloads:
        ratios = {k: performance_ratios(np.stack([cost(w, n, f"{k}_per_seed") for n in names], axis=1))
                  for k in ("time", "steps")}  # problems: the seeds
        per_workload[w] = ratios
        medians = np.array([cost(w, n, key) for n in names])
        solved = [n for n, c in sorted(zip(names, medians), key=lambda t: (t[1], t[0])) if math.isfinite(c)]
        top5[w] = [{"optimizer": n, f"{key}_to_target": float(cost(w, n, key)),
                    "steps_to_target": float(cost(w, n, "steps")), "best_lr": results[w][n]["best_lr"]}
                   for n in solved[:5]]
    overall = {k: performance_ratios(np.array([[cost(w, n, k) for n in names] for w in workloads]))
               for k in ("time", "steps")}  # problems: the workloads (median over seeds)
    scores = {k: profile_score(overall[k], cfg.tau_max) for k in ("time", "steps")}
    n_solved = np.sum(np.isfinite(overall[key]), axis=0)
    table = []
    for position, name in enumerate(rank(names, scores[key], n_solved), 1):
        j = names.index(name)
        row = {"rank": position, "optimizer": name, "family": optim.info(name).family,
               "score_time": float(scores["time"][j]), "score_steps": float(scores["steps"][j]),
               "n_solved": int(n_solved[j]), "workloads": {}}
        for w in workloads:
            m = results[w].get(name)
            if m is None:
                row["workloads"][w] = {"error": errors[w].get(name, "not run")}
                continue
            row["workloads"][w] = {k: m[k] for k in ("best_lr", "steps", "time", "final_metric", "step_s",
                                                     "compile_s", "n_diverged_lrs")}
        table.append(row)
    return {"per_workload": per_workload, "overall": overall, "scores": scores, "table": table,
            "top5": top5}


def table_markdown(cfg, table: list[dict], targets: dict) -> str:
    workloads = list(cfg.workloads)
    lines = [f"Ranked by the AlgoPerf score of {cfg.rank_by}-to-target (area under the performance profile "
             f"over workloads up to tau = {cfg.tau_max:g}). Targets: "
             + "; ".join(f"{w}: {t['metric']} <= {t['target']:.4g} ({t['set_by']})" for w, t in targets.items())
             + ".", "",
             "| rank | optimizer | family | score (time) | score (steps) | solved | "
             + " | ".join(f"{w}: steps / s to target (best lr)" for w in workloads) + " |",
             "|---|---|---|---|---|---|" + "---|" * len(workloads)]
    for r in table:
        cells = []
        for w in workloads:
            m = r["workloads"][w]
            if "error" in m:
                cells.append(f"skipped: {m['error']}")
            elif math.isfinite(m["steps"]):
                cells.append(f"{m['steps']:.0f} / {m['time']:.3g} s ({m['best_lr']:.2g})")
            else:
                cells.append(f"not reached, final {m['final_metric']:.3g} ({m['best_lr']:.2g})")
        lines.append(f"| {r['rank']} | {r['optimizer']} | {r['family']} | {r['score_time']:.3f} | "
                     f"{r['score_steps']:.3f} | {r['n_solved']}/{len(workloads)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------------
# Figures

_LINE_STYLES = ("-", "--", ":")  # beyond the 10 colours of the default cycle


def _profile_axes(ax, ratios: np.ndarray, names: list[str], tau_max: float, title: str) -> None:
    from matplotlib import ticker

    finite = ratios[np.isfinite(ratios)]
    top = max(tau_max, float(finite.max()) * 1.05 if finite.size else tau_max)
    taus = np.geomspace(1.0, top, 200)
    profile = performance_profile(ratios, taus)
    for j, name in enumerate(names):
        ax.step(taus, profile[:, j], where="post", label=name, ls=_LINE_STYLES[j // 10 % 3])
    ax.axvline(tau_max, color="0.6", lw=0.8, ls=":")
    ax.set(xscale="log", xlabel="tau (x best)", ylabel="fraction solved within tau", ylim=(-0.02, 1.02),
           title=title)
    # after set_xscale, which resets them: ticks 1, 2, 4, 10, 20, ... labelled as plain numbers
    ax.xaxis.set_major_locator(ticker.LogLocator(base=10.0, subs=(1.0, 2.0, 4.0)))
    ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda x, _: f"{x:g}"))
    ax.xaxis.set_minor_formatter(ticker.NullFormatter())


def profiles_figure(cfg, names: list[str], report: dict):
    """Time (top) and steps (bottom) profiles: each workload over its seeds, then over workloads."""
    panels = list(cfg.workloads) + ["all workloads"]
    fig, axes = plots.plt.subplots(2, len(panels), figsize=(4.2 * len(panels), 7.0), squeeze=False)
    for row, kind in enumerate(("time", "steps")):
        for col, panel in enumerate(panels):
            ratios = report["overall"][kind] if col == len(panels) - 1 else report["per_workload"][panel][kind]
            _profile_axes(axes[row, col], ratios, names, cfg.tau_max,
                          f"{panel}: {kind} to target" + (" (over seeds)" if col < len(panels) - 1 else ""))
    axes[0, -1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def curves_figure(w: str, workload: Workload, results: dict):
    """Median (over seeds) validation curve of each optimizer at its best learning rate, and the target."""
    series = {f"{n} (lr {m['best_lr']:.2g})": (workload.eval_steps, m["median_curve"]) for n, m in results.items()}
    fig = plots.lines(series, xlabel="step", ylabel=workload.metric_name, logy=True,
                      title=f"{w}: median over seeds at each optimizer's best learning rate")
    for j, line in enumerate(fig.axes[0].lines):
        line.set_linestyle(_LINE_STYLES[j // 10 % 3])
    fig.axes[0].axhline(workload.target, color="k", ls="--", lw=0.8, label="target")
    fig.axes[0].legend(fontsize=7)
    return fig
