"""jaxopt-lab reproduce fira-vs-galore

Fira vs GaLore vs Adam at equal steps on the byte-level LM: Fira's final held-out loss is below
GaLore's at the same rank, and closer to Adam's (Fira, arXiv:2410.01623).
"""

import ml_collections

from jaxopt_lab.lab import Claim

TITLE = "Fira recovers full-rank training under a low-rank state constraint"
DESCRIPTION = (
    "'Fira: Can We Achieve Full-rank Training of LLMs Under Low-rank Constraint?' (arXiv:2410.01623) "
    "vs 'GaLore: Memory-Efficient LLM Training by Gradient Low-Rank Projection' (arXiv:2403.03507). "
    "Substitutions: LLaMA-60M/1B on C4 -> the LLaMA-style decoder of jaxopt_lab.models "
    "(LlamaConfig.tiny: dim 64, 2 layers, ~115k parameters) on the Python standard-library byte "
    "corpus (1 MB; bytes as tokens), 1,200 steps of batch 16 x 64 bytes. Same rank (16 = dim/4, "
    "GaLore's LLaMA-60M ratio 128/512), update_proj_gap 200, lr 0.01 and scale 0.25 for both (Fira's "
    "and GaLore's C4 scripts), attention and MLP matrices projected, embeddings/output/norms by Adam "
    "inside each optimizer; Adam at lr 3e-3. Loss: held-out cross-entropy (nats/byte) on 256 "
    "windows of the test split. One seed.")
QUOTE = ("'Fira outperforms both LoRA and GaLore, achieving performance that is comparable to or even "
         "better than full-rank training' [abstract, arXiv:2410.01623]")
CLAIMS = [
    Claim("fira_below_galore", QUOTE + ": final held-out loss, Fira < GaLore at the same rank",
          key="final_loss_fira", op="<", bound="final_loss_galore"),
    Claim("fira_closer_to_adam", QUOTE + ": |loss(Fira) - loss(Adam)| < |loss(GaLore) - loss(Adam)|",
          key="abs_gap_fira", op="<", bound="abs_gap_galore"),
]
QUICK = {"steps": 4, "log_every": 2, "seq_len": 8, "batch_size": 2, "eval_windows": 2,
         "corpus_bytes": 20_000, "model.dim": 16, "model.n_layers": 1, "model.hidden_dim": 16,
         "model.n_heads": 2, "rank": 4, "update_proj_gap": 2, "project_only": ("mlp",)}


def get_config():
    # The LM pre-training config (configs/lowrank/lm_pretrain.py) with this reproduction's changes.
    from jaxopt_lab.lab.config import load_config
    from jaxopt_lab.lab.project import project_root

    c = load_config(project_root() / "configs" / "lowrank" / "lm_pretrain.py")
    c.steps = 1200
    c.log_every = 100
    c.update_proj_gap = 200
    c.optimizers = ml_collections.ConfigDict({
        "adam": {"name": "adam", "learning_rate": 3e-3},
        "galore": {"name": "galore", "learning_rate": 1e-2},
        "fira": {"name": "fira", "learning_rate": 1e-2},
    })
    c.projection = ml_collections.ConfigDict({"every": 0, "kinds": ("svd",)})
    return c
