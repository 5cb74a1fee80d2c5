"""The ``CONFIG_DEFAULTS`` tables of the OT, sensing, Hopfield and benchmark experiments, and the configs
trimmed to what they change.

Read as the lab reads them (``ast``, nothing imported: no jax): every key an experiment's ``CONFIG_SPEC``
checks has a default; a trimmed shipped config resolves to exactly the values it stated in full before
(recorded below); and a config that still states every key gets nothing added by the defaults (so its
resolved config, and its hash, is what it was).
"""

import ml_collections
import pytest

from jaxopt_lab.lab.config import flat_items, load_config, load_config_module
from jaxopt_lab.lab.project import declared, project_root

ROOT = project_root()

EXPERIMENTS = ("ot_race", "ot_large_scale", "p2ot", "bench_ot", "bench_ot_scale", "sensing_incremental",
               "sensing_overparam", "sensing_robust", "sensing_scaledgd", "bench_sensing", "hopfield_capacity",
               "hopfield_energy_bound", "hopfield_pooling_mil", "bench_hopfield", "bench_sweep_speedup")

# Configs that state every key of their experiment (reproductions, and the OT benchmark configs): the defaults must add nothing to them.
COMPLETE = ("bench/ot.py", "bench/ot_scale.py", "reproduce/sns_iterations.py",
            "reproduce/mirror_sinkhorn.py", "reproduce/ot_large_scale.py", "reproduce/p2ot_imbalanced.py",
            "reproduce/incremental_learning.py", "reproduce/overparam_slowdown.py",
            "reproduce/robust_subgradient.py", "reproduce/scaledgd_conditioning.py",
            "reproduce/hopfield_capacity.py", "reproduce/energy_lower_bound.py",
            "reproduce/hopfield_pooling_mil.py")

# The trimmed configs' values as they stated them in full before trimming.
BEFORE_TRIM = {
    "ot/race.py": {
        "experiment": "ot_race", "seed": 0, "study": "race", "problems": ("cloud", "grid_w1", "grid_w2"),
        "solvers": ("sinkhorn", "sinkhorn_lse", "ott", "sns"), "n": 500, "grid_size": 24, "epsilon_scale": 0.01,
        "random_assignment_eta": 1200.0, "epsilon_sweep": (), "target_error": 1e-05, "float64": False,
        "repeats": 3, "sinkhorn.max_iterations": 20000, "sns.warmup_iterations": 20, "sns.max_iterations": 300,
        "sns.kept_per_row": 0.2, "sns.cg_max_iterations": 50, "mirror.n": 50, "mirror.noise": 1.0,
        "mirror.tau": 1.0, "mirror.iterations": (100, 300, 1000, 3000, 10000),
        "mirror.sweep_iterations": (100, 1000, 10000), "mirror.tau_sweep": (1.0, 100.0, 1000.0, 10000.0)},
    "ot_clustering/p2ot_digits.py": {
        "experiment": "p2ot", "seed": 0, "compare_uot": True, "n_seeds": 3, "data.source": "digits",
        "data.n_head": 500, "data.n_classes": 10, "data.imbalance_ratio": 0.1, "data.dim": 16,
        "data.separation": 4.0, "head.noise": 1.0, "head.temperature": 1.0, "p2ot.epsilon": 0.1,
        "p2ot.gamma": 1.0, "p2ot.rho_base": 0.1, "p2ot.rho_upper": 1.0, "sela.lamb": 25.0, "train.epochs": 50,
        "train.steps_per_epoch": 10, "train.learning_rate": 0.01},
    "hopfield/capacity.py": {
        "experiment": "hopfield_capacity", "seed": 0, "dim": 64, "corruption": 0.1, "num_queries": 32,
        "max_iterations": 30, "powers": (3, 4), "beta_scales": (0.25, 1.0, 4.0), "success_level": 0.9,
        "sizes.min": 4, "sizes.max_over_dim": 8.0, "sizes.num": 16, "classical.step": 1,
        "classical.max_over_dim": 0.5, "classical.stability_overlap": 0.967},
    "bench/sensing.py": {
        "experiment": "bench_sensing", "seed": 0, "repeats": 5, "sweep.n": 8, "sweep.rank": 2, "sweep.m": 120,
        "sweep.num_steps": 300, "sweep.seeds": 4, "sweep.ks": (2, 4), "sweep.alphas": (0.01, 0.03, 0.1, 0.3),
        "rank_one.n": 2000, "rank_one.k": 10, "rank_one.m": 10000, "rank_one.dense_m": 16},
    "bench/hopfield.py": {
        "experiment": "bench_hopfield", "seed": 0, "num_queries": 1024, "num_patterns": 2048, "dim": 64,
        "beta": 16.0, "noise": 0.5, "threshold": 1e-5, "max_iterations": 50, "repeats": 15},
    "bench/sweep_speedup.py": {  # the quickstart config (train_classifier) at 500 steps, no checkpoints
        "experiment": "bench_sweep_speedup", "seed": 0, "data.seed": 0, "data.test_fraction": 0.25,
        "data.label_noise": 0.0, "model.kind": "mlp", "model.hidden": (64, 64), "model.channels": (16, 32),
        "optimizer.name": "adam", "optimizer.learning_rate": 1e-3, "train.steps": 500, "train.batch_size": 128,
        "train.log_every": 50, "train.checkpoint_every": 0, "mesh.data": 0, "mesh.fsdp": 1,
        "bench.seeds": 16, "bench.repeats": 3},
}


def _typed(items):
    """``{dotted key: (type, value)}`` of a config or its flat items; a list counts as the tuple it stands for."""
    items = flat_items(items) if isinstance(items, ml_collections.ConfigDict) else items.items()
    return {k: (tuple, tuple(v)) if isinstance(v, (list, tuple)) else (type(v), v) for k, v in items}


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_declares_a_default_for_every_key_it_checks(name):
    """(That each default passes its rule is checked for every table in tests/lab/test_defaults.py.)"""
    described = declared(ROOT / "experiments" / f"{name}.py")
    assert described is not None and described.complete and described.defaults is not None, name
    assert not described.keys - set(described.defaults), f"{name}: CONFIG_SPEC keys without a default"


@pytest.mark.parametrize("path", sorted(BEFORE_TRIM))
def test_trimmed_config_resolves_to_the_values_it_stated_before_trimming(path):
    assert _typed(load_config(ROOT / "configs" / path)) == _typed(BEFORE_TRIM[path])


@pytest.mark.parametrize("path", COMPLETE)
def test_defaults_add_nothing_to_a_config_that_states_every_key(path):
    stated = load_config_module(ROOT / "configs" / path).get_config()
    assert _typed(load_config(ROOT / "configs" / path)) == _typed(stated)

