"""Benchmark: a vmapped sensing sweep vs a Python loop, and the rank-one operator vs the dense one.

Two measurements, each side by side in this process, compile and run times apart (``lab.bench``):

1. ``sweep``: seeds x widths x init scales of symmetric GD (one pure trial: draw the init, run
   ``num_steps`` steps on a shared problem, return the error trace) as one ``lab.sweep`` call
   (``jit(vmap)``) vs the same jitted trial called once per trial in a Python loop. Target:
   >= 10x. Both sides run the same solver, whose step is built for sweeps: with ``n^2 <= m`` the dense
   operator's Gram matrix makes ``A*(A(X X^T) - y)`` one ``[trials, n^2] x [n^2, n^2]`` GEMM per step, and
   the tiny per-trial products are unrolled elementwise sums (``sensing/solvers.py``). That also makes a
   single trial cheap (~0.5-0.9 us per step at n=8 on XLA:CPU, bound by the fixed cost of each of the
   step's ~7 kernels), while the batched step is bound by its GEMM (~0.1 us per trial-step at 32 trials):
   so on one CPU core the ratio stays a few-fold below the target, and the summary says so.
   With several devices (e.g. ``XLA_FLAGS=--xla_force_host_platform_device_count=2``) the sweep is
   sharded over them (``sweep_devices`` in the summary; the loop runs on one device): report such a run
   separately, labelled as such.
2. ``rank_one``: one GD step on ``X X^T`` (``X <- X - eta (A*(r) + A*(r)^T) X``) at n = ``rank_one.n``,
   k = ``rank_one.k`` with the rank-one operator (``A(X X^T)`` and ``A*(r) X`` from the factors,
   O(m n k)) vs the dense Gaussian operator (O(m n^2)), at the same m = ``rank_one.dense_m`` (small
   enough for the dense ``[m, n, n]`` array to fit in memory). The dense cost is linear in m, so the
   step the dense operator *would need* at the rank-one run's m = ``rank_one.m`` is extrapolated from
   the measured one (reported separately, and said so). Target: >= 20x.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxopt_lab import sensing
from jaxopt_lab.lab import Range, bench, plots, sweep

CONFIG_SPEC = {
    "sweep.n": Range(2, integer=True),
    "sweep.m": Range(1, integer=True),
    "sweep.rank": Range(1, integer=True),
    "sweep.num_steps": Range(1, integer=True),
    "sweep.seeds": Range(1, integer=True),
    "rank_one.n": Range(2, integer=True),
    "rank_one.k": Range(1, integer=True),
    "rank_one.m": Range(1, integer=True),
    "rank_one.dense_m": Range(1, integer=True),
    "repeats": Range(1, integer=True),
}

CONFIG_DEFAULTS = {
    "seed": (0, "PRNG seed of the shared sweep problem and of the rank-one measurement's data"),
    "repeats": (5, "timed runs per side (median; compile timed apart)"),
    "sweep.n": (8, "sweep: side of the ground truth (n x n); with n^2 <= m the step is one GEMM per batch"),
    "sweep.rank": (2, "sweep: rank r of the ground truth"),
    "sweep.m": (120, "sweep: dense Gaussian measurements"),
    "sweep.num_steps": (300, "sweep: GD steps per trial"),
    "sweep.seeds": (4, "sweep: init seeds; trials = seeds x len(ks) x len(alphas)"),
    "sweep.ks": ((2, 4), "sweep: widths k of X"),
    "sweep.alphas": ((0.01, 0.03, 0.1, 0.3), "sweep: init scales"),
    "rank_one.n": (2000, "rank-one step: side of X X^T (n x n)"),
    "rank_one.k": (10, "rank-one step: width k of X"),
    "rank_one.m": (10000, "rank-one step: measurements of the rank-one operator, O(m n k) per step"),
    "rank_one.dense_m": (16, "rank-one step: measurements of the timed dense operator ([m, n, n] floats must fit "
                             "in memory); its time at rank_one.m is extrapolated linearly"),
}


def sweep_trial(cfg):
    """``(key, {"k", "alpha"}) -> errors``: symmetric GD from the trial's init on one shared problem.

    The problem is drawn once (from ``cfg.seed``): the sweep is over the init seed, the width and the
    init scale, as in the reproductions' figures, and both sides of the benchmark run this same function.
    """
    c = cfg.sweep
    k_max = max(c.ks)
    prob = sensing.make_problem(jax.random.PRNGKey(cfg.seed), c.n, c.rank, c.m)

    def trial(key, hp):
        X0 = sensing.small_init(key, (c.n, k_max), hp["alpha"], width=hp["k"])
        return sensing.gradient_descent(prob, X0, step_size=0.1, num_steps=c.num_steps).errors
    return trial


def _bench_sweep(cfg, ctx):
    c = cfg.sweep
    trial = sweep_trial(cfg)
    grid = {"k": list(c.ks), "alpha": list(c.alphas)}
    devices = len(jax.devices())
    prepared = sweep.prepare(trial, c.seeds, grid, shard=devices > 1)
    swept = bench.time_jitted(prepared.fn, *prepared.args, repeats=cfg.repeats)
    batched = prepared.finish(prepared.fn(*prepared.args)).outputs

    keys, hps = jax.tree.map(np.asarray, prepared.args)  # host copies: the loop runs on one device
    n_trials = prepared.n_trials
    single = jax.jit(trial)
    per_trial = [(keys[i], {name: v[i] for name, v in hps.items()}) for i in range(n_trials)]
    start = time.perf_counter()
    compiled = single.lower(*per_trial[0]).compile()  # one executable serves every trial
    loop_compile = time.perf_counter() - start

    def loop():
        return [compiled(key, hp) for key, hp in per_trial]

    looped = bench.time_call(loop, repeats=cfg.repeats)
    loop_out = np.stack([np.asarray(o) for o in loop()]).reshape(np.asarray(batched).shape)
    diff = float(np.nanmax(np.abs(loop_out - np.asarray(batched))))
    speedup = looped.run_s / swept.run_s
    return {"sweep_trials": n_trials, "sweep_devices": devices if devices > 1 else 1,
            "sweep_compile_s": swept.compile_s, "sweep_run_s": swept.run_s,
            "sweep_run_us_per_trial_step": swept.run_s / (n_trials * c.num_steps) * 1e6,
            "loop_run_us_per_trial_step": looped.run_s / (n_trials * c.num_steps) * 1e6,
            "loop_compile_s": loop_compile, "loop_run_s": looped.run_s, "sweep_speedup": speedup,
            "sweep_speedup_compile_plus_run": (loop_compile + looped.run_s) / (swept.compile_s + swept.run_s),
            "sweep_target": 10.0, "sweep_meets_target": bool(speedup >= 10.0),
            "sweep_max_abs_difference": diff}


def _gd_step(problem, X):
    return X - 0.01 * sensing.symmetric_gradient(problem, X)


def _bench_rank_one(cfg, ctx):
    c = cfg.rank_one
    key = jax.random.PRNGKey(cfg.seed)
    k_truth, k_dense, k_r1, k_x, k_r1b = jax.random.split(key, 5)
    U = sensing.symmetric_ground_truth(k_truth, c.n, min(c.k, c.n))
    X = sensing.small_init(k_x, (c.n, c.k), 1.0)
    step = jax.jit(_gd_step)

    def problem(op):
        return sensing.SensingProblem(op, op.apply_factored(U, U), (U, U), True)

    # Dense [m, n, n] (i.i.d. entries; (A*(r) + A*(r)^T) X symmetrises the step, no extra copy needed).
    dense = problem(sensing.gaussian_operator(k_dense, c.dense_m, (c.n, c.n)))
    dense_t = bench.time_jitted(step, dense, X, repeats=cfg.repeats)
    dense_bytes = int(dense.operator.matrices.nbytes)
    del dense
    same = problem(sensing.rank_one_operator(k_r1, c.dense_m, (c.n, c.n)))
    same_t = bench.time_jitted(step, same, X, repeats=cfg.repeats)
    full = problem(sensing.rank_one_operator(k_r1b, c.m, (c.n, c.n)))
    full_t = bench.time_jitted(step, full, X, repeats=cfg.repeats)
    dense_at_m = dense_t.run_s * c.m / c.dense_m  # extrapolated: the dense step is linear in m
    return {"rank_one_n": c.n, "rank_one_k": c.k, "rank_one_m": c.m, "dense_m": c.dense_m,
            "dense_operator_mb": dense_bytes / 2 ** 20,
            "dense_step_compile_s": dense_t.compile_s, "dense_step_run_s": dense_t.run_s,
            "rank_one_step_same_m_compile_s": same_t.compile_s,
            "rank_one_step_same_m_run_s": same_t.run_s,
            "rank_one_speedup_same_m": dense_t.run_s / same_t.run_s,
            "rank_one_step_run_s": full_t.run_s, "rank_one_step_compile_s": full_t.compile_s,
            "dense_step_extrapolated_run_s": dense_at_m,
            "rank_one_speedup_extrapolated": dense_at_m / full_t.run_s,
            "rank_one_target": 20.0,
            "rank_one_meets_target": bool(dense_t.run_s / same_t.run_s >= 20.0)}


def run(cfg, ctx):
    summary = {**_bench_sweep(cfg, ctx), **_bench_rank_one(cfg, ctx)}
    ctx.log(1, sweep_speedup=summary["sweep_speedup"],
            rank_one_speedup_same_m=summary["rank_one_speedup_same_m"])
    ctx.summary(**summary, devices=len(jax.devices()))
    ctx.figure("sweep_vs_loop", plots.bars(
        {f"lab.sweep (vmap, {summary['sweep_devices']} device(s))": summary["sweep_run_s"],
         "Python loop (1 device)": summary["loop_run_s"]},
        ylabel="run time [s]", title=f"{summary['sweep_trials']} GD trials: "
                                     f"{summary['sweep_speedup']:.1f}x"))
    ctx.figure("rank_one_vs_dense", plots.bars(
        {f"dense m={cfg.rank_one.dense_m}": summary["dense_step_run_s"],
         f"rank-one m={cfg.rank_one.dense_m}": summary["rank_one_step_same_m_run_s"],
         f"rank-one m={cfg.rank_one.m}": summary["rank_one_step_run_s"],
         f"dense m={cfg.rank_one.m} (extrapolated)": summary["dense_step_extrapolated_run_s"]},
        ylabel="one GD step [s]", logy=True,
        title=f"n={cfg.rank_one.n}, k={cfg.rank_one.k}: "
              f"{summary['rank_one_speedup_same_m']:.0f}x at equal m"))
