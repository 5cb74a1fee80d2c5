"""jaxopt-lab reproduce grams-vs-adam

Grams vs Adam on the small byte-level LM: each with its best learning rate from the same grid, 3 seeds,
held-out loss after a fixed step budget (generalization) and mean training loss (convergence speed).
"""

import ml_collections

from jaxopt_lab.lab import Claim
from jaxopt_lab.lab.config import load_config
from jaxopt_lab.lab.project import project_root

TITLE = "Grams vs Adam on the small LM (tuned learning rate each, 3 seeds)"
DESCRIPTION = (
    "'Grams: Gradient Descent with Adaptive Momentum Scaling' (arXiv:2412.17107) trains LLaMA models "
    "and reports faster convergence and better generalization than Adam. Substitute on 2 CPU cores: "
    "a LLaMA-style decoder (jaxopt_lab.models.Llama, dim 32, 2 layers, 2 heads, ~37k parameters) on "
    "the byte corpus of Python's standard-library sources, sequences of 64 bytes, batch 16, 400 steps; "
    "Grams and Adam (both b1 = 0.9, b2 = 0.999, eps = 1e-8, no weight decay) each swept over the "
    "5 log-spaced learning rates from 1e-3 to 1e-1 x 3 seeds in one vmapped lab.sweep (the optimizer_zoo "
    "experiment). For each optimizer the learning rate with the lowest mean held-out loss is "
    "selected; at that learning rate we compare the held-out loss (mean over seeds) and the mean "
    "training loss over the run (area under the training curve: lower = faster convergence). The "
    "comparison is strict (no margin); the per-seed spread is in the summary "
    "(lm_<name>_best_std), the whole grid in lm_<name>_scores, and the claim 'best_lr_inside_grid' "
    "checks that the comparison is not decided at the edge of the grid.")
QUOTE = ("Grams shows 'faster convergence and better generalization, compared to widely-used "
         "optimizers such as Adam, Lion, and their cautious variants' [abstract, arXiv:2412.17107]")
CLAIMS = [
    Claim("best_lr_inside_grid", "precondition: Grams's best learning rate is inside the swept grid "
          "(below its largest value), so 'best' is not an artefact of the grid",
          key="lm_grams_best_lr", op="<", bound=0.099),
    Claim("adam_best_lr_inside_grid", "precondition: the same for Adam", key="lm_adam_best_lr",
          op="<", bound=0.099),
    Claim("better_generalization", QUOTE + ": held-out loss at each one's best learning rate",
          key="lm_grams_best_mean", op="<", bound="lm_adam_best_mean"),
    Claim("faster_convergence", QUOTE + ": mean training loss over the run at that learning rate",
          key="lm_grams_best_mean_train_loss", op="<", bound="lm_adam_best_mean_train_loss"),
]
QUICK = {"seeds": 1, "lr.num": 2, "lm.steps": 3, "lm.dim": 8, "lm.n_heads": 2, "lm.seq_len": 8,
         "lm.batch_size": 2, "lm.corpus_bytes": 20_000, "lm.n_layers": 1}


def get_config():
    c = load_config(project_root() / "configs" / "zoo" / "all_optimizers.py")
    c.optimizers = ("adam", "grams")
    c.tasks = ("lm",)
    c.seeds = 3
    # wide enough that each optimizer's best learning rate is inside the grid, not on its edge (a
    # first run over 3e-4..1e-2 put both optima at the upper edge)
    c.lr = ml_collections.ConfigDict({"min": 1e-3, "max": 1e-1, "num": 5})
    c.lm = ml_collections.ConfigDict({"dim": 32, "n_layers": 2, "n_heads": 2, "seq_len": 64,
                                      "batch_size": 16, "steps": 400, "corpus_bytes": 1_000_000})
    return c
