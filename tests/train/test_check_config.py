"""Experiments on the engine refuse, before any work, what they cannot run: one ConfigError line naming
the key, the value and what is allowed."""

import pytest

from jaxopt_lab.lab import ConfigError
from jaxopt_lab.lab.config import load_config
from jaxopt_lab.lab.project import load_experiment, project_root
from jaxopt_lab.lab.run import check_experiment

CASES = [
    ("quickstart.py", ["train.batch_size=5000"], "'train.batch_size' = 5000: must be <= the training set"),
    ("quickstart.py", ["model.hidden=(0, 4)"], "'model.hidden' = \\(0, 4\\): must be a \\(possibly empty\\) sequence, each element an integer >= 1"),
    ("quickstart.py", ["mesh.fsdp=3"], "'mesh.fsdp' = 3: must divide the number of devices"),
    ("lowrank/lm_pretrain.py", ["optimizers.adam.learning_rate=-0.001"],
     "'optimizers.adam.learning_rate' = -0.001: must be a number > 0"),
    ("lowrank/lm_pretrain.py", ["model.n_heads=3"], "'model.n_heads' = 3: must be a divisor of the model dim 64"),
    ("lowrank/lm_pretrain.py", ["rank=100"], "'rank' = 100: must be <= 64"),
    ("sharpness/label_noise.py", ["batch_size=5000"], "'batch_size' = 5000: must be <= the training set"),
    ("zoo/all_optimizers.py", ["digits.batch_size=5000"], "'digits.batch_size' = 5000: must be <= the training set"),
    ("ot_clustering/p2ot_digits.py", ["data.dim=65"], "'data.dim' = 65: must be <= 64"),
    ("ot_clustering/p2ot_digits.py", ["p2ot.rho_upper=0.01"], "'p2ot.rho_upper' = 0.01: must be >= p2ot.rho_base"),
]


@pytest.mark.parametrize("config,overrides,message", CASES)
def test_refused_before_any_work(config, overrides, message):
    """Refused by the config check (before the import) or by the runtime's check after it."""
    with pytest.raises(ConfigError, match=message):
        cfg = load_config(project_root() / "configs" / config, overrides)
        check_experiment(load_experiment(cfg.experiment), cfg)


def test_lm_pretrain_accepts_every_feedable_optimizer():
    cfg = load_config(project_root() / "configs" / "lowrank" / "lm_pretrain.py",
                      ["optimizers.adam.name=sam"])
    check_experiment(load_experiment("lm_pretrain"), cfg)   # the engine feeds grad_fn: sam is accepted
