"""The sharpness, GSAM-vs-SAM, SAM-edge, optimizer-benchmark and optimizer-zoo experiments refuse a bad
config from their CONFIG_SPEC / CONFIG_RULES alone, before they (and jax) are imported; their shipped
configs still load."""

from jaxopt_lab.lab.config import load_config
from jaxopt_lab.lab.project import project_root

CONFIGS = project_root() / "configs"
SHARPNESS = CONFIGS / "sharpness" / "label_noise.py"
ASAM_RANKING = CONFIGS / "reproduce" / "sam_asam_ranking.py"
GSAM = CONFIGS / "reproduce" / "gsam_reduces_to_sam.py"
SAM_EDGE = CONFIGS / "reproduce" / "sam_far_from_home.py"
BENCHMARK = CONFIGS / "benchmark" / "optimizers.py"
ZOO = CONFIGS / "zoo" / "all_optimizers.py"
NAMELESS_ENTRY = '''
import ml_collections
def get_config():
    return ml_collections.ConfigDict({"experiment": "sharpness", "reference": "sgd",
                                      "optimizers": {"sgd": {"learning_rate": 0.05}}})
'''

REFUSALS = [
    (SHARPNESS, ["optimizers.sgd.name=sgdd"], "'optimizers.sgd.name' = 'sgdd': must be one of"),
    (ASAM_RANKING, ["optimizers.asam.mask=biases"],
     "'optimizers.asam.mask' = 'biases': must be one of 'weights', 'kernels', 'all'"),
    (NAMELESS_ENTRY, [], "'optimizers' = {'sgd': {'learning_rate': 0.05}}: must be entries that each state "
                         "name (a registered optimizer) and learning_rate"),
    (SHARPNESS, ["optimizers.sam.learning_rate=0.0"], "'optimizers.sam.learning_rate' = 0.0: must be a number > 0"),
    (SHARPNESS, ["reference=sgdx"], "'reference' = 'sgdx': must be one of the optimizer labels ["),
    (SHARPNESS, ["only=('sam', 'nope')"], "'only' = ('sam', 'nope'): must be optimizer labels"),
    (SHARPNESS, ["comparisons=(('sgd', 'nope'),)"], "'comparisons' = (('sgd', 'nope'),): must be pairs"),
    (SHARPNESS, ["schedule=linear"], "'schedule' = 'linear': must be one of 'constant', 'step', 'cosine'"),
    (SHARPNESS, ["budget_epochs=(0,)"], "'budget_epochs' = (0,): must be a (possibly empty) sequence"),
    (SHARPNESS, ["budget_seeds=0"], "'budget_seeds' = 0: must be an integer >= 1"),
    (SHARPNESS, ["budget_epochs=(5,)", "budget_seeds=5"], "'budget_seeds' = 5: must be <= seeds = 4"),
    (SHARPNESS, ["eval_every=7"], "'eval_every' = 7: must be a divisor of epochs = 60"),
    (SHARPNESS, ["batch_size=5000"], "'batch_size' = 5000: must be <= the training set size 1347"),
    (CONFIGS / "sharpness" / "m_sharpness.py", ["batch_size=60"],
     "'batch_size' = 60: must be divisible by every optimizer's num_chunks"),
    (SHARPNESS, ["hessian_batch=5000"], "'hessian_batch' = 5000: must be <= the training set size 1347"),
    (GSAM, ["lr_min=0.5"], "'lr_min' = 0.5: must be < learning_rate = 0.1"),
    (GSAM, ["rho_min_control=0.1"], "'rho_min_control' = 0.1: must be < rho = 0.05"),
    (GSAM, ["batch_size=5000"], "'batch_size' = 5000: must be <= the training set size 1347"),
    (SAM_EDGE, ["eval_every=30"], "'eval_every' = 30: must be a divisor of steps = 2000"),
    (SAM_EDGE, ["etas=(0.2, -0.1)"], "'etas' = (0.2, -0.1): must be a non-empty sequence, each element a number > 0"),
    (SAM_EDGE, ["rhos=()"], "'rhos' = (): must be a non-empty sequence"),
    (BENCHMARK, ["lr.min=2.0"], "'lr.min' = 2.0: must be <= lr.max = 1.0"),
    (BENCHMARK, ["digits_mlp.eval_every=7"], "'digits_mlp.eval_every' = 7: must be a divisor of digits_mlp.steps"),
    (BENCHMARK, ["digits_cnn.eval_every=7"], "'digits_cnn.eval_every' = 7: must be a divisor of digits_cnn.steps"),
    (BENCHMARK, ["llama.eval_every=7"], "'llama.eval_every' = 7: must be a divisor of llama.steps = 300"),
    (BENCHMARK, ["digits_mlp.batch_size=5000"], "'digits_mlp.batch_size' = 5000: must be <= the training set"),
    (BENCHMARK, ["digits_cnn.batch_size=5000"], "'digits_cnn.batch_size' = 5000: must be <= the training set"),
    (BENCHMARK, ["optimizers=('adam',)", "exclude=('adam',)"],
     "'exclude' = ('adam',): must be missing at least one of the optimizers benchmarked, ('adam',)"),
    (BENCHMARK, ["llama.n_heads=3"], "'llama.n_heads' = 3: dim must be a multiple of n_heads"),
    (ZOO, ["optimizers=('adam',)", "exclude=('adam',)"],
     "'exclude' = ('adam',): must be missing at least one of the optimizers run, ('adam',)"),
    (ZOO, ["lr.min=2.0"], "'lr.min' = 2.0: must be <= lr.max = 1.0"),
    (ZOO, ["digits.batch_size=5000"], "'digits.batch_size' = 5000: must be <= the training set size of digits"),
]


def test_refused_before_import_and_shipped_configs_load(refused_before_import):
    messages = refused_before_import(REFUSALS)
    assert all(m.startswith("config key '") for m in messages)  # each names the key to change first
    # a workload's (task's) rules hold only when it is run
    load_config(BENCHMARK, ["workloads=('digits_mlp',)", "llama.eval_every=7", "digits_cnn.batch_size=5000"])
    load_config(ZOO, ["tasks=('lm',)", "digits.batch_size=5000"])
    for path in (SHARPNESS, ASAM_RANKING, GSAM, SAM_EDGE, BENCHMARK, ZOO, CONFIGS / "sharpness" / "m_sharpness.py",
                 CONFIGS / "sharpness" / "sam_on.py", CONFIGS / "reproduce" / "sam_label_noise.py",
                 CONFIGS / "zoo" / "adaptive.py", CONFIGS / "reproduce" / "grams_vs_adam.py"):
        for quick in (False, True):  # full size and the QUICK overrides
            load_config(path, quick=quick)
