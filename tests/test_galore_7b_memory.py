"""The galore-7b-memory experiment's accounting on a tiny LLaMA, counted by hand.

Model: vocabulary 64, dim 32, MLP hidden 48, one layer, rank 8. The official GaLore code projects the
attention and MLP matrices only (jiaweizzhao/GaLore ``torchrun_main.py``: ``target_modules_list =
["attn", "mlp"]``); a projected m x n matrix keeps moments r x M and a projector N x r.
"""

import jax
import jax.numpy as jnp
import optax

from jaxopt_lab import optim
from jaxopt_lab.lab.project import load_experiment

MODEL = {"vocab_size": 64, "dim": 32, "n_layers": 1, "n_heads": 2, "hidden_dim": 48, "max_seq_len": 16}
RANK = 8
# by hand: attention 4 x (2*8*32 + 8*32), MLP 3 x (2*8*48 + 8*32), Adam's 2 per entry on
# embedding (64 x 32), output head (32 x 64) and three RMSNorm scales of 32
GALORE_ENTRIES = 4 * (2 * 8 * 32 + 8 * 32) + 3 * (2 * 8 * 48 + 8 * 32) + 2 * (2 * 64 * 32 + 3 * 32)
ADAM_ENTRIES = 2 * (2 * 64 * 32 + 4 * 32 * 32 + 3 * 32 * 48 + 3 * 32)


def test_projected_leaves_and_closed_form_reduction_by_hand():
    exp = load_experiment("galore_7b_memory")
    params = exp.llama_shapes(MODEL)
    mask = exp.projected_mask(params)
    assert sum(jax.tree.leaves(mask)) == 7  # q, k, v, o, gate, up, down
    accounting = exp.paper_accounting(params, mask, RANK)
    assert abs(accounting["paper_accounting_galore_bf16"] - (1 - GALORE_ENTRIES / ADAM_ENTRIES)) < 1e-12
    assert abs(accounting["paper_accounting_galore_8bit_all_states_8bit"]
               - (1 - GALORE_ENTRIES / (2 * ADAM_ENTRIES))) < 1e-12


def test_measured_state_bytes_equal_the_hand_count():
    exp = load_experiment("galore_7b_memory")
    params = exp.llama_shapes(MODEL)
    mask = exp.projected_mask(params)
    galore = optim.state_bytes(jax.eval_shape(optim.get("galore", rank=RANK, mask=mask).init, params))
    adam = optim.state_bytes(jax.eval_shape(optax.adam(1e-3).init, params))
    # float32 entries + counts: GaLore's own count, PRNG key and inner Adam count; Adam's count
    assert galore == 4 * GALORE_ENTRIES + 16 == exp.closed_form("galore", params, mask, RANK)
    assert adam == 4 * ADAM_ENTRIES + 4
    bf16 = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, jnp.bfloat16), params)
    assert optim.state_bytes(jax.eval_shape(optax.adam(1e-3).init, bf16)) == 2 * ADAM_ENTRIES + 4
