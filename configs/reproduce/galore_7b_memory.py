"""jaxopt-lab reproduce galore-7b-memory

Optimizer-state bytes of LLaMA-7B-shaped parameters (jax.eval_shape, nothing allocated) for Adam, GaLore
(rank 1024), 8-bit GaLore, Fira and SMMF, measured with optim.state_bytes and checked against the closed
forms; GaLore's published reductions (65.5%, 8-bit 82.5%) in the official code's accounting.
"""

import ml_collections

from jaxopt_lab.lab import Claim

TITLE = "GaLore on LLaMA-7B shapes: optimizer-state memory, measured vs the published 65.5% / 82.5%"
DESCRIPTION = (
    "Zhao et al., 'GaLore: Memory-Efficient LLM Training by Gradient Low-Rank Projection', "
    "arXiv:2403.03507. Shapes: LLaMA-7B (32 layers, dim 4096, MLP hidden 11008, 32 heads, vocabulary "
    "32000, untied embedding and output head: 6,738,415,616 parameters) as jaxopt_lab.models.Llama, built "
    "with jax.eval_shape; every state by jax.eval_shape(tx.init, params) and optim.state_bytes. Rank 1024, "
    "the paper's 7B setting (GaLore README: '--rank 1024' for LLaMA-7B). Accounting as the official code "
    "(jiaweizzhao/GaLore torchrun_main.py, target_modules_list = ['attn', 'mlp']): the 4 attention and 3 "
    "MLP matrices of every layer are projected ('std' side: moments r x M, projector N x r for an m x n "
    "matrix, M = max(m, n)); embedding, output head and RMSNorm scales keep Adam (8-bit Adam for the "
    "8-bit methods). Baseline as the abstract: 'compared to a BF16 baseline' = Adam with BF16 moments; "
    "16-bit ratios are taken between float32 states on both sides (our GaLore family keeps float32 "
    "states), which is the same ratio. 8-bit GaLore = GaLoreAdamW8bit: int8 block-wise moments "
    "(block 256 + one float32 scale per block), projector unquantized (float32 here, the parameter's BF16 "
    "in the official code); Q-GaLore as its official code (arXiv:2407.08296: int4 projector, adaptive "
    "refresh gap, int8 weights with a stochastic-rounding key) is measured too. Tolerance fixed a priori: the quoted percentages have one decimal, so a reproduction "
    "must match within half a unit of it (0.05 percentage points). "
    "Result and root cause (full size): measured bytes equal the closed forms for every method. The "
    "official accounting gives a GaLore reduction of 65.11% (paper_accounting_galore_bf16 = 0.65108; "
    "measured reduction_galore = 0.65108, Fira the same), not 65.5%; no accounting variant we tried "
    "gives 65.5% (embedding and head projected too: 67.96%; projector not counted: 72.08%; see the "
    "summary's paper_accounting_* values), and the rank that would give 65.5% in the official "
    "accounting is r ~ 1011, not a setting of the paper. The 0.4-point gap is therefore most likely "
    "the rounding of the paper's estimated GB figures (Figure 1: 'estimated memory consumption'), which "
    "its text does not let us recompute. 82.5% is reproduced only when every state entry, the "
    "projector included, takes one byte (closed form 82.55% = 1 - 0.349/2, the 16-bit GaLore ratio "
    "halved; our Q-GaLore, whose int4 projector goes below one byte per entry, measures 83.96%). "
    "With the official GaLoreAdamW8bit's BF16 projector the closed form gives 79.07%, and our 8-bit "
    "GaLore, whose projector stays float32, measures 71.88%. 8-bit Adam measures 49.2% (its own "
    "block scales), SMMF 96.8%. Figure state_memory.png: state GB per method with the paper's two "
    "levels.")
_Q65 = ("'Our approach reduces memory usage by up to 65.5% in optimizer states' (arXiv:2403.03507, "
        "abstract; LLaMA 7B, rank 1024)")
_Q82 = ("'Our 8-bit GaLore further reduces optimizer memory by up to 82.5% ... compared to a BF16 "
        "baseline' (arXiv:2403.03507, abstract)")
_HALF_UNIT = 0.0005  # half a unit of the quoted percentages' last digit (0.05 percentage points)
CLAIMS = [
    Claim("measured_bytes_equal_closed_forms", "state bytes of Adam, GaLore, Fira, 8-bit GaLore (int8 "
          "projector), 8-bit Adam and SMMF equal the closed-form counts (optim.formula_bytes: GaLore "
          "4(2rM + rN) per matrix, Adam 8 bytes per entry, int8 blocks + float32 scales, SMMF "
          "8(m^ + n^) + m^n^/8)", key="formula_match_all", op=">=", bound=1.0),
    Claim("galore_65_5_percent_measured", _Q65, key="reduction_galore", op="~", bound=0.655,
          atol=_HALF_UNIT),
    Claim("galore_65_5_percent_closed_form", _Q65 + "; closed form in the official accounting",
          key="paper_accounting_galore_bf16", op="~", bound=0.655, atol=_HALF_UNIT),
    Claim("galore_8bit_82_5_percent_measured", _Q82 + "; our 8-bit GaLore (GaLoreAdamW8bit's layout)",
          key="reduction_galore_8bit", op="~", bound=0.825, atol=_HALF_UNIT),
    Claim("galore_8bit_82_5_percent_closed_form", _Q82 + "; closed form with the official BF16 "
          "projector", key="paper_accounting_galore_8bit_bf16_projector", op="~", bound=0.825,
          atol=_HALF_UNIT),
]
QUICK = {"model.vocab_size": 1000, "model.dim": 256, "model.n_layers": 2, "model.n_heads": 4,
         "model.hidden_dim": 688, "rank": 64}


def get_config():
    c = ml_collections.ConfigDict()
    c.experiment = "galore_7b_memory"
    c.seed = 0
    c.model = ml_collections.ConfigDict({"vocab_size": 32000, "dim": 4096, "n_layers": 32, "n_heads": 32,
                                         "hidden_dim": 11008, "max_seq_len": 2048})
    c.rank = 1024
    return c
