"""Optimizer-state bytes: the measured state (``state_bytes``) equals the closed-form state-size
formulas of the papers for every method, on a LLaMA-60M-shaped parameter tree and on the
table's own 4096 × 11008 example. States are built with ``jax.eval_shape`` (nothing is allocated)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxopt_lab import optim


def llama_like(vocab=32000, dim=512, hidden=1376, layers=8):
    """The parameter shapes of a LLaMA decoder (LLaMA-60M as in GaLore's C4 experiments)."""
    f32 = lambda *s: jax.ShapeDtypeStruct(s, jnp.float32)
    block = {"attn": {n: f32(dim, dim) for n in ("wq", "wk", "wv", "wo")},
             "mlp": {"w1": f32(dim, hidden), "w3": f32(dim, hidden), "w2": f32(hidden, dim)},
             "attn_norm": f32(dim), "mlp_norm": f32(dim)}
    return {"embed": f32(vocab, dim), "layers": [block] * layers, "norm": f32(dim),
            "output": f32(dim, vocab)}


RANK = 128
CASES = {  # registry name, its keyword arguments, the formula's method and keyword arguments
    "adam": ("adam", {}, "adam", {}),
    "galore": ("galore", {"rank": RANK}, "galore", {}),
    "galore_optax_side": ("galore", {"rank": RANK, "side": "memory_min"}, "galore",
                          {"side": "memory_min"}),
    "fira": ("fira", {"rank": RANK}, "fira", {}),
    "online_subspace_descent": ("online_subspace_descent", {"rank": RANK},
                                "online_subspace_descent", {}),
    "natural_galore": ("natural_galore", {"rank": RANK, "history": 4}, "natural_galore",
                       {"history": 4}),
    "dct_galore": ("dct_galore", {"rank": RANK}, "dct_galore", {}),
    "frugal": ("frugal", {"density": 0.25}, "frugal", {"density": 0.25}),
    "gradnorm_lorp": ("gradnorm_lorp", {"rank": RANK}, "gradnorm_lorp", {}),
    "smmf": ("smmf", {}, "smmf", {}),
    "subset_norm": ("subset_norm", {"rank": RANK}, "subset_norm", {}),
    "adam_8bit": ("adam_8bit", {}, "adam_8bit", {}),
    "q_galore": ("q_galore", {"rank": RANK}, "q_galore", {}),
}


def test_every_lowrank_and_factored_optimizer_has_a_formula_case():
    covered = {c[0] for c in CASES.values()}
    assert set(optim.names(family="lowrank")) | set(optim.names(family="factored")) <= covered


@pytest.mark.parametrize("case", sorted(CASES))
def test_state_bytes_equal_formula_on_llama_tree(case):
    name, kwargs, method, formula_kwargs = CASES[case]
    params = llama_like()
    state = jax.eval_shape(optim.get(name, learning_rate=1e-3, **kwargs).init, params)
    expected = optim.formula_bytes(method, params, rank=RANK, **formula_kwargs)
    assert optim.state_bytes(state) == expected


# the papers' state-size table (GaLore arXiv:2403.03507 and kin): one 4096 x 11008 matrix at
# r = 128 (numbers from the table, not from our code);
# our states add only int32 counts and a PRNG key (the table counts neither).
A2_11 = [
    ("adam", {}, 360_710_144),
    ("galore", {"rank": 128}, 13_369_344),
    ("galore", {"rank": 128, "side": "memory_min"}, 9_830_400),
    ("fira", {"rank": 128}, 13_369_348),
    ("online_subspace_descent", {"rank": 128}, 17_563_648),
    ("dct_galore", {"rank": 128}, 11_272_704),
    ("frugal", {"rank": 128}, 13_369_344),
    ("gradnorm_lorp", {"rank": 128}, 193_773_568),
    ("smmf", {}, 5_745_664),
    ("subset_norm", {"rank": 128}, 7_777_280),
]


@pytest.mark.parametrize("name, kwargs, table", A2_11)
def test_single_matrix_matches_the_papers_table(name, kwargs, table):
    params = {"w": jax.ShapeDtypeStruct((4096, 11008), jnp.float32)}
    state = jax.eval_shape(optim.get(name, learning_rate=1e-3, **kwargs).init, params)
    overhead = sum(int(np.prod(x.shape)) * x.dtype.itemsize for x in jax.tree.leaves(state)
                   if x.dtype in (jnp.int32, jnp.uint32) and x.size <= 2)
    assert optim.state_bytes(state) - overhead == table


def test_state_bytes_counts_real_arrays():
    state = optax.adam(1e-3).init({"w": jnp.zeros((3, 5))})
    assert optim.state_bytes(state) == 4 + 2 * 4 * 15


def test_formula_rejects_unknown_method():
    with pytest.raises(ValueError, match="method"):
        optim.formula_bytes("lion", {"w": np.zeros(3)})
