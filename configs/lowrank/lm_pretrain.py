"""jaxopt-lab run configs/lowrank/lm_pretrain.py

Byte-level LM pretraining (LLaMA-style decoder, LlamaConfig.tiny: dim 64, 2 layers) on the
standard-library byte corpus: adam vs galore vs fira vs online subspace descent vs dct_galore vs
frugal vs smmf at equal steps, rank 16 = dim/4 on the attention and MLP matrices. Loss curves,
optimizer-state bytes and step time (GaLore, arXiv:2403.03507; Fira, arXiv:2410.01623).
"""

import ml_collections

QUICK = {"steps": 4, "log_every": 2, "seq_len": 8, "batch_size": 2, "eval_windows": 2,
         "corpus_bytes": 20_000, "model.dim": 16, "model.n_layers": 1, "model.hidden_dim": 16,
         "model.n_heads": 2, "rank": 4, "update_proj_gap": 2, "project_only": ("mlp",),
         "reference": "fira", "only": ("fira",)}


def get_config():
    c = ml_collections.ConfigDict()
    c.experiment = "lm_pretrain"
    c.seed = 0
    c.lm_preset = "tiny"
    # overrides of the preset's fields (0 keeps the preset's value)
    c.model = ml_collections.ConfigDict({"dim": 0, "n_layers": 0, "hidden_dim": 0, "n_heads": 0})
    c.seq_len = 64
    c.batch_size = 16
    c.corpus_bytes = 1_000_000
    c.steps = 600
    c.log_every = 50
    c.eval_windows = 256
    c.rank = 16                   # = dim / 4, GaLore's ratio for LLaMA-60M (128 / 512)
    c.update_proj_gap = 100
    c.project_only = ("attention", "mlp")
    c.reference = "adam"
    c.only = ()                   # if non-empty: train only these labels (and the reference)
    # GaLore-family learning rate and scale as GaLore's C4 scripts (lr 0.01, scale 0.25).
    c.optimizers = ml_collections.ConfigDict({
        "adam": {"name": "adam", "learning_rate": 3e-3},
        "galore": {"name": "galore", "learning_rate": 1e-2},
        "fira": {"name": "fira", "learning_rate": 1e-2},
        "osd": {"name": "online_subspace_descent", "learning_rate": 1e-2},
        "dct_galore": {"name": "dct_galore", "learning_rate": 1e-2},
        "frugal": {"name": "frugal", "learning_rate": 3e-3},
        "smmf": {"name": "smmf", "learning_rate": 3e-3},
    })
    c.projection = ml_collections.ConfigDict({"every": 0, "kinds": ("svd", "dct", "random"),
                                              "ranks": ()})  # extra ranks to probe
    c.mesh = ml_collections.ConfigDict({"data": 0, "fsdp": 1})  # data = 0: all devices not on fsdp
    return c
