"""jaxopt-lab reproduce energy-lower-bound

Lowest training cross-entropy of small LLaMA-style byte models (widths 16/32/64, 2 layers) trained on
4k / 16k / 64k tokens of the standard-library corpus, against the ~1 nat lower bound of "Beyond Scaling Laws".
"""

import ml_collections

from jaxopt_lab.lab import Claim

TITLE = "Minimum achievable cross-entropy vs the ~1 lower bound of 'Beyond Scaling Laws'"
DESCRIPTION = (
    "'Beyond Scaling Laws: Understanding Transformer Performance with Associative Memory' (Niu et al., "
    "arXiv:2405.08707). Here, on 2 CPU cores: jaxopt_lab.models.Llama (2 layers, 4 heads, SwiGLU 2x "
    "width) at widths 16, 32, 64 (13k, 37k, 115k parameters) on 4k, 16k and 64k bytes of the Python "
    "standard-library corpus (byte vocabulary 256, context 64), Adam 3e-3 with warm-up and cosine "
    "decay, batch 16, 800 steps (200 epochs of the 4k set, 12 of the 64k set). Observed minimum = "
    "lowest cross-entropy (nats) on 64 evenly spaced windows of a run's own training data over the "
    "run, then over all 9 runs. The bound is taken as the abstract states it: a constant approximately "
    "equal to 1 (no tolerance added). "
    "Differences from the paper: the paper supports its Proposition with vanilla Transformers trained "
    "on the 2M-token Question-Formation dataset (McCoy et al. 2020; sentences from a context-free "
    "grammar, 68-word vocabulary; settings of Murty et al. 2023), whose training losses 'stabilize at "
    "a value of approximately 1' (paper, Figure 4), and with GPT-2 small models on various data sizes; "
    "the bound is derived under its Section-5 conditions on the memorised patterns (well separated, "
    "latent radius checked on GPT-2 in its Section 6.1; not checked here). We have neither that data "
    "set offline nor the compute for 2M tokens; our data is 30-500x smaller, byte-level, and our "
    "models have 0.04-5 training tokens per parameter (D/N). "
    "Root cause of the FAIL (measured): the floor is not a constant here but rises with D/N, i.e. with "
    "how much each parameter must memorise (figure min_cross_entropy_vs_tokens_per_param.png). Lowest "
    "training CE by D/N: 0.116 (D/N 0.036), 0.298 (0.11), 0.330 (0.14), 1.250 (0.31), 0.976 (0.44), "
    "1.055 (0.57), 1.906 (1.22), 1.594 (1.77), 2.167 (4.89); the 4 runs below 1 nat all have "
    "D/N <= 0.44 (the 4k- and 16k-byte sets at dims 32 and 64) and every run with D/N >= 0.57 stays "
    "above 1: they memorise their training windows (held-out CE of every run stays >= 2.08 nats). So an "
    "unconstrained softmax LM on a small enough training set goes below the constant; the bound, as "
    "stated, holds under the paper's conditions and data regime, not as a floor for every trained "
    "Transformer. The claim is kept as the abstract states it.")


CLAIMS = [
    Claim("ce_bounded_below", "'Under specific conditions, we show that the minimum achievable cross-entropy "
          "loss is bounded from below by a constant approximately equal to 1.' [abstract, arXiv:2405.08707]",
          key="min_train_cross_entropy", op=">=", bound="bound"),
]

QUICK = {"dims": (16,), "data_sizes": (1024, 4096), "train.steps": 20, "train.log_every": 10,
         "train.warmup": 5, "eval_windows": 8, "batch_size": 8, "seq_len": 32}


def get_config():
    c = ml_collections.ConfigDict()
    c.experiment = "hopfield_energy_bound"
    c.seed = 0
    c.dims = (16, 32, 64)
    c.data_sizes = (4096, 16384, 65536)
    c.n_layers = 2
    c.n_heads = 4
    c.seq_len = 64
    c.batch_size = 16
    c.eval_windows = 64
    c.bound = 1.0
    c.train = ml_collections.ConfigDict({"steps": 800, "learning_rate": 3e-3, "warmup": 50,
                                         "log_every": 100})
    return c
