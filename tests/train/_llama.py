"""A small LLaMA problem shared by the multi-device scripts (run in subprocesses by the tests)."""

import jax
import jax.numpy as jnp
import numpy as np

from jaxopt_lab import models, optim, train

SEQ_LEN, BATCH = 16, 8
OPTIMIZERS = {
    "adam": {},
    "galore": {"rank": 4, "update_proj_gap": 5},
    "fira": {"rank": 4, "update_proj_gap": 5},
    "smmf": {},
    "sam": {"rho": 0.05},
}


def problem():
    """(loss_fn, init params, token stream) of a 1-layer dim-32 LLaMA on random bytes."""
    config = models.LlamaConfig(dim=32, n_layers=1, n_heads=2, hidden_dim=64, max_seq_len=SEQ_LEN)
    apply_fn, init_fn = models.functional_init(lambda rngs: models.Llama(config, rngs=rngs))
    tokens = jnp.asarray(np.random.default_rng(0).integers(0, 256, 4000), jnp.int32)

    def loss_fn(params, batch):
        return models.cross_entropy(apply_fn(params, batch[0]), batch[1])

    return loss_fn, init_fn(jax.random.key(0)), tokens


def engine(name, mesh, loss_fn, tokens):
    tx = optim.get(name, learning_rate=3e-3, **OPTIMIZERS[name])
    return train.Engine(loss_fn, tx, train.batches.token_windows(tokens.shape[0], BATCH, SEQ_LEN),
                        tokens, mesh=mesh)
