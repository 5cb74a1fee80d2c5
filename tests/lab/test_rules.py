"""Cross-key config rules (jaxopt_lab.lab.rules): their messages, what they may call, how the lab reads
them without importing the experiment, and that the runtime checks them again."""

import textwrap

import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from jaxopt_lab.lab import ConfigError
from jaxopt_lab.lab.config import Each, Range, validate
from jaxopt_lab.lab.project import declared, experiment_path, load_experiment, project_root
from jaxopt_lab.lab.rules import Rule, check_rules, digits_train_size, installed, llama_config

CFG = ml_collections.ConfigDict({"experiment": "x", "seed": 0, "train": {"steps": 10, "log_every": 4},
                                 "ks": (1, 2, 3), "problem": {"n": 2}})


def test_a_rule_that_holds_passes_and_one_that_fails_names_key_value_and_allowed():
    check_rules(CFG, [Rule("train.steps", "train.steps > train.log_every", "> {train.log_every}")])
    with pytest.raises(ConfigError) as e:
        check_rules(CFG, [Rule("train.steps", "train.steps % train.log_every == 0",
                               "a multiple of train.log_every = {train.log_every} (so {train.steps // 4} chunks "
                               "would leave {train.steps % train.log_every} steps)")])
    assert str(e.value) == ("config key 'train.steps' = 10: must be a multiple of train.log_every = 4 "
                            "(so 2 chunks would leave 2 steps)")


def test_generator_expressions_see_the_config_and_rules_run_in_order():
    rules = [Rule("ks", "all(k <= problem.n for k in ks)", "widths <= problem.n = {problem.n}"),
             Rule("train.steps", "False", "never reached")]
    with pytest.raises(ConfigError, match=r"config key 'ks' = \(1, 2, 3\): must be widths <= problem.n = 2"):
        check_rules(CFG, rules)


def test_a_condition_that_raises_is_one_line_with_its_message():
    model = ml_collections.ConfigDict({"dim": 60, "n_heads": 8})
    cfg = ml_collections.ConfigDict({"experiment": "x", "model": model})
    with pytest.raises(ConfigError) as e:
        check_rules(cfg, [Rule("model.n_heads", "llama_config('tiny', 64, model).head_dim > 0", "unused")])
    assert str(e.value).startswith("config key 'model.n_heads' = 8: dim must be a multiple of n_heads")


@pytest.mark.parametrize("fields,message", [
    (("", "x > 0", "ok"), "key must be a non-empty str"),
    (("x", "x >", "ok"), "condition 'x >' is not a Python expression"),
    (("x", "x > 0", "{x"), "allowed '{x' is not a Python expression"),
])
def test_a_malformed_rule_is_refused_when_declared(fields, message):
    with pytest.raises(ConfigError, match=message):
        Rule(*fields)


def test_spec_keys_with_a_star_check_every_entry_that_states_the_field():
    cfg = ml_collections.ConfigDict({"experiment": "x", "seed": 0, "optimizers": {
        "adam": {"name": "adam", "learning_rate": 1e-3}, "sam": {"name": "sam"},
        "sgd": {"name": "sgd", "learning_rate": -1.0}}})
    spec = {"optimizers.*.learning_rate": Range(0.0, open_low=True)}
    with pytest.raises(ConfigError, match=r"'optimizers.sgd.learning_rate' = -1.0: must be a number > 0.0"):
        validate(cfg, spec)
    cfg.optimizers.sgd.learning_rate = 0.1
    validate(cfg, spec)  # sam states no learning rate: not checked


def test_each_may_be_empty_only_when_asked():
    assert Each(Range(1, integer=True), may_be_empty=True).allows(())
    assert not Each(Range(1, integer=True)).allows(())
    assert not Each(Range(1, integer=True), may_be_empty=True).allows((0,))


@pytest.mark.parametrize("test_fraction", [0.1, 0.25, 0.9])
def test_digits_train_size_is_the_data_sets(test_fraction):
    from jaxopt_lab import data

    assert digits_train_size(test_fraction) == len(data.digits(test_fraction=test_fraction).y_train)


def test_llama_config_is_the_models_preset_with_the_groups_nonzero_fields():
    from jaxopt_lab import models

    model = ml_collections.ConfigDict({"dim": 0, "n_layers": 3, "n_heads": 0})
    assert llama_config("mini", 64, model) == models.LlamaConfig.mini(max_seq_len=64, n_layers=3)
    with pytest.raises(ValueError, match="lm_preset 'huge' is not one of"):
        llama_config("huge", 64, model)


def test_installed_finds_without_importing():
    assert installed("json") and not installed("no_such_package_for_jaxopt_lab")


def test_the_lab_reads_rules_without_import_including_another_experiments():
    classifier = declared(experiment_path("train_classifier"))
    compare = declared(experiment_path("compare_optimizers"))
    assert classifier.complete and compare.complete
    assert classifier.rules == load_experiment("train_classifier").CONFIG_RULES
    assert compare.rules[:len(classifier.rules)] == classifier.rules and len(compare.rules) > len(classifier.rules)


def test_config_errors_of_the_classifier_come_before_any_import(refused_before_import):
    quickstart = str(project_root() / "configs" / "quickstart.py")
    compare = textwrap.dedent('''
        import ml_collections
        def get_config():
            return ml_collections.ConfigDict({"experiment": "compare_optimizers",
                                              "compare": {"learning_rates": (0.1,)}})
    ''')
    refused_before_import([
        (quickstart, ["train.checkpoint_every=70"], "'train.checkpoint_every' = 70: must be a multiple of "
                                                    "train.log_every = 50"),
        (quickstart, ["data.test_fraction=0.5", "train.batch_size=900"],
         "'train.batch_size' = 900: must be <= the training set size 898"),
        (quickstart, ["mesh.data=3"], "'train.batch_size' = 128: must be divisible by the mesh size"),
        (quickstart, ["model.channels=()"], "'model.channels' = (): must be a non-empty sequence"),
        (compare, [], "'compare.learning_rates' = (0.1,): must be one learning rate per name in compare.names"),
        (compare, ["train.checkpoint_every=7"], "'train.checkpoint_every' = 7: must be a multiple"),
    ])


def test_the_runtime_checks_rules_again_and_runs_a_hook_once(toy_project):
    from jaxopt_lab.lab.run import check_experiment

    calls = []
    experiment = type("Experiment", (), {
        "CONFIG_RULES": (Rule("steps", "steps % 2 == 0", "even"),),
        "check_config": staticmethod(calls.append)})
    experiment.validate = experiment.check_config  # the older name, aliased: one call, not two
    cfg = ml_collections.ConfigDict({"experiment": "toy", "seed": 0, "steps": 4})
    check_experiment(experiment, cfg)
    assert calls == [cfg]
    cfg.steps = 3
    with pytest.raises(ConfigError, match="'steps' = 3: must be even"):
        check_experiment(experiment, cfg)


def test_the_classifier_builds_its_optimizer_with_the_arguments_beside_its_name():
    from jaxopt_lab.lab.config import load_config
    from jaxopt_lab.lab.run import check_experiment

    classifier = load_experiment("train_classifier")
    quickstart = project_root() / "configs" / "quickstart.py"
    cfg = load_config(quickstart, ["optimizer.name=sgd", "optimizer.learning_rate=0.1"])
    with cfg.unlocked():
        cfg.optimizer.momentum = 0.9
    ours, reference = classifier.make_optimizer(cfg, 0.1), optax.sgd(0.1, momentum=0.9)
    params, grads = {"w": jnp.ones(3)}, {"w": jnp.asarray([1.0, -2.0, 3.0])}
    s, r = ours.init(params), reference.init(params)
    for _ in range(3):
        u, s = ours.update(grads, s, params)
        v, r = reference.update(grads, r, params)
    np.testing.assert_allclose(u["w"], v["w"], rtol=1e-6)
    cfg = load_config(quickstart, ["optimizer.name=galore"])
    with cfg.unlocked():
        cfg.optimizer.rank = 0
    with pytest.raises(ConfigError, match=r"config key 'optimizer' = .*rank"):
        check_experiment(classifier, cfg)
