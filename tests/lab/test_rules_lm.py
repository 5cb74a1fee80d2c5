"""The LM experiments' cross-key rules (lm_pretrain, shampoo_vs_adam, galore_7b_memory, bench_train_engine)
refuse a config before the experiment (and jax) is imported, and their shipped configs, full and quick,
still pass them."""

import pytest

from jaxopt_lab.lab.config import load_config
from jaxopt_lab.lab.project import project_root
from jaxopt_lab.lab.rules import projector_kinds

CONFIGS = project_root() / "configs"
LM = CONFIGS / "lowrank" / "lm_pretrain.py"
SHAMPOO = CONFIGS / "reproduce" / "shampoo_vs_adam.py"
GALORE_7B = CONFIGS / "reproduce" / "galore_7b_memory.py"
BENCH = CONFIGS / "bench" / "train_engine.py"
SHIPPED = {LM: "lm_pretrain", CONFIGS / "reproduce" / "fira_vs_galore.py": "lm_pretrain",
           CONFIGS / "reproduce" / "projection_quality.py": "lm_pretrain", SHAMPOO: "shampoo_vs_adam",
           GALORE_7B: "galore_7b_memory", BENCH: "bench_train_engine"}


def _table(experiment, optimizers):
    """A config of ``experiment`` with the optimizer table ``optimizers``."""
    return f"""
        import ml_collections
        def get_config():
            return ml_collections.ConfigDict({{"experiment": {experiment!r}, "optimizers": {optimizers!r}}})
    """


SIDE = "64, the shortest side of the projected matrices (model dim 64, hidden 128)"
# (config path or text, overrides, fragment of the refusal): one row per rule or moved spec key
REFUSALS = [
    (_table("lm_pretrain", {"adam": {"name": "adam"}, "x": {"learning_rate": 0.1}}), [],
     "'optimizers' = {'adam': {'name': 'adam'}, 'x': {'learning_rate': 0.1}}: must be a non-empty table"),
    (LM, ["optimizers.adam.name=adamm"], "'optimizers.adam.name' = 'adamm': must be one of"),
    (LM, ["optimizers.adam.learning_rate=-0.001"], "'optimizers.adam.learning_rate' = -0.001: must be a number > 0"),
    (_table("lm_pretrain", {"adam": {"name": "adam", "rank": 0}}), [], "'optimizers.adam.rank' = 0: must be an "
                                                                        "integer >= 1"),
    (LM, ["reference=nope"], "'reference' = 'nope': must be one of the labels of 'optimizers' ['adam', "),
    (LM, ["only=('adam','x')"], "'only' = ('adam', 'x'): must be labels of 'optimizers' ['adam', "),
    (LM, ["steps=601"], "'steps' = 601: must be a multiple of log_every = 50"),
    (LM, ["projection.every=70"], "'projection.every' = 70: must be a multiple of log_every = 50"),
    (LM, ["projection.kinds=('svd','bogus')"], "'projection.kinds' = ('svd', 'bogus'): must be projector kinds "
                                               "among optim.PROJECTORS = ('svd', "),
    (LM, ["model.n_heads=3"], "'model.n_heads' = 3: must be a divisor of the model dim 64 into heads of even size"),
    (LM, ["model.dim=36"], "'model.n_heads' = 0: must be a divisor of the model dim 36 into heads of even size "
                           "(rotary pairs; 0 keeps the preset's 4)"),
    (_table("lm_pretrain", {"adam": {"name": "adam"}, "g": {"name": "galore", "rank": 65},
                            "f": {"name": "frugal", "rank": 65}}), [],
     f"must be entries whose rank is <= {SIDE}; too large: ['optimizers.g.rank']"),
    (LM, ["rank=65"], f"'rank' = 65: must be <= {SIDE}"),
    (LM, ["projection.ranks=(4,64)"], f"'projection.ranks' = (4, 64): must be ranks below {SIDE}"),
    (LM, ["projection.ranks=(0,)"], "'projection.ranks' = (0,): must be a (possibly empty) sequence, each "
                                    "element an integer >= 1"),
    (LM, ["mesh.data=3"], "'batch_size' = 16: must be divisible by the mesh size mesh.data x mesh.fsdp = 3"),
    # shampoo_vs_adam: lm_pretrain's rules on the model and the table, and its own
    (SHAMPOO, ["model.n_heads=3"], "'model.n_heads' = 3: must be a divisor of the model dim 32"),
    (SHAMPOO, ["reference=x"], "'reference' = 'x': must be one of the labels of 'optimizers' ['adam', 'shampoo']"),
    (SHAMPOO, ["optimizers.shampoo.name=shampo"], "'optimizers.shampoo.name' = 'shampo': must be one of"),
    (_table("shampoo_vs_adam", {"adam": {"name": "adam", "learning_rate": 0.1}}), [],
     "must be entries without a learning rate (it is swept over 'lr'); set in: ['optimizers.adam.learning_rate']"),
    (SHAMPOO, ["steps=401"], "'steps' = 401: must be a multiple of eval_every = 20"),
    (SHAMPOO, ["lr.min=0.5"], "'lr.min' = 0.5: must be <= lr.max = 0.1"),
    (GALORE_7B, ["model.n_heads=3"], "'model.n_heads' = 3: must be a divisor of model.dim = 4096 into heads of "
                                     "even size"),
    (GALORE_7B, ["model.max_seq_len=0"], "'model.max_seq_len' = 0: must be an integer >= 1"),
    (GALORE_7B, ["rank=4096"], "'rank' = 4096: must be < min(model.dim, model.hidden_dim) = 4096"),
    (BENCH, ["sharded=('adam','nope')"], "'sharded' = ('adam', 'nope'): must be a non-empty sequence, each "
                                         "element one of"),
]


def test_config_errors_of_the_lm_experiments_come_before_any_import(refused_before_import):
    messages = refused_before_import([(str(config), overrides, fragment) for config, overrides, fragment in REFUSALS])
    assert all(m.startswith("config key '") for m in messages)  # each names the key to change first


@pytest.mark.parametrize("quick", [False, True])
def test_shipped_configs_pass_the_rules(quick):
    for path, experiment in SHIPPED.items():
        assert load_config(path, quick=quick).experiment == experiment


def test_projector_kinds_are_the_optimizers():
    from jaxopt_lab import optim

    assert projector_kinds() == optim.PROJECTORS
