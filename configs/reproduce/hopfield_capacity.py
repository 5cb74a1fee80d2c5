"""jaxopt-lab reproduce hopfield-capacity

Retrieval success vs number of stored patterns N at d = 128 for the classical Hopfield network, dense
associative memories (F = x^3, x^4, exp) and the modern continuous Hopfield network (beta = s / sqrt(d)).
"""

import ml_collections

from jaxopt_lab.lab import Claim

TITLE = "Associative-memory capacity: classical ~0.14 d vs dense and exponential memories"
DESCRIPTION = (
    "'Hopfield Networks is All You Need' (Ramsauer et al., arXiv:2008.02217) and "
    "'Dense Associative Memory for Pattern Recognition' (Krotov & Hopfield, arXiv:1606.01164); their "
    "claims below are read from the papers' bodies. Protocol at d = 128: N "
    "random +-1 patterns (N from 4 to 16 d on a log grid; classical on a linear grid up to d/2), 64 "
    "queries per N with 10% of the bits flipped, success = overlap >= 0.99. Asynchronous dynamics "
    "(random order per sweep) for the binary memories; MCHN iterated to |step| < 1e-4 and in one step. "
    "Capacity = largest N before success first drops below 0.9 (for the exponential memories this is a "
    "lower bound: the largest N tested). The classical 0.14 d limit is checked on the stability curve "
    "(start at the stored pattern): largest N with mean fixed-point overlap >= 0.967, the retrieval-"
    "state overlap at alpha_c = 0.138 (Amit, Gutfreund & Sompolinsky 1985). Tolerances fixed a priori.")

CLAIMS = [
    Claim("classical_limit", "the classical capacity limit (~0.14 d): the classical network "
          "(n = 2 in arXiv:1606.01164) stores ~0.138 d patterns (Amit et al. 1985), finite-size d = 128, "
          "rtol 0.5",
          key="classical_stability_capacity_over_d", op="~", bound=0.138, rtol=0.5),
    Claim("knee_moves_with_n", "arXiv:1606.01164: capacity grows like d^{n-1} for polynomial F, so the "
          "failure knee moves right with n (capacity n=2 < n=3 < n=4)",
          key="min_capacity_ratio_consecutive_powers", op=">", bound=1.0),
    Claim("exponential_far_larger", "capacity grows exponentially in d for F = exp (Demircigil et al. "
          "2017), far larger than the classical one (read as >= 10x the classical retrieval capacity)",
          key="exponential_over_classical_capacity", op=">=", bound=10.0),
    Claim("mchn_far_past_d", "arXiv:2008.02217: exponential capacity for well-separated patterns, so the "
          "continuous network stays near 1 far past N = d for large beta (success at N = 16 d, "
          "beta = 16/sqrt(d))", key="mchn_large_beta_success_at_n_max", op=">=", bound=0.99),
    Claim("one_step_retrieval", "arXiv:2008.02217: 'retrieval in one update with exponentially small error' "
          "(one-step success at N = 16 d, beta = 16/sqrt(d))",
          key="mchn_large_beta_one_step_success_at_n_max", op=">=", bound=0.99),
    Claim("small_beta_averages", "arXiv:2008.02217: at small beta the fixed point is a global average, so "
          "retrieval fails (beta = 0.25/sqrt(d), N = d)",
          key="mchn_small_beta_success_at_n_eq_d", op="<", bound=0.5),
]

QUICK = {"dim": 32, "num_queries": 16, "sizes.num": 6, "sizes.max_over_dim": 4.0, "classical.step": 2,
         "max_iterations": 10, "powers": (3,), "beta_scales": (0.25, 16.0)}


def get_config():
    c = ml_collections.ConfigDict()
    c.experiment = "hopfield_capacity"
    c.seed = 0
    c.dim = 128
    c.corruption = 0.1
    c.num_queries = 64
    c.max_iterations = 30
    c.powers = (3, 4)
    c.beta_scales = (0.25, 1.0, 4.0, 16.0)
    c.success_level = 0.9
    c.sizes = ml_collections.ConfigDict({"min": 4, "max_over_dim": 16.0, "num": 22})
    c.classical = ml_collections.ConfigDict({"step": 2, "max_over_dim": 0.5, "stability_overlap": 0.967})
    return c
