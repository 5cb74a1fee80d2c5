"""Benchmark: Sinkhorn on large point clouds without forming the cost matrix (online).

Three measurements (``lab.bench``: compile and run times apart), run in the order gradient, per_iteration,
large (the last in a fresh process, so that its peak memory is its own):

1. ``per_iteration``: n = m = ``mid.n`` points in 3-D (x ~ N(0, I), y ~ N(mu, diag(s^2)), uniform
   weights), squared-Euclidean cost, epsilon = ``epsilon_scale`` x the median cost of a ``median_sample``
   x ``median_sample`` subsample: time per iteration (``mid.iterations`` iterations from zero
   potentials, threshold 0) of our online log-domain Sinkhorn (row blocks of ``block_size`` points; 0:
   the solver's default, about ``BLOCK_ENTRIES`` = 2^19 cost entries per block), vs ott-jax's online
   ``PointCloud(batch_size=...)`` Sinkhorn with the same rows per block, and the difference of the
   regularised costs after those iterations. When ott-jax's online path fails with the installed jax,
   the error is reported and ott-jax's dense path is timed instead on the first ``mid.dense_n`` points
   (the largest size its n x m matrices fit; ours online on the same points). Target: >= 1.5x faster,
   |cost diff| <= 1e-5 (relative).
2. ``gradient``: on ``gradient.n`` points, the gradient of the regularised cost w.r.t. x (envelope
   theorem, one streaming pass) vs the forward solve to ``gradient.threshold``: time ratio (median of
   ``gradient.repeats`` runs each, compiled first; wall and CPU time) and XLA's temporary memory ratio
   (``memory_analysis``). Target: both <= 2 (time: wall). Also records the forward's iteration count.
3. ``large``: n = m = ``large.n``. With ``large.solve`` the whole solve to the marginal error
   ``large.threshold`` (time, status). Otherwise the solve is compiled at that size (XLA's buffers) and
   its time projected: the mid-size time per iteration scaled by n^2, times the iteration count the
   ``gradient`` solve took to the same threshold (same distributions and epsilon scale). Both report the
   work per iteration (2.2 n^2 kernel entries: a 3-D distance and an exponential each) and
   the throughput in entries per second, and the arithmetic of the 10-minute target:
   ``large/entries_needed`` (2.2 n^2 x iterations) over ``large/exp_per_cpu_s`` on two cores, and
   ``large/speedup_needed_idle`` (that time over 600 s; above 1: out of reach). The large size runs in a
   child process (``subprocess``, a fresh Python), whose peak resident memory (``VmHWM``: the Python/JAX
   runtime, the point clouds and, with ``large.solve``, the solve's buffers) is the reported
   ``large/peak_rss_gib``; without ``large.solve`` XLA's buffers at full size are added for the 2 GiB
   target. The parent's own peak (ott-jax's dense matrices) is reported apart as
   ``large/process_peak_rss_gib``. Targets: under 600 s (projected without ``large.solve``), under 2 GiB.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from ott.geometry import pointcloud
from ott.problems.linear.linear_problem import LinearProblem
from ott.solvers.linear import sinkhorn as ott_sinkhorn

from jaxopt_lab import ot
from jaxopt_lab.lab import Range, Rule
from jaxopt_lab.ot._geom import BLOCK_ENTRIES

CONFIG_SPEC = {
    "large.n": Range(2, integer=True),
    "large.threshold": Range(0, open_low=True),
    "large.max_iterations": Range(1, integer=True),
    "mid.n": Range(2, integer=True),
    "mid.dense_n": Range(2, integer=True),
    "mid.iterations": Range(1, integer=True),
    "gradient.n": Range(2, integer=True),
    "gradient.threshold": Range(0, open_low=True),
    "gradient.repeats": Range(1, integer=True),
    "block_size": Range(0, integer=True),
    "epsilon_scale": Range(0, open_low=True),
    "median_sample": Range(2, integer=True),
}

CONFIG_DEFAULTS = {
    "seed": (0, "PRNG seed of the point clouds of the three measurements"),
    "block_size": (0, "rows of the cost computed at once by our online solver (0: its default, about 2^19 cost "
                      "entries per block); ott-jax's batch_size gets the same rows"),
    "epsilon_scale": (0.01, "epsilon as a multiple of the median cost of a median_sample subsample"),
    "median_sample": (1000, "points of each cloud used to estimate the median cost"),
    "large.n": (100_000, "large size: points per measure (run in a child process for its own peak memory)"),
    "large.threshold": (1e-3, "large size: l1 marginal error of the solve; without large.solve it must equal "
                              "gradient.threshold (the projection uses that solve's iteration count)"),
    "large.max_iterations": (2000, "large size: iteration cap of the solve"),
    "large.solve": (False, "solve at the large size (minutes to hours on a CPU); False: project its time "
                           "from the mid-size time per iteration"),
    "mid.n": (20_000, "per-iteration timing: points per measure (ours online vs ott-jax online)"),
    "mid.dense_n": (20_000, "per-iteration timing: points of the fallback when ott-jax's online path fails "
                            "(its dense n x n matrices must fit in memory)"),
    "mid.iterations": (10, "per-iteration timing: Sinkhorn iterations timed (threshold 0)"),
    "gradient.n": (2000, "gradient timing: points per measure"),
    "gradient.threshold": (1e-3, "gradient timing: l1 marginal error of the forward solve"),
    "gradient.repeats": (5, "gradient timing: timed runs each of the forward and the gradient (median)"),
}


# checked before anything is imported (see jaxopt_lab.lab.rules)
CONFIG_RULES = (
    Rule("large.threshold", "large.solve or large.threshold == gradient.threshold",
         "equal to gradient.threshold = {gradient.threshold}: the large solve is projected from the gradient "
         "solve's iteration count (or set large.solve=True)"),
)


def _clouds(key, n, dim=3):
    kx, ky, kmu, ks = jax.random.split(key, 4)
    x = jax.random.normal(kx, (n, dim))
    y = jax.random.normal(kmu, (dim,)) + jax.random.uniform(ks, (dim,), minval=0.5, maxval=1.5) * \
        jax.random.normal(ky, (n, dim))
    return x, y


def _median_cost(x, y, sample):
    k = min(sample, x.shape[0])
    return float(jnp.median(pointcloud.PointCloud(x[:k], y[:k]).cost_matrix))


def _epsilon(x, y, cfg):
    return cfg.epsilon_scale * _median_cost(x, y, cfg.median_sample)


def _block_size(cfg):
    """Our solvers' ``block_size``: ``cfg.block_size``, or None (0: their default)."""
    return cfg.block_size or None


def _block_rows(cfg, m):
    """The rows per block our solver uses with ``m`` columns (ott-jax's ``batch_size`` is set to it)."""
    return cfg.block_size or max(1, BLOCK_ENTRIES // m)


def _problem(x, y, eps, batch_size=None):
    n = x.shape[0]
    w = jnp.full((n,), 1.0 / n)
    return LinearProblem(pointcloud.PointCloud(x, y, epsilon=eps, batch_size=batch_size), w, w)


def _peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20   # ru_maxrss is KiB on Linux


def _own_peak_rss_gib() -> float:
    """This process's peak resident memory since its ``exec``: ``VmHWM`` of /proc/self/status. Not
    ``ru_maxrss``: Linux carries the parent's high-water mark over fork/vfork + exec into it, so a child of
    a process that held 7 GiB reports 7 GiB."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 2 ** 20   # kB
    except OSError:
        pass
    return _peak_rss_gib()


def _timed(fn, *args, repeats=1):
    """(compile_s, wall_s, cpu_s, output) of ``fn``: compiled once, then run ``repeats`` times, the median
    wall and CPU times. CPU time of the whole process (all threads) next to the wall time, since on a shared
    machine the wall time measures the others' load too."""
    start = time.perf_counter()
    compiled = fn.lower(*args).compile()
    compile_s = time.perf_counter() - start
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        out = jax.block_until_ready(compiled(*args))
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return compile_s, float(np.median(walls)), float(np.median(cpus)), out


def _large_child(args: dict) -> dict:
    """The large-size part, run in a fresh process (``python bench_ot_scale.py <json>``): its peak RSS is
    that of this solve alone (the Python/JAX runtime, the point clouds and XLA's buffers), not of the
    ott-jax dense matrices or the smaller sizes timed in the parent."""
    x, y = _clouds(jnp.asarray(args["key"], dtype=jnp.uint32), args["n"])
    prob = _problem(x, y, args["epsilon_scale"] * _median_cost(x, y, args["median_sample"]))
    solver = ot.Sinkhorn(threshold=args["threshold"], max_iterations=args["max_iterations"], online=True,
                         block_size=args["block_size"] or None, inner_iterations=10)
    result = {}
    if args["solve"]:   # the whole solve to the threshold
        compile_s, wall_s, cpu_s, out = _timed(jax.jit(lambda p: solver(p)), prob)
        n_iters = int(out.n_iters)
        result.update({"run_s": wall_s, "run_cpu_s": cpu_s, "compile_s": compile_s, "n_iters": n_iters,
                       "status": out.status_name, "final_error": float(out.errors[n_iters // 10 - 1])})
    else:   # compiled at full size: XLA's buffer sizes (executing it takes hours on 2 cores)
        start = time.perf_counter()
        mem = jax.jit(lambda p: solver(p).f).lower(prob).compile().memory_analysis()
        result["compile_s"] = time.perf_counter() - start
        if mem is not None:
            result["xla_buffers_gib"] = sum(float(getattr(mem, f"{k}_size_in_bytes", 0.0))
                                            for k in ("temp", "argument", "output")) / 2 ** 30
    result["peak_rss_gib"] = _own_peak_rss_gib()
    return result


_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(ot.__file__))))


def _run_large_child(args: dict) -> dict:
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), json.dumps(args)], capture_output=True,
                          text=True, env=dict(os.environ, PYTHONPATH=os.pathsep.join(
                              filter(None, [_PACKAGE_ROOT, os.environ.get("PYTHONPATH")]))))
    if proc.returncode != 0:
        raise RuntimeError(f"large-size child process failed (exit {proc.returncode}): {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _large(cfg, ctx, summary):
    c = cfg.large
    child = _run_large_child({"key": np.asarray(jax.random.fold_in(ctx.key, 0)).tolist(), "n": int(c.n),
                              "epsilon_scale": float(cfg.epsilon_scale), "median_sample": int(cfg.median_sample),
                              "threshold": float(c.threshold), "max_iterations": int(c.max_iterations),
                              "block_size": int(cfg.block_size), "solve": bool(c.solve)})
    summary["large/compile_s"] = child["compile_s"]
    summary["large/peak_rss_gib"] = child["peak_rss_gib"]
    summary["large/process_peak_rss_gib"] = _peak_rss_gib()   # this process: ott-jax dense and smaller sizes
    if c.solve:
        summary.update({f"large/{k}": child[k] for k in ("run_s", "run_cpu_s", "n_iters", "status",
                                                           "final_error")})
        per_iteration_s = child["run_s"] / child["n_iters"]
    else:
        # Projected: the mid-size time per iteration scaled by n^2 (the work is n^2 kernel entries per pass),
        # times the iteration count that the ``gradient`` solve took to the same threshold (same
        # distributions, same epsilon scale). Wall time is that of this (possibly shared) machine; CPU
        # time / 2 is what two idle cores would need at best.
        scale = (c.n / summary["per_iteration/mid_n"]) ** 2
        needed = summary["gradient/forward_iterations"]
        per_iteration_s = summary["per_iteration/ours_mid_ms"] / 1e3 * scale
        summary.update({"large/status": "projected", "large/iterations_assumed": needed,
                        "large/run_s": per_iteration_s * needed,
                        "large/run_cpu_s": summary["per_iteration/ours_mid_cpu_ms"] / 1e3 * scale * needed})
        if "xla_buffers_gib" in child:
            summary["large/xla_buffers_gib"] = child["xla_buffers_gib"]
    summary["large/idle_two_cores_s"] = summary["large/run_cpu_s"] / 2
    # Work per iteration: two half-steps, each one pass over the n x m entries (a d-dim distance and one
    # exp per entry), plus the error's two passes every inner_iterations (10).
    summary["large/exp_per_iteration"] = 2.2 * c.n * c.n
    summary["large/exp_per_s"] = 2.2 * c.n * c.n / per_iteration_s
    # The arithmetic of the 10-minute target: entries the solve needs over entries per CPU-second, on two
    # cores; the speed-up still needed to fit in 600 s (1 or less: within reach).
    iterations = summary["large/n_iters"] if c.solve else summary["large/iterations_assumed"]
    summary["large/entries_needed"] = 2.2 * c.n * c.n * iterations
    summary["large/exp_per_cpu_s"] = summary["large/entries_needed"] / summary["large/run_cpu_s"]
    summary["large/speedup_needed_idle"] = summary["large/idle_two_cores_s"] / 600.0
    ctx.log(3, **{k: v for k, v in summary.items() if k.startswith("large/")})


def _per_iteration(cfg, ctx, summary):
    c = cfg.mid
    x, y = _clouds(jax.random.fold_in(ctx.key, 1), c.n)
    eps = _epsilon(x, y, cfg)
    ours = ot.Sinkhorn(threshold=0.0, max_iterations=c.iterations, online=True, block_size=_block_size(cfg))
    ott = ott_sinkhorn.Sinkhorn(threshold=0.0, max_iterations=c.iterations, inner_iterations=10)
    ours_fn = jax.jit(lambda p: ours(p).reg_cost)
    ott_fn = jax.jit(lambda p: ott(p).reg_ot_cost)
    prob = _problem(x, y, eps)
    t_mid = _timed(ours_fn, prob)
    summary["per_iteration/mid_n"] = int(c.n)
    summary["per_iteration/block_rows"] = _block_rows(cfg, c.n)
    summary["per_iteration/ours_mid_ms"] = 1e3 * t_mid[1] / c.iterations
    summary["per_iteration/ours_mid_cpu_ms"] = 1e3 * t_mid[2] / c.iterations
    try:
        prob_ott = _problem(x, y, eps, batch_size=_block_rows(cfg, c.n))
        t_ott = _timed(ott_fn, prob_ott)
        summary["per_iteration/ott_mode"] = "online"
        t_ours = t_mid
    except Exception as err:   # noqa: BLE001 -- reported, then the dense comparison
        summary["per_iteration/ott_online_error"] = f"{type(err).__name__}: {err}"[:300]
        summary["per_iteration/ott_mode"] = "dense"
        x, y = x[:c.dense_n], y[:c.dense_n]
        prob = prob_ott = _problem(x, y, eps)
        t_ott = _timed(ott_fn, prob_ott)
        t_ours = t_mid if c.dense_n >= c.n else _timed(ours_fn, prob)
    summary["per_iteration/n"] = int(x.shape[0])
    summary["per_iteration/ours_ms"] = 1e3 * t_ours[1] / c.iterations
    summary["per_iteration/ott_ms"] = 1e3 * t_ott[1] / c.iterations
    summary["per_iteration/ott_over_ours"] = t_ott[1] / t_ours[1]
    summary["per_iteration/ott_over_ours_cpu"] = t_ott[2] / t_ours[2]
    ref = float(t_ott[3])
    summary["per_iteration/reg_cost_rel_diff"] = abs(float(t_ours[3]) - ref) / abs(ref)
    ctx.log(2, **{k: v for k, v in summary.items() if k.startswith("per_iteration/")})


def _gradient(cfg, ctx, summary):
    c = cfg.gradient
    x, y = _clouds(jax.random.fold_in(ctx.key, 2), c.n)
    eps = _epsilon(x, y, cfg)
    solver = ot.Sinkhorn(threshold=c.threshold, max_iterations=5000, online=True, block_size=_block_size(cfg))

    def reg(x):   # the regularised cost, and the iterations taken as an aux output
        out = solver(_problem(x, y, eps))
        return out.reg_cost, out.n_iters

    fwd, grad = jax.jit(reg), jax.jit(jax.grad(reg, has_aux=True))
    t_f, t_g = _timed(fwd, x, repeats=c.repeats), _timed(grad, x, repeats=c.repeats)
    summary["gradient/n"] = int(c.n)
    summary["gradient/repeats"] = int(c.repeats)
    summary["gradient/forward_s"] = t_f[1]
    summary["gradient/forward_cpu_s"] = t_f[2]
    summary["gradient/grad_s"] = t_g[1]
    summary["gradient/grad_cpu_s"] = t_g[2]
    summary["gradient/forward_iterations"] = int(t_f[3][1])

    def temp_bytes(fn):
        mem = fn.lower(x).compile().memory_analysis()
        return float(getattr(mem, "temp_size_in_bytes", np.nan)) if mem is not None else np.nan

    summary["gradient/time_ratio"] = t_g[1] / t_f[1]
    summary["gradient/cpu_time_ratio"] = t_g[2] / t_f[2]
    summary["gradient/forward_temp_mib"] = temp_bytes(fwd) / 2 ** 20
    summary["gradient/grad_temp_mib"] = temp_bytes(grad) / 2 ** 20
    summary["gradient/memory_ratio"] = summary["gradient/grad_temp_mib"] / summary["gradient/forward_temp_mib"]
    ctx.log(1, **{k: v for k, v in summary.items() if k.startswith("gradient/")})


def run(cfg, ctx):
    summary = {}
    ctx.progress(3)
    _gradient(cfg, ctx, summary)   # first: the quickest, timed before the long mid-size runs
    _per_iteration(cfg, ctx, summary)
    _large(cfg, ctx, summary)   # in a fresh process: its peak RSS is the large solve's alone
    # under 10 minutes: the solve's wall time (projected without large.solve, see _large), and at best on two
    # idle cores (CPU time / 2); under 2 GiB: the large-size process's peak RSS (with large.solve; else that of
    # compiling it, plus XLA's buffers at full size, which it would allocate to run)
    summary["targets/large_under_600s"] = float(summary["large/run_s"] + summary["large/compile_s"] < 600)
    summary["targets/large_under_600s_idle"] = float(summary["large/idle_two_cores_s"] < 600)
    summary["targets/large_under_2gib"] = float(summary["large/peak_rss_gib"]
                                                + summary.get("large/xla_buffers_gib", 0.0) < 2.0)
    if cfg.large.solve:
        summary["targets/large_converged"] = float(summary["large/status"] == "converged")
    summary["targets/per_iteration_ge_1.5x"] = float(summary["per_iteration/ott_over_ours"] >= 1.5)
    summary["targets/reg_cost_within_1e-5"] = float(summary["per_iteration/reg_cost_rel_diff"] <= 1e-5)
    summary["targets/gradient_time_le_2x"] = float(summary["gradient/time_ratio"] <= 2.0)
    summary["targets/gradient_memory_le_2x"] = float(summary["gradient/memory_ratio"] <= 2.0)
    ctx.summary(**summary)


if __name__ == "__main__":   # the large-size child process of ``_large``
    print(json.dumps(_large_child(json.loads(sys.argv[1]))))
