"""Hopfield capacity: retrieval success vs number of stored patterns N (classical, dense, exponential, MCHN).

Protocol at a fixed dimension d: N random +-1 patterns; queries are stored patterns with
a fraction ``corruption`` of coordinates flipped; success = overlap >= 0.99 with the original. Memories:

* classical Hopfield (Hebbian, asynchronous, = dense memory with F = x^2; Hopfield 1982),
* dense associative memory with F = x^n, n in ``powers`` (Krotov & Hopfield 2016, arXiv:1606.01164),
* dense memory with F = exp (exponential interaction),
* the modern continuous Hopfield network (Ramsauer et al., arXiv:2008.02217) at beta = s / sqrt(d),
  s in ``beta_scales``, iterated to convergence and in one update (read out with sign).

Besides the retrieval curves, the classical network's *stability* curve (queries = the stored patterns
themselves, c = 0): its capacity is the largest N whose mean fixed-point overlap stays >= 0.967 (the
overlap of the retrieval state at the critical load alpha_c = 0.138 in Amit, Gutfreund & Sompolinsky's
analysis), the classical ~0.14 d limit. Every curve is one jitted call over all N (masked pattern bank).
"""

from __future__ import annotations

import math

import jax
import numpy as np

from jaxopt_lab import hopfield
from jaxopt_lab.lab import Range, plots

CONFIG_SPEC = {
    "dim": Range(4, integer=True),
    "corruption": Range(0.0, 0.5, open_high=True),
    "num_queries": Range(1, integer=True),
    "max_iterations": Range(1, integer=True),
    "sizes.min": Range(1, integer=True),
    "sizes.max_over_dim": Range(0.0, open_low=True),
    "sizes.num": Range(2, integer=True),
    "classical.step": Range(1, integer=True),
    "classical.max_over_dim": Range(0.0, open_low=True),
    "classical.stability_overlap": Range(0.0, 1.0),
    "success_level": Range(0.0, 1.0),
}

CONFIG_DEFAULTS = {
    "seed": (0, "PRNG seed of the patterns and query corruptions of every curve"),
    "dim": (128, "pattern dimension d (+-1 entries); loads are N / d"),
    "corruption": (0.1, "fraction of a query's coordinates flipped"),
    "num_queries": (64, "queries per pattern-bank size; success rate = fraction retrieved (overlap >= 0.99)"),
    "max_iterations": (30, "update sweeps at most per retrieval (iterated memories)"),
    "powers": ((3, 4), "interaction powers n of the dense associative memories F(x) = x^n"),
    "beta_scales": ((0.25, 1.0, 4.0, 16.0), "modern Hopfield network inverse temperatures, beta = s / sqrt(d)"),
    "success_level": (0.9, "capacity = the largest N whose success rate stays >= this"),
    "sizes.min": (4, "smallest number of stored patterns N of the retrieval curves"),
    "sizes.max_over_dim": (16.0, "largest N of the retrieval curves, as a multiple of d"),
    "sizes.num": (22, "about this many log-spaced N per retrieval curve (duplicates removed)"),
    "classical.step": (2, "classical network: spacing of its linearly spaced N"),
    "classical.max_over_dim": (0.5, "classical network: largest N, as a multiple of d"),
    "classical.stability_overlap": (0.967, "classical stability capacity: the largest N whose mean fixed-point "
                                           "overlap stays >= this (the retrieval state at load 0.138)"),
}

AMIT_OVERLAP = 0.967  # mean overlap of the retrieval state at alpha_c = 0.138 (Amit et al. 1985)


def log_sizes(n_min: int, n_max: int, num: int) -> list[int]:
    """About ``num`` integers log-spaced in ``[n_min, n_max]`` (duplicates removed)."""
    return sorted({int(round(v)) for v in np.geomspace(n_min, n_max, num)})


def curves(cfg, key) -> dict:
    """Every curve of the figure: ``{name: (sizes, {"success", "overlap", "iterations"})}``.

    One compiled call per memory kind: the classical retrieval and stability curves share one (vmapped
    over the corruption), and the MCHN curves are vmapped over beta (a traced solver child).
    """
    d = cfg.dim
    sizes = log_sizes(cfg.sizes.min, max(cfg.sizes.min + 1, int(cfg.sizes.max_over_dim * d)), cfg.sizes.num)
    step = cfg.classical.step
    classical_sizes = list(range(step, max(step, int(cfg.classical.max_over_dim * d)) + 1, step))
    common = dict(num_queries=cfg.num_queries, max_iterations=cfg.max_iterations)
    keys = jax.random.split(key, 4 + len(cfg.powers))
    to_np = lambda tree: jax.tree.map(np.asarray, tree)
    out = {}

    def classical(k, c):
        return hopfield.binary_capacity_curve(k, "classical", d, classical_sizes, corruption=c, **common)

    both = to_np(jax.jit(jax.vmap(classical, in_axes=(None, 0)))(keys[0], np.array([cfg.corruption, 0.0])))
    out["classical (n=2)"] = (classical_sizes, jax.tree.map(lambda x: x[0], both))
    for i, n in enumerate(cfg.powers):
        fn = jax.jit(lambda k, n=int(n): hopfield.binary_capacity_curve(
            k, "polynomial", d, sizes, corruption=cfg.corruption, power=n, **common))
        out[f"dense F=x^{n}"] = (sizes, to_np(fn(keys[4 + i])))
    fn = jax.jit(lambda k: hopfield.binary_capacity_curve(k, "exponential", d, sizes, corruption=cfg.corruption,
                                                          **common))
    out["dense F=exp"] = (sizes, to_np(fn(keys[1])))
    betas = np.array([float(s) / math.sqrt(d) for s in cfg.beta_scales], np.float32)
    for one_step, k in ((False, keys[2]), (True, keys[3])):
        fn = jax.jit(jax.vmap(lambda b, one_step=one_step: hopfield.binary_capacity_curve(
            k, "mchn", d, sizes, corruption=cfg.corruption, beta=b, one_step=one_step, **common)))
        res = to_np(fn(betas))
        for j, s in enumerate(cfg.beta_scales):
            name = f"MCHN beta={s:g}/sqrt(d)" + (", one step" if one_step else "")
            out[name] = (sizes, jax.tree.map(lambda x: x[j], res))
    out["classical stability (c=0)"] = (classical_sizes, jax.tree.map(lambda x: x[1], both))
    return out


def run(cfg, ctx):
    d = cfg.dim
    results = curves(cfg, ctx.key)
    row = 0
    for name, (grid, r) in results.items():  # one metrics record per (memory, N)
        for n, s, m, it in zip(grid, r["success"], r["overlap"], r["iterations"]):
            row += 1
            ctx.log(row, memory=name, n_patterns=n, load=n / d, success=s, overlap=m, iterations=it)

    level = cfg.success_level
    capacity = {name: hopfield.capacity_from_curve(grid, r["success"], level)
                for name, (grid, r) in results.items() if "stability" not in name}
    grid, stab = results["classical stability (c=0)"]
    stability_capacity = hopfield.capacity_from_curve(grid, stab["overlap"], cfg.classical.stability_overlap)

    powers = [int(n) for n in cfg.powers]
    big, small = max(cfg.beta_scales), min(cfg.beta_scales)
    n_max = results["dense F=exp"][0][-1]
    at_dim = lambda name: float(np.interp(d, results[name][0], results[name][1]["success"]))
    summary = {
        "dim": d,
        "n_max_tested": n_max,
        "classical_stability_capacity": stability_capacity,
        "classical_stability_capacity_over_d": stability_capacity / d,
        "classical_retrieval_capacity": capacity["classical (n=2)"],
        "exponential_capacity": capacity["dense F=exp"],
        "exponential_over_classical_capacity": capacity["dense F=exp"] / max(capacity["classical (n=2)"], 1),
        "mchn_large_beta_capacity": capacity[f"MCHN beta={big:g}/sqrt(d)"],
        "mchn_large_beta_success_at_n_max": float(results[f"MCHN beta={big:g}/sqrt(d)"][1]["success"][-1]),
        "mchn_large_beta_one_step_success_at_n_max":
            float(results[f"MCHN beta={big:g}/sqrt(d), one step"][1]["success"][-1]),
        "mchn_small_beta_success_at_n_eq_d": at_dim(f"MCHN beta={small:g}/sqrt(d)"),
    }
    for n in powers:
        summary[f"dense_power{n}_capacity"] = capacity[f"dense F=x^{n}"]
    # the knee moves right with n: the smallest ratio between consecutive powers (2 = classical)
    chain = [capacity["classical (n=2)"]] + [capacity[f"dense F=x^{n}"] for n in powers]
    summary["min_capacity_ratio_consecutive_powers"] = min(b / max(a, 1) for a, b in zip(chain, chain[1:]))
    ctx.summary(**summary, capacity={k: v for k, v in capacity.items()})

    fig = plots.lines({_label(name): (g, r["success"]) for name, (g, r) in results.items()
                       if "stability" not in name},
                      xlabel="stored patterns N",
                      ylabel=f"fraction retrieved ({cfg.corruption:.0%} of bits flipped)",
                      title=f"associative-memory capacity, d = {d}", logx=True)
    ax = fig.axes[0]
    for line in ax.get_lines():  # one-step curves dashed: the colour cycle repeats after ten lines
        if "one update" in line.get_label():
            line.set_linestyle("--")
    ax.axvline(0.138 * d, color="k", ls=":", lw=1, label="0.138 d (classical limit)")
    # many curves: the legend goes beside the axes, not over the data
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), title="memory (dashed: one update)",
              title_fontsize=8)
    fig.set_size_inches(9.0, 4.0)
    fig.set_layout_engine("constrained")
    ctx.figure("capacity", fig)
    fig = plots.lines({"mean fixed-point overlap": (grid, stab["overlap"])}, xlabel="stored patterns N",
                      ylabel="overlap (start at the pattern)", title=f"classical stability, d = {d}")
    fig.axes[0].axvline(0.138 * d, color="k", ls=":", lw=1, label="0.138 d (classical limit)")
    fig.axes[0].axhline(cfg.classical.stability_overlap, color="r", ls=":", lw=1,
                        label=f"overlap {cfg.classical.stability_overlap:g} (retrieval state at 0.138 d)")
    fig.axes[0].legend(fontsize=8, loc="lower left")
    fig.set_layout_engine("constrained")
    ctx.figure("classical_stability", fig)


def _label(name: str) -> str:
    """A curve's legend label: the summary key written for a reader (beta as a symbol, sqrt as a root)."""
    return (name.replace("beta=", "\N{GREEK SMALL LETTER BETA} = ").replace("/sqrt(d)", "/\N{SQUARE ROOT}d")
            .replace(", one step", ", one update").replace("F=x^", "F = x^").replace("F=exp", "F = exp")
            .replace("(n=2)", "(F = x^2)"))
