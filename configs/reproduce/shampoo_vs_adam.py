"""jaxopt-lab reproduce shampoo-vs-adam

Shampoo (Adam grafting, preconditioners refreshed every 10 steps) vs Adam on the byte-level LM, each at
its best learning rate from the same grid (one vmapped lab.sweep per optimizer): steps (and wall time)
to reach Adam's final held-out loss ("Scalable Second Order Optimization for Deep Learning",
arXiv:2002.09018).
"""

import ml_collections

from jaxopt_lab.lab import Claim

TITLE = "Shampoo reaches Adam's final held-out loss in fewer steps (small LM, tuned lr each)"
DESCRIPTION = (
    "'Scalable Second Order Optimization for Deep Learning' (Anil, Gupta, Koren, Regan, Singer; "
    "arXiv:2002.09018) trains a Transformer on WMT'14 en-fr and reports that Shampoo reaches the "
    "baseline's (Adam / Adagrad) quality in fewer steps. Substitute on 2 CPU cores: the LLaMA-style "
    "decoder of jaxopt_lab.models (dim 32, 2 layers, 2 heads, MLP hidden 64) on the byte corpus of "
    "Python's standard-library sources (the lm_pretrain experiment's model and data), sequences of 64 "
    "bytes, batch 16, 400 steps, held-out loss on 128 test windows every 20 steps. Shampoo: block size "
    "128, p = 4 (coupled Newton roots), statistics summed (beta2 = 1), relative ridge 1e-6, roots "
    "refreshed every 10 steps, Adam grafting (b2 = 0.999), momentum 0.9; Adam: b1 = 0.9, b2 = 0.999, "
    "eps = 1e-8; no weight decay for either. Each optimizer is swept over 5 log-spaced learning "
    "rates from 1e-3 to 1e-1 x 2 seeds in one vmapped lab.sweep; the learning rate with the lowest "
    "final held-out loss (mean over seeds) is selected. The target is Adam's final held-out loss "
    "there; steps_to_target_<name> is the first evaluated step at which the optimizer's mean held-out "
    "curve is at or below it (never within the 400 steps: counted as 420, reached_target_<name> = 0). Wall time (figure loss_vs_step_and_time.png, right panel; "
    "seconds_to_target_<name>) is steps x the median step time of the jitted engine measured after "
    "the sweep at the selected learning rate on this machine (compile excluded). Differences from the "
    "paper: a ~30k-parameter model instead of a 93M/375M Transformer, roots computed synchronously "
    "every 10 steps (the paper: asynchronously on the host every few hundred), no learning-rate "
    "schedule. Full-size result (2 CPU cores shared with other jobs, load average ~25; 193 s CPU): "
    "both best at lr 1e-2 (inside the grid); Adam's final held-out loss 2.183, Shampoo's 2.110; "
    "Shampoo's mean held-out curve is at or below 2.183 from step 340 of 400: fewer steps, PASS. "
    "Wall time FAILS: the measured step is 150 ms for Shampoo vs 15.6 ms for Adam (9.6x), so 51 s "
    "vs 6.2 s to the target (loss_vs_step_and_time.png, right). Why: the roots run synchronously "
    "inside the step every 10 steps (the paper overlaps them with training on the host CPUs and "
    "recomputes every few hundred steps, which is where its wall-clock gain comes from), and this "
    "model's Adam step is cheap. XLA's cost analysis of one step: gradient 2.38e8 flops, Adam step "
    "2.38e8, Shampoo step 3.47e8 counting each coupled-Newton loop body once; one Newton iteration "
    "costs 1.7e7 flops on a 128 x 128 block (the embedding and output matrices give four of them) "
    "and 2.2e6 on a 64 x 64 one, and an iteration runs until max|M - I| < 1e-6 or it stops improving "
    "(up to 100 iterations), so a refresh can cost several Adam steps. The 9.6x measured step ratio, "
    "under heavy contention, is above what these FLOP counts explain; the rest is the overhead of "
    "many small sequential kernels (loops of 32..128-sized matmuls) on a CPU.")
QUOTE = ("Shampoo 'provides significant convergence and wall-clock time improvements compared to "
         "conventional first-order methods on state-of-the-art deep models' [abstract, arXiv:2002.09018]")
CLAIMS = [
    Claim("adam_best_lr_inside_grid", "precondition: Adam's best learning rate is below the grid's "
          "largest value, so the target is not an artefact of the grid", key="adam_best_lr", op="<",
          bound="lr_grid_max"),
    Claim("shampoo_best_lr_inside_grid", "precondition: the same for Shampoo", key="shampoo_best_lr",
          op="<", bound="lr_grid_max"),
    Claim("shampoo_fewer_steps", QUOTE + ": steps for Shampoo's held-out loss to reach Adam's final "
          "held-out loss, strictly fewer than Adam's own", key="steps_to_target_shampoo", op="<",
          bound="steps_to_target_adam"),
    Claim("shampoo_less_wall_time", QUOTE + ": wall time (steps x measured step time, compile "
          "excluded) for Shampoo to reach Adam's final held-out loss, less than Adam's own",
          key="seconds_to_target_shampoo", op="<", bound="seconds_to_target_adam"),
]
QUICK = {"seeds": 1, "lr.num": 2, "steps": 4, "eval_every": 2, "timing_chunks": 1, "seq_len": 8,
         "batch_size": 2, "eval_windows": 2, "corpus_bytes": 20_000, "model.dim": 8,
         "model.n_layers": 1, "model.hidden_dim": 8, "model.n_heads": 2,
         "optimizers.shampoo.precondition_every": 2}


def get_config():
    # The model and data keys of the LM pre-training config (configs/lowrank/lm_pretrain.py).
    from jaxopt_lab.lab.config import load_config
    from jaxopt_lab.lab.project import project_root

    lm = load_config(project_root() / "configs" / "lowrank" / "lm_pretrain.py")
    c = ml_collections.ConfigDict()
    c.experiment = "shampoo_vs_adam"
    c.seed = 0
    c.lm_preset = lm.lm_preset
    c.model = ml_collections.ConfigDict({"dim": 32, "n_layers": 2, "hidden_dim": 64, "n_heads": 2})
    c.seq_len = lm.seq_len
    c.batch_size = lm.batch_size
    c.corpus_bytes = lm.corpus_bytes
    c.eval_windows = 128
    c.steps = 400
    c.eval_every = 20
    c.timing_chunks = 5
    c.seeds = 2
    c.lr = ml_collections.ConfigDict({"min": 1e-3, "max": 1e-1, "num": 5})
    c.reference = "adam"
    c.optimizers = ml_collections.ConfigDict({
        "adam": {"name": "adam"},
        "shampoo": {"name": "shampoo", "graft": "adam", "precondition_every": 10},
    })
    return c
