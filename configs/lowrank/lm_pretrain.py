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
    # The run is lm_pretrain's defaults (`jaxopt-lab show configs/lowrank/lm_pretrain.py` lists each value with its help).
    c = ml_collections.ConfigDict()
    c.experiment = "lm_pretrain"
    return c
