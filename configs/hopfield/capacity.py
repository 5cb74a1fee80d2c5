"""jaxopt-lab run configs/hopfield/capacity.py

Retrieval success vs stored patterns at d = 64 (classical, dense x^3 / x^4 / exp, MCHN); the
reproduction at d = 128 with its claims is configs/reproduce/hopfield_capacity.py. Every other setting
is the experiment's default (`jaxopt-lab show hopfield_capacity` lists them).
"""

import ml_collections

QUICK = {"dim": 16, "num_queries": 8, "sizes.num": 5, "sizes.max_over_dim": 2.0, "max_iterations": 8, "powers": (3,),
         "beta_scales": (0.25, 4.0)}


def get_config():
    c = ml_collections.ConfigDict()
    c.experiment = "hopfield_capacity"
    c.dim = 64
    c.num_queries = 32
    c.beta_scales = (0.25, 1.0, 4.0)
    c.sizes = ml_collections.ConfigDict({"max_over_dim": 8.0, "num": 16})
    c.classical = ml_collections.ConfigDict({"step": 1})
    return c
