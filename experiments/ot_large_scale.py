"""Sinkhorn divergence between two large samples of known Gaussians in 3-D vs the closed-form W2^2.

mu = N(m1, S1), nu = N(m2, S2) in R^3 (fixed means and covariances, ``spread`` sets S2's scale). For each
epsilon of ``epsilons`` (absolute; the cost is ||x - y||^2), with x_1..x_n ~ mu and y_1..y_n ~ nu (uniform
weights), the debiased Sinkhorn divergence

    S_eps(x, y) = OT_eps(x, y) - (OT_eps(x, x) + OT_eps(y, y)) / 2

("Interpolating between Optimal Transport and MMD using Sinkhorn Divergences", Feydy et al.,
arXiv:1810.08278; OT_eps is ``OTOutput.reg_cost``) is computed by our online Sinkhorn (the cost matrix is
never formed: n = 1e5 would need 40 GB), and compared with the closed form

    W2^2(mu, nu) = |m1 - m2|^2 + tr(S1 + S2 - 2 (S1^1/2 S2 S1^1/2)^1/2).

The entropic bias of S_eps vanishes as eps -> 0 (O(eps^2) for smooth densities), while the estimate from
n samples keeps a sampling error. Its level is measured at each eps by the same divergence between two
*independent samples of mu* (``sampling``: zero without sampling error), drawn as its own line.
Summary: ``error/eps=...`` = |S_eps - W2^2|, ``sampling/eps=...``, and the two claims' statistics.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg
from ott.geometry import pointcloud
from ott.problems.linear.linear_problem import LinearProblem

from jaxopt_lab import ot
from jaxopt_lab.lab import Each, Range, Rule, plots

CONFIG_SPEC = {
    "n": Range(2, integer=True),
    "threshold": Range(0, open_low=True),
    "max_iterations": Range(1, integer=True),
    "block_size": Range(0, integer=True),   # 0: the solver's default (about 2^19 cost entries per block)
    "spread": Range(0, open_low=True),
    "epsilons": Each(Range(0, open_low=True)),
}

CONFIG_DEFAULTS = {
    "seed": (0, "PRNG seed of the three samples (x ~ mu, y ~ nu, and the second sample of mu)"),
    "n": (100_000, "points per sample; the cost matrix is never formed, so memory grows as n, time as n^2"),
    "epsilons": ((1.0, 0.3, 0.1, 0.03), "absolute entropic regularisations (cost ||x - y||^2), at least two; "
                                        "smaller ones need more iterations"),
    "threshold": (1e-3, "Sinkhorn stopping criterion: l1 marginal error"),
    "max_iterations": (3000, "Sinkhorn iteration cap per solve (three solves per epsilon)"),
    "block_size": (0, "rows of the cost computed at once by the online Sinkhorn (0: its default, about 2^19 cost "
                      "entries per block): memory block_size x n"),
    "spread": (1.0, "scale of nu's covariance S2 (mu's is fixed): sets the closed-form W2^2"),
}


# checked before anything is imported (see jaxopt_lab.lab.rules): the error-vs-epsilon curve needs two points
CONFIG_RULES = (
    Rule("epsilons", "len(epsilons) >= 2", "at least two numbers > 0"),
)


def gaussians(spread: float):
    """(m1, S1, m2, S2): fixed, non-commuting covariances so the trace term is not trivial."""
    m1, m2 = np.zeros(3), np.array([1.0, -0.5, 0.25])
    rot = scipy.linalg.expm(np.array([[0, 0.4, -0.2], [-0.4, 0, 0.3], [0.2, -0.3, 0]]))
    s1 = np.diag([1.0, 0.5, 0.25])
    s2 = spread * rot @ np.diag([0.3, 1.2, 0.6]) @ rot.T
    return m1, s1, m2, s2


def gaussian_w2_squared(m1, s1, m2, s2) -> float:
    """Closed-form W2^2 between N(m1, S1) and N(m2, S2) (Dowson & Landau; Givens & Shortt)."""
    r1 = scipy.linalg.sqrtm(s1)
    cross = scipy.linalg.sqrtm(r1 @ s2 @ r1)
    return float(np.sum((m1 - m2) ** 2) + np.trace(s1 + s2 - 2 * np.real(cross)))


def _sample(key, m, s, n):
    chol = np.linalg.cholesky(s)
    return jnp.asarray(m, jnp.float32) + jax.random.normal(key, (n, 3)) @ jnp.asarray(chol.T, jnp.float32)


def run(cfg, ctx):
    m1, s1, m2, s2 = gaussians(cfg.spread)
    exact = gaussian_w2_squared(m1, s1, m2, s2)
    kx, ky, kx2 = jax.random.split(ctx.key, 3)
    x, y, x2 = _sample(kx, m1, s1, cfg.n), _sample(ky, m2, s2, cfg.n), _sample(kx2, m1, s1, cfg.n)
    w = jnp.full((cfg.n,), 1.0 / cfg.n)
    solver = ot.Sinkhorn(threshold=cfg.threshold, max_iterations=cfg.max_iterations, online=True,
                         block_size=cfg.block_size or None)

    @jax.jit
    def divergence(p, q, eps):
        def reg(u, v):
            out = solver(LinearProblem(pointcloud.PointCloud(u, v, epsilon=eps), w, w))
            return out.reg_cost, out.converged
        (uv, c1), (uu, c2), (vv, c3) = reg(p, q), reg(p, p), reg(q, q)
        return uv - 0.5 * (uu + vv), c1 & c2 & c3

    epsilons = sorted((float(e) for e in cfg.epsilons), reverse=True)
    ctx.progress(len(epsilons))
    errors, sampling, converged = [], [], []
    for i, eps in enumerate(epsilons):
        div, ok = divergence(x, y, eps)
        same, ok_same = divergence(x, x2, eps)
        errors.append(abs(float(div) - exact))
        sampling.append(abs(float(same)))
        converged.append(bool(ok) and bool(ok_same))
        ctx.log(i + 1, epsilon=eps, divergence=float(div), error=errors[-1], sampling=sampling[-1],
                converged=converged[-1])
    # error decreases with eps until it reaches the sampling level (2x the same-distribution divergence)
    steps_ok = [e_small < e_big or e_small <= 2 * s_small
                for e_big, e_small, s_small in zip(errors, errors[1:], sampling[1:])]
    summary = {f"error/eps={e:g}": v for e, v in zip(epsilons, errors)}
    summary.update({f"sampling/eps={e:g}": v for e, v in zip(epsilons, sampling)})
    summary.update(exact_w2_squared=exact, n=cfg.n,
                   decreasing_until_sampling_fraction=float(np.mean(steps_ok)),
                   smallest_eps_error_over_sampling=errors[-1] / max(sampling[-1], 1e-30),
                   all_converged=float(all(converged)))
    ctx.summary(**summary)
    ctx.figure("error_vs_epsilon", plots.lines(
        {"|S_eps - W2^2| (Sinkhorn divergence)": (epsilons, errors),
         "sampling error: S_eps(two samples of mu)": (epsilons, sampling)},
        xlabel="epsilon", ylabel="absolute error", logx=True, logy=True,
        title=f"Gaussians in 3-D, n = {cfg.n} points each; W2^2 = {exact:.4f}"))
