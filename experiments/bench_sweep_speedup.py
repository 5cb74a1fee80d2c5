"""Benchmark: N seeds of the quickstart model via one vmapped lab.sweep vs N sequential runs.

Both sides run the same pure trial function (``train_classifier.trial``) in the same process: the
sweep compiles ``jit(vmap(trial))`` once and runs all seeds in one call; the sequential side compiles
``jit(trial)`` once and calls it once per seed. Compile and run times are reported apart; the speedup
is the ratio of run times (and, separately, of compile + run).
"""

from __future__ import annotations

import time

import jax
import numpy as np

from jaxopt_lab.lab import Range, bench, plots, sweep
from jaxopt_lab.lab.project import load_experiment

CONFIG_SPEC = {
    **load_experiment("train_classifier").CONFIG_SPEC,
    "bench.seeds": Range(1, integer=True),
    "bench.repeats": Range(1, integer=True),
}

CONFIG_DEFAULTS = {
    **load_experiment("train_classifier").CONFIG_DEFAULTS,  # the quickstart model, with these changes:
    "train.steps": (500, "optimizer steps of every trial (each seed, on both sides)"),
    "train.log_every": (50, "a trial reports its train loss averaged over its last log_every steps"),
    "train.checkpoint_every": (0, "unused: the benchmark's trials are pure functions, without checkpoints"),
    "bench.seeds": (16, "seeds N: one vmapped sweep of N trials vs N sequential calls of the same jitted trial"),
    "bench.repeats": (3, "timed runs per side (median; compile timed apart)"),
}


def run(cfg, ctx):
    trial = load_experiment("train_classifier").trial(cfg)
    n = cfg.bench.seeds
    prepared = sweep.prepare(trial, seeds=n)
    swept = bench.time_jitted(prepared.fn, *prepared.args, repeats=cfg.bench.repeats)
    sweep_out = prepared.finish(prepared.fn(*prepared.args))

    keys = sweep.seed_keys(range(n))
    single = jax.jit(trial)
    start = time.perf_counter()
    compiled = single.lower(keys[0], {}).compile()
    seq_compile = time.perf_counter() - start

    def sequential():
        return [compiled(k, {}) for k in keys]

    seq = bench.time_call(sequential, repeats=cfg.bench.repeats)
    seq_out = sequential()

    # The two sides compute the same thing: same per-seed accuracy up to float reassociation.
    seq_acc = np.array([float(o["test_accuracy"]) for o in seq_out])
    sweep_acc = np.asarray(sweep_out.outputs["test_accuracy"])
    max_acc_diff = float(np.max(np.abs(seq_acc - sweep_acc)))

    speedup = seq.run_s / swept.run_s
    speedup_total = (seq_compile + seq.run_s) / (swept.compile_s + swept.run_s)
    ctx.log(1, sweep_run_s=swept.run_s, sequential_run_s=seq.run_s, speedup=speedup)
    ctx.summary(seeds=n, devices=len(jax.devices()), steps=cfg.train.steps,
                sweep_compile_s=swept.compile_s, sweep_run_s=swept.run_s,
                sequential_compile_s=seq_compile, sequential_run_s=seq.run_s,
                speedup_run=speedup, speedup_compile_plus_run=speedup_total,
                target_speedup=6.0, meets_target=bool(speedup >= 6.0),
                max_test_accuracy_difference=max_acc_diff)
    fig = plots.bars({"sweep (vmap)": swept.run_s, f"{n} sequential": seq.run_s},
                     ylabel="run time [s]", title=f"{n} seeds x {cfg.train.steps} steps: "
                                                  f"{speedup:.1f}x")
    ctx.figure("sweep_speedup", fig)
