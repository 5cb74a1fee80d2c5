"""Benchmark: optimizer-state bytes and step time of the low-rank / memory-efficient optimizers.

Model: ``cfg.layers`` dense ``cfg.width`` × ``cfg.width`` layers with biases (ReLU MLP, squared loss,
batch ``cfg.batch_size``), the issue's setting (4 × 1024², batch 256). In one process:

* **memory**: every optimizer of ``cfg.optimizers`` (``label -> {name, **kw}``, ``name`` a registry
  name or ``optax_galore`` for ``optax.contrib.galore``) is initialised for real and its state
  measured with ``optim.state_bytes``; ``state_ratio_<label>`` is the ratio to ``cfg.reference``,
  ``formula_match_<label>`` 1.0 when it equals ``optim.formula_bytes``. The same
  for a LLaMA-60M-shaped tree (``llama60m_state_ratio_<label>``, states from ``jax.eval_shape``).
* **step time** (``cfg.timing``): one jitted step of the training engine (:func:`jaxopt_lab.train.make_step`:
  loss and gradient, ``tx.update`` fed the engine's extra arguments, the update applied; the batch an
  argument as in a run) (compile time apart), timed at a refresh step (count 0: the projector is recomputed) and between refreshes, where it is timed as
  a training run takes it: ``cfg.timed_steps`` consecutive steps with the train state threaded
  through. ``step_ms_<label>`` = ((T − 1)·plain + refresh)/T with T = ``cfg.update_proj_gap`` is
  the average step, ``ratio_to_<reference>_<label>`` and ``ratio_to_optax_galore_<label>`` its
  ratios. (Calling the step again and again on the same inputs, as this benchmark first did, made
  Adam pay 6.5k-9k page faults per step for its 48 MB of fresh outputs, ~7-9 ms, and flattered
  every other ratio by ~15%.) Timings are taken round-robin over ``cfg.repeats`` rounds (a shared
  machine's load hits every optimizer alike) and the median is reported, with
  ``plain_faults_<label>``, the median minor page faults of a plain step. What bounds the ratios:
  ``flops_<label>`` is XLA's FLOP count of the compiled step (every ``lax.cond`` branch; the
  LAPACK SVD counts 0), ``flops_ratio_to_<reference>_<label>`` its ratio, and ``matmul_gflops`` the
  machine's rate on the model's own matmul shape: a projected optimizer adds two r·m·n matmuls
  per matrix to Adam's forward-and-backward three b·m·n, which at that rate alone sets a floor
  under its step time. Faults mean that glibc handed the step's buffers (XLA:CPU allocates its
  temporaries and outputs on every call) fresh pages from the OS: with some allocation histories a 64 MiB arena heap is created and deleted on
  every step, costing ~1 ms per 1k faults here; fira, whose step allocates the most (15 MiB of
  temporaries vs galore's 8 MiB), was measured at 5k-8k faults and 1.08-1.11x optax galore in such
  runs and at 0.93-0.98x in runs without faults. The SVD of a refresh is a LAPACK call (OpenBLAS,
  through scipy) inside the XLA step, whose own thread pool already uses every core: the section
  runs with ``cfg.blas_threads`` OpenBLAS threads (``threadpoolctl``; 0 leaves the default, one
  per core); with the default a 1024² SVD was measured to take 4-11 s instead of 0.3 s while
  another process loaded the 2 cores.
* **refresh** (``cfg.svd_size`` > 0): full SVD vs randomized SVD of one ``svd_size``² gradient at rank
  ``cfg.svd_rank``: ``svd_ms``, ``rsvd_ms``, ``rsvd_speedup``.

The targets (recorded as ``meets_*`` 1.0/0.0, never enforced): galore/fira state <= 38% of
Adam's at rank d/4, dct_galore <= 26%, q_galore <= 12%, smmf <= 5%; average step <= 1.3x Adam's and
<= optax.contrib.galore's at the same rank; randomized SVD refresh >= 3x faster than full SVD.
"""

from __future__ import annotations

import contextlib
import inspect
import resource
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
import optax.contrib
import threadpoolctl

from jaxopt_lab import optim, train
from jaxopt_lab.lab import Range, bench, plots
from jaxopt_lab.lab.config import ConfigError
from jaxopt_lab.optim.projectors import Projector

CONFIG_SPEC = {
    "layers": Range(1, integer=True),
    "width": Range(2, integer=True),
    "batch_size": Range(1, integer=True),
    "update_proj_gap": Range(1, integer=True),
    "repeats": Range(1, integer=True),
    "svd_size": Range(0, integer=True),
    "svd_rank": Range(1, integer=True),
    "rank": Range(1, integer=True),
    "llama60m_rank": Range(0, integer=True),
    "blas_threads": Range(0, integer=True),
    "timed_steps": Range(1, integer=True),
}

CONFIG_DEFAULTS = {
    "seed": (0, "seed of the parameters and the batch"),
    "layers": (4, "dense width x width layers of the ReLU MLP"),
    "width": (1024, "layer width"),
    "batch_size": (256, "examples per step"),
    "rank": (256, "rank filled into every entry that takes one (width / 4)"),
    "update_proj_gap": (200, "steps between projector refreshes (the average step weighs one refresh per gap)"),
    "llama60m_rank": (128, "rank of the state ratios on LLaMA-60M shapes too; 0: skip them"),
    "timing": (True, "time the steps (False: memory only)"),
    "timed": ((), "if non-empty: time only these labels (and the reference)"),
    "repeats": (7, "timed rounds (every optimizer once each); the median is reported"),
    "timed_steps": (10, "consecutive plain steps per round, state threaded as in a run; timed_steps x "
                        "repeats + 1 < update_proj_gap"),
    "blas_threads": (1, "OpenBLAS threads for the refresh SVDs (0: the default, one per core)"),
    "svd_size": (1024, "side of the gradient of the full vs randomized SVD comparison; 0: skip it"),
    "svd_rank": (64, "rank of that randomized SVD, <= svd_size"),
    "reference": ("adam", "the label the state and step-time ratios divide by"),
    "optimizers": ({
        "adam": {"name": "adam", "learning_rate": 1e-3},
        "optax_galore": {"name": "optax_galore", "learning_rate": 1e-3},
        "galore": {"name": "galore", "learning_rate": 1e-3},
        "galore_rsvd": {"name": "galore", "learning_rate": 1e-3, "projector": "randomized_svd"},
        "galore_optax_side": {"name": "galore", "learning_rate": 1e-3, "side": "memory_min"},
        "fira": {"name": "fira", "learning_rate": 1e-3},
        "dct_galore": {"name": "dct_galore", "learning_rate": 1e-3},
        "q_galore": {"name": "q_galore", "learning_rate": 1e-3},
        "adam_8bit": {"name": "adam_8bit", "learning_rate": 1e-3},
        "smmf": {"name": "smmf", "learning_rate": 1e-3},
        "subset_norm": {"name": "subset_norm", "learning_rate": 1e-3},
    }, "label -> {name: a registered optimizer or 'optax_galore' (optax.contrib.galore), its arguments}; "
       "replaced as a whole"),
}

FORMULA = {  # label's registry name -> formula method (where one exists)
    "adam": "adam", "galore": "galore", "fira": "fira", "dct_galore": "dct_galore",
    "online_subspace_descent": "online_subspace_descent", "q_galore": "q_galore", "smmf": "smmf",
    "subset_norm": "subset_norm", "adam_8bit": "adam_8bit", "frugal": "frugal",
    "natural_galore": "natural_galore", "gradnorm_lorp": "gradnorm_lorp",
}
TARGETS = {"galore": 0.38, "fira": 0.38, "dct_galore": 0.26, "q_galore": 0.12, "smmf": 0.05}
TARGET_STEP_RATIO = 1.3
TARGET_RSVD_SPEEDUP = 3.0


def validate(cfg) -> None:
    entries = cfg.optimizers.to_dict()
    for label, entry in entries.items():
        name = entry.get("name")
        if name != "optax_galore" and name not in optim.names():
            raise ConfigError(f"config key 'optimizers.{label}.name' = {name!r}: must be "
                              f"'optax_galore' or one of jaxopt_lab.optim.names()")
    if cfg.reference not in entries:
        raise ConfigError(f"config key 'reference' = {cfg.reference!r}: must be one of "
                          f"{sorted(entries)}")
    if cfg.timing and cfg.timed_steps * cfg.repeats + 1 >= cfg.update_proj_gap:
        raise ConfigError(f"config key 'timed_steps' = {cfg.timed_steps}: timed_steps * repeats "
                          f"+ 1 must stay below update_proj_gap = {cfg.update_proj_gap} (plain "
                          f"steps are timed between two refreshes)")
    if cfg.svd_size and cfg.svd_rank > cfg.svd_size:
        raise ConfigError(f"config key 'svd_rank' = {cfg.svd_rank}: must be <= svd_size = "
                          f"{cfg.svd_size}")


def with_defaults(entry: dict, cfg, rank=None) -> dict:
    """The entry with ``cfg.rank`` (or ``rank``) and ``cfg.update_proj_gap`` filled in where the
    optimizer takes them and the entry does not set them."""
    entry = dict(entry)
    name = entry["name"]
    if name == "optax_galore":
        takes = ("rank", "update_proj_gap")
    else:
        takes = inspect.signature(optim.info(name).factory).parameters
    if "rank" in takes and name != "frugal":
        entry.setdefault("rank", rank or cfg.rank)
        if rank:
            entry["rank"] = rank
    if "update_proj_gap" in takes:
        entry.setdefault("update_proj_gap", cfg.update_proj_gap)
    return entry


def build(entry: dict):
    entry = dict(entry)
    name = entry.pop("name")
    if name == "optax_galore":
        return optax.contrib.galore(**entry)
    return optim.get(name, **entry)


def dense_problem(cfg, key):
    keys = jax.random.split(key, cfg.layers + 2)
    params = {f"layer{i}": {"w": jax.random.normal(keys[i], (cfg.width, cfg.width))
                            / np.sqrt(cfg.width), "b": jnp.zeros(cfg.width)}
              for i in range(cfg.layers)}
    batch = (jax.random.normal(keys[-2], (cfg.batch_size, cfg.width)),
             jax.random.normal(keys[-1], (cfg.batch_size, cfg.width)))

    def loss_fn(p, batch):
        h, y = batch
        for i in range(cfg.layers):
            h = h @ p[f"layer{i}"]["w"] + p[f"layer{i}"]["b"]
            if i < cfg.layers - 1:
                h = jax.nn.relu(h)
        return 0.5 * jnp.mean(jnp.sum((h - y) ** 2, axis=-1))

    return params, loss_fn, batch


def llama60m_shapes(vocab=32000, dim=512, hidden=1376, layers=8):
    f32 = lambda *s: jax.ShapeDtypeStruct(s, jnp.float32)  # noqa: E731
    block = {"attention": {n: f32(dim, dim) for n in ("wq", "wk", "wv", "wo")},
             "mlp": {"w1": f32(dim, hidden), "w3": f32(dim, hidden), "w2": f32(hidden, dim)},
             "attention_norm": f32(dim), "mlp_norm": f32(dim)}
    return {"embed": f32(vocab, dim), "layers": [block] * layers, "norm": f32(dim),
            "output": f32(dim, vocab)}


def _formula(name, entry, params):
    method = FORMULA.get(name)
    if method is None:
        return None
    kw = {k: entry[k] for k in ("rank", "side", "history", "density", "block_size", "min_size")
          if k in entry}
    return optim.formula_bytes(method, params, **kw)


def _engine_step(tx, loss_fn, batch):
    """The engine's step on ``batch`` (``train_state, batch -> train_state``, jitted) and its initial
    train state."""
    engine = train.Engine(loss_fn, tx, train.batches.full_batch(), batch)
    return jax.jit(lambda state, batch: engine.step_fn(state, batch)[0]), engine.pure_init


def _minor_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def _blas_limit(threads: int):
    """OpenBLAS (LAPACK: the refresh's SVD) limited to ``threads``; 0: as it is."""
    if not threads:
        return contextlib.nullcontext()
    return threadpoolctl.threadpool_limits(limits=threads, user_api="blas")


def _flops(executable) -> float:
    """XLA's FLOP count of a compiled step (every branch of a ``lax.cond``; LAPACK calls count 0)."""
    analysis = executable.cost_analysis()
    analysis = analysis[0] if isinstance(analysis, (list, tuple)) else analysis
    return float((analysis or {}).get("flops", float("nan")))


def _matmul_gflops(cfg, key) -> float:
    """This machine's rate on the model's matmul shape, (batch × width) @ (width × width), GFLOP/s."""
    x = jax.random.normal(key, (cfg.batch_size, cfg.width))
    w = jax.random.normal(jax.random.fold_in(key, 1), (cfg.width, cfg.width))
    timing = bench.time_jitted(jnp.matmul, x, w, repeats=max(cfg.repeats, 5))
    return 2.0 * cfg.batch_size * cfg.width**2 / timing.run_s / 1e9


def _training_steps(executable, state, batch, steps):
    """``steps`` consecutive steps as a training run takes them (the train state threaded through);
    the wall time of each step, the minor page faults per step and the last state."""
    times = []
    before = _minor_faults()
    for _ in range(steps):
        start = time.perf_counter()
        state = jax.block_until_ready(executable(state, batch))
        times.append(time.perf_counter() - start)
    return times, (_minor_faults() - before) / steps, state


def _step_times(cfg, ctx, entries, params, loss_fn, batch) -> dict:
    """Compile every timed step (compile time apart); time plain and refresh steps round-robin."""
    summary = {}
    compiled, compile_s, running = {}, {}, {}
    for label, entry in entries.items():
        if cfg.timed and label not in cfg.timed and label != cfg.reference:
            continue
        step, init = _engine_step(build(entry), loss_fn, batch)
        state0 = init(params)                  # count 0: a refresh step
        start = time.perf_counter()
        executable = step.lower(state0, batch).compile()  # compile time, apart
        compile_s[label] = time.perf_counter() - start
        summary[f"flops_{label}"] = _flops(executable)
        compiled[label] = (executable, state0)
        running[label] = executable(state0, batch)  # the state at count 1: between refreshes
    plain = {k: [] for k in compiled}
    faults = {k: [] for k in compiled}
    refresh = {k: [] for k in compiled}
    for _ in range(cfg.repeats):  # round-robin: each round times every optimizer once
        for label, (executable, state0) in compiled.items():
            times, step_faults, running[label] = _training_steps(executable, running[label], batch,
                                                                 cfg.timed_steps)
            plain[label].extend(times)
            faults[label].append(step_faults)
            refresh[label].append(bench.time_call(executable, state0, batch, repeats=1,
                                                  warmup=0).run_s)
    gap = cfg.update_proj_gap
    for label in compiled:
        p_ms, r_ms = 1e3 * np.median(plain[label]), 1e3 * np.median(refresh[label])
        summary[f"plain_ms_{label}"] = float(p_ms)
        summary[f"refresh_ms_{label}"] = float(r_ms)
        summary[f"step_ms_{label}"] = float(((gap - 1) * p_ms + r_ms) / gap)
        summary[f"compile_s_{label}"] = float(compile_s[label])
        summary[f"plain_faults_{label}"] = float(np.median(faults[label]))
    ref = summary[f"step_ms_{cfg.reference}"]
    optax_label = next((k for k, e in entries.items() if e["name"] == "optax_galore"
                        and k in compiled), None)
    for label in compiled:
        summary[f"ratio_to_{cfg.reference}_{label}"] = summary[f"step_ms_{label}"] / ref
        summary[f"flops_ratio_to_{cfg.reference}_{label}"] = (
            summary[f"flops_{label}"] / summary[f"flops_{cfg.reference}"])
        if optax_label is not None:
            summary[f"ratio_to_optax_galore_{label}"] = (summary[f"step_ms_{label}"]
                                                         / summary[f"step_ms_{optax_label}"])
        if entries[label]["name"] in ("galore", "fira", "dct_galore"):
            summary[f"meets_step_target_{label}"] = float(
                summary[f"ratio_to_{cfg.reference}_{label}"] <= TARGET_STEP_RATIO
                and (optax_label is None
                     or summary[f"ratio_to_optax_galore_{label}"] <= 1.0))
    ctx.figure("step_time", plots.bars({k: summary[f"step_ms_{k}"] for k in compiled},
                                       ylabel=f"ms per step (T = {gap})"))
    return summary


def run(cfg, ctx):
    entries = {k: with_defaults(e, cfg) for k, e in cfg.optimizers.to_dict().items()}
    params, loss_fn, batch = dense_problem(cfg, ctx.key)
    ctx.progress(3)
    summary, memory = {}, {}

    # ---- memory: real states on the dense model, abstract ones on LLaMA-60M shapes
    llama = llama60m_shapes()
    llama_adam = optim.state_bytes(jax.eval_shape(optax.adam(1e-3).init, llama))
    for label, entry in entries.items():
        tx = build(entry)
        memory[label] = optim.state_bytes(tx.init(params))
        expected = _formula(entry["name"], entry, params)
        summary[f"state_bytes_{label}"] = memory[label]
        if expected is not None:
            summary[f"formula_bytes_{label}"] = expected
            summary[f"formula_match_{label}"] = float(expected == memory[label])
        if entry["name"] != "optax_galore" and cfg.llama60m_rank:
            llama_entry = with_defaults(entry, cfg, rank=cfg.llama60m_rank)
            state = jax.eval_shape(build(llama_entry).init, llama)
            summary[f"llama60m_state_ratio_{label}"] = optim.state_bytes(state) / llama_adam
    for label in entries:
        summary[f"state_ratio_{label}"] = memory[label] / memory[cfg.reference]
        if label in TARGETS:
            summary[f"meets_state_target_{label}"] = float(
                summary[f"state_ratio_{label}"] <= TARGETS[label])
    ctx.log(1, **{f"state_mib_{k}": v / 2**20 for k, v in memory.items()})
    ctx.figure("state_memory", plots.bars({k: v / 2**20 for k, v in memory.items()},
                                          ylabel="optimizer state (MiB)",
                                          title=f"{cfg.layers} x {cfg.width}² dense layers"))

    # ---- step time
    if cfg.timing:
        with _blas_limit(cfg.blas_threads):
            summary.update(_step_times(cfg, ctx, entries, params, loss_fn, batch))
            summary["matmul_gflops"] = _matmul_gflops(cfg, jax.random.fold_in(ctx.key, 11))
        summary["blas_threads"] = cfg.blas_threads
    ctx.log(2)

    # ---- randomized vs full SVD refresh
    if cfg.svd_size:
        g = jax.random.normal(jax.random.fold_in(ctx.key, 7), (cfg.svd_size, cfg.svd_size))
        key = jax.random.PRNGKey(0)
        timings = {}
        for kind in ("svd", "randomized_svd"):
            proj = Projector(kind, cfg.svd_rank)
            fn = jax.jit(lambda g, key, proj=proj: proj._fresh(None, g, key).basis)
            timings[kind] = bench.time_jitted(fn, g, key, repeats=cfg.repeats)
        summary["svd_ms"] = 1e3 * timings["svd"].run_s
        summary["rsvd_ms"] = 1e3 * timings["randomized_svd"].run_s
        summary["rsvd_speedup"] = timings["svd"].run_s / timings["randomized_svd"].run_s
        summary["meets_rsvd_target"] = float(summary["rsvd_speedup"] >= TARGET_RSVD_SPEEDUP)
    ctx.log(3)
    ctx.summary(**summary)
