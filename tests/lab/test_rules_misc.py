"""The sensing and Hopfield experiments' cross-key rules refuse a config before the experiment (and jax)
is imported, and their shipped configs, full and quick, still pass them."""

import pytest

from jaxopt_lab.lab.config import load_config
from jaxopt_lab.lab.project import project_root

REPRODUCE = project_root() / "configs" / "reproduce"
CONFIGS = {"sensing_incremental": "incremental_learning", "sensing_overparam": "overparam_slowdown",
           "sensing_robust": "robust_subgradient", "sensing_scaledgd": "scaledgd_conditioning",
           "hopfield_energy_bound": "energy_lower_bound", "hopfield_pooling_mil": "hopfield_pooling_mil"}

# (experiment, overrides of its shipped config, fragment of the refusal): one row per rule
REFUSALS = [
    ("sensing_incremental", ["problem.n=3"], "'problem.eigenvalues' = (1.0, 0.5, 0.25, 0.125): must be strictly "
                                             "decreasing with at most problem.n = 3 entries"),
    ("sensing_incremental", ["problem.eigenvalues=(1.0,0.5,0.5)", "ks=(3,)"],
     "'problem.eigenvalues' = (1.0, 0.5, 0.5): must be strictly decreasing"),
    ("sensing_incremental", ["ks=(2,8)"], "'ks' = (2, 8): must be a tuple of widths containing the rank 4 = "
                                          "len(problem.eigenvalues)"),
    ("sensing_overparam", ["problem.rank=21"], "'problem.rank' = 21: must be <= problem.n = 20"),
    ("sensing_overparam", ["sym.ks=(2,)"], "'sym.ks' = (2,): must be a tuple of widths containing "
                                           "problem.rank = 2 and one above it"),
    ("sensing_overparam", ["asym.k=2"], "'asym.k' = 2: must be > problem.rank = 2 (over-parameterized)"),
    ("sensing_overparam", ["asym.num_steps=5000"], "'asym.num_steps' = 5000: must be >= num_steps = 6000"),
    ("sensing_robust", ["problem.rank=21"], "'problem.rank' = 21: must be <= problem.n = 20"),
    ("sensing_robust", ["widths=(1,4)"], "'widths' = (1, 4): must be widths >= problem.rank = 2"),
    ("sensing_robust", ["compare_width=1"], "'compare_width' = 1: must be >= problem.rank = 2"),
    ("sensing_scaledgd", ["problem.rank=11"], "'problem.rank' = 11: must be <= problem.n = 10"),
    ("sensing_scaledgd", ["k=1"], "'k' = 1: must be >= problem.rank = 2"),
    ("hopfield_energy_bound", ["dims=()"], "'dims' = (): must be a non-empty sequence"),
    ("hopfield_energy_bound", ["dims=(16,30)"], "'dims' = (16, 30): must be multiples of 2 * n_heads = 8"),
    ("hopfield_energy_bound", ["data_sizes=(100,4096)"], "'data_sizes' = (100, 4096): must be sizes of at "
                                                         "least 2 * (seq_len + 1) = 130 tokens"),
    ("hopfield_energy_bound", ["train.log_every=7"], "'train.log_every' = 7: must be a divisor of train.steps = 800"),
    ("hopfield_pooling_mil", ["bag_size.min=17"], "'bag_size.min' = 17: must be <= bag_size.max = 16"),
    ("hopfield_pooling_mil", ["max_positives=9"], "'max_positives' = 9: must be <= bag_size.min = 8"),
    ("hopfield_pooling_mil", ["model.num_heads=3"], "'model.num_heads' = 3: must be a divisor of model.features = 32"),
    ("hopfield_pooling_mil", ["train.log_every=7"], "'train.log_every' = 7: must be a divisor of train.steps = 600"),
]


def test_config_errors_of_sensing_and_hopfield_experiments_come_before_any_import(refused_before_import):
    messages = refused_before_import([(REPRODUCE / f"{CONFIGS[name]}.py", overrides, fragment)
                           for name, overrides, fragment in REFUSALS])
    assert all(m.startswith("config key '") for m in messages)  # each names the key to change first


@pytest.mark.parametrize("quick", [False, True])
def test_shipped_configs_pass_the_rules(quick):
    for name, config in CONFIGS.items():
        assert load_config(REPRODUCE / f"{config}.py", quick=quick).experiment == name
