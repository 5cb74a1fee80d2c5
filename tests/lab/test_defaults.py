"""Experiments declare their default config (``CONFIG_DEFAULTS``); a config states only what it changes."""

import ast
import json
import pathlib
import sys
import textwrap

import ml_collections
import pytest

from jaxopt_lab.lab import cli, project
from jaxopt_lab.lab import config as config_lib

# A tiny experiment whose top-level import cannot succeed: anything that imports it fails, so these tests
# also show that the table is read with ast alone. run() is only reached through the `runnable` fixture.
DEFAULTED = '''
"""Scales a constant (a tiny experiment with a default table)."""
{imports}
from jaxopt_lab.lab import OneOf, Range

CONFIG_SPEC = {{"train.steps": Range(1, integer=True), "train.rule": OneOf(("plain", "scaled")),
               "needed": Range(0, integer=True)}}

CONFIG_DEFAULTS = {{
    "value": (1.0, "the constant, in arbitrary units"),
    "train.steps": (10, "steps logged"),
    "train.rule": ("plain", "how the constant is used: 'plain' or 'scaled' (by value)"),
    "optimizers": ({{"fast": {{"name": "sgd", "learning_rate": 0.1}},
                    "slow": {{"name": "sgd", "learning_rate": 0.01}}}}, "the optimizers compared, by label"),
}}


def run(cfg, ctx):
    ctx.log(cfg.train.steps, value=cfg.value)
    ctx.summary(value=cfg.value, steps=cfg.train.steps, needed=cfg.needed, labels=",".join(cfg.optimizers))
'''


def _config(root, name, body):
    (root / "configs" / f"{name}.py").write_text(textwrap.dedent('''
        import ml_collections
        def get_config():
            c = ml_collections.ConfigDict()
            c.experiment = "defaulted"
        ''') + textwrap.indent(textwrap.dedent(body), "    ") + "    return c\n")
    return f"configs/{name}.py"


@pytest.fixture
def defaulted(tmp_path, monkeypatch):
    root = tmp_path / "mine"
    (root / "experiments").mkdir(parents=True)
    (root / "configs").mkdir()
    (root / "experiments" / "defaulted.py").write_text(DEFAULTED.format(imports="import no_such_module_xyz"))
    monkeypatch.setenv("JAXOPT_LAB_ROOT", str(root))
    monkeypatch.chdir(root)
    return root


def test_table_is_read_by_ast_and_merged_under_the_stated_values(defaulted):
    described = project.declared(defaulted / "experiments" / "defaulted.py")
    assert described.defaults["train.steps"] == (10, "steps logged")
    path = _config(defaulted, "short", "c.needed = 3\nc.train = ml_collections.ConfigDict({'steps': 4})\n")
    cfg = config_lib.load_config(path, ["value=2"])  # would fail if it imported the experiment
    assert not any("defaulted" in name for name in sys.modules)
    assert cfg.to_dict() == {"experiment": "defaulted", "seed": 0, "value": 2.0, "needed": 3,
                             "train": {"steps": 4, "rule": "plain"},
                             "optimizers": {"fast": {"name": "sgd", "learning_rate": 0.1},
                                            "slow": {"name": "sgd", "learning_rate": 0.01}}}
    assert isinstance(config_lib.load_config(_config(defaulted, "int", "c.needed = 0\nc.value = 3\n")).value, float)


def test_a_dict_default_is_replaced_as_a_whole(defaulted):
    path = _config(defaulted, "own", """
        c.needed = 0
        c.optimizers = ml_collections.ConfigDict({"adam": {"name": "adam", "learning_rate": 1e-3, "b1": 0.8}})
        """)
    cfg = config_lib.load_config(path)
    assert cfg.optimizers.to_dict() == {"adam": {"name": "adam", "learning_rate": 1e-3, "b1": 0.8}}
    bad = _config(defaulted, "bad_field", """
        c.needed = 0
        c.optimizers = ml_collections.ConfigDict({"mine": {"name": "sgd", "lr": 0.1}})
        """)
    with pytest.raises(config_lib.ConfigError, match="unknown config key 'optimizers.mine.lr' for experiment "
                                                     "'defaulted'; did you mean optimizers.mine.learning_rate"):
        config_lib.load_config(bad)


def test_missing_and_unknown_keys_have_different_messages(defaulted):
    with pytest.raises(config_lib.ConfigError) as missing:
        config_lib.load_config(_config(defaulted, "missing", ""))
    assert str(missing.value) == ("config key 'needed' is missing (experiment 'defaulted' needs it: "
                                  "an integer >= 0)")
    with pytest.raises(config_lib.ConfigError, match="unknown config key 'train.stpes' for experiment "
                                                     "'defaulted'; did you mean train.steps"):
        config_lib.load_config(_config(defaulted, "typo", "c.needed = 0\nc.train = "
                                                          "ml_collections.ConfigDict({'stpes': 4})\n"))
    with pytest.raises(config_lib.ConfigError, match="unknown config key 'train.stpes' for experiment 'defaulted'; "
                                                     "did you mean train.steps"):
        config_lib.load_config(_config(defaulted, "ok", "c.needed = 0\n"), ["train.stpes=4"])
    with pytest.raises(config_lib.ConfigError, match=r"config key 'train.rule' = 'fancy': must be one of "
                                                     r"'plain', 'scaled'"):
        config_lib.load_config("configs/ok.py", ["train.rule=fancy"])


@pytest.mark.parametrize("body, message", [
    ("c.needed = 0\nc.train = ml_collections.ConfigDict({'steps': 2.5})\n",
     "config key 'train.steps' = 2.5: must be an int (the type of its default 10)"),
    ("c.needed = 0\nc.value = 'big'\n", "config key 'value' = 'big': must be a float (the type of its default 1.0)"),
    ("c.needed = 0\nc.seed = True\n", "config key 'seed' = True: must be an int (the type of its default 0)"),
])
def test_a_stated_value_must_have_its_defaults_type(defaulted, body, message):
    with pytest.raises(config_lib.ConfigError) as error:
        config_lib.load_config(_config(defaulted, "typed", body))
    assert str(error.value) == message


@pytest.mark.parametrize("table, message", [
    ("dict(seed=(0, 'x'))", "CONFIG_DEFAULTS must be a literal dict"),
    ("{'steps': 10}", "entry 'steps' must be (default value, 'help text'), got 10"),
    ("{'steps': (10, '')}", "entry 'steps' must be (default value, 'help text')"),
    ("{'train': (1, 'a'), 'train.steps': (10, 'b')}", "'train.steps' lies inside 'train', which is a value"),
])
def test_a_malformed_table_is_one_line_naming_the_entry(defaulted, table, message, capsys):
    (defaulted / "experiments" / "defaulted.py").write_text(f'"""Bad table."""\nCONFIG_DEFAULTS = {table}\n'
                                                            f"def run(cfg, ctx):\n    pass\n")
    assert cli.main(["run", _config(defaulted, "any", "")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_a_minimal_config_runs(defaulted, tmp_path, capsys):
    (defaulted / "experiments" / "defaulted.py").write_text(DEFAULTED.format(imports=""))
    path = _config(defaulted, "minimal", "c.needed = 7\n")
    assert cli.main(["run", path, "--set", "train.steps=3", "--workdir", str(tmp_path / "runs")]) == 0
    run_dir = capsys.readouterr().out.strip().splitlines()[-1].removeprefix("done: ")
    summary = json.loads((pathlib.Path(run_dir) / "summary.json").read_text())
    assert summary == {"value": 1.0, "steps": 3, "needed": 7, "labels": "fast,slow"}
    # a config built in Python is completed the same way
    from jaxopt_lab.lab.run import start_run

    result = start_run(ml_collections.ConfigDict({"experiment": "defaulted", "needed": 2}), tmp_path / "api")
    assert result.status == "done" and result.summary == {"value": 1.0, "steps": 10, "needed": 2,
                                                          "labels": "fast,slow"}


def test_show_prints_sources_and_help(defaulted, capsys):
    path = _config(defaulted, "shown", "c.needed = 1\nc.value = 1.0\n")
    assert cli.main(["show", path, "--set", "train.steps=3"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:]}
    assert lines["train.steps"].split() == ["train.steps", "=", "3", "#", "--set", "--", "steps", "logged"]
    assert lines["train.rule"].endswith("# default -- how the constant is used: 'plain' or 'scaled' (by value)")
    assert lines["value"].endswith("# configs/shown.py (same as the default) -- the constant, in arbitrary units")
    assert lines["needed"].endswith("# configs/shown.py")  # stated, no default: no help text
    assert lines["optimizers.fast.learning_rate"].endswith("# default -- the optimizers compared, by label")
    assert lines["seed"].endswith("# default -- " + config_lib.RUNTIME_DEFAULTS["seed"][1])

    assert cli.main(["show", "defaulted"]) == 0
    out = capsys.readouterr().out
    assert "experiment 'defaulted': Scales a constant (a tiny experiment with a default table)." in out
    assert "  train.rule  = 'plain'\n" in out and \
        "how the constant is used: 'plain' or 'scaled' (by value) [one of 'plain', 'scaled']" in out
    assert "  needed      = (no default: a config must state it)\n" in out and "[an integer >= 0]" in out
    assert cli.main(["show", "defaulted", "--set", "value=2"]) == 2
    assert "--set needs a config file" in capsys.readouterr().err


def test_registering_is_recognised_by_calls_not_by_words(tmp_path):
    text = ('"""Any registered optimizer."""\nfrom jaxopt_lab import optim\nfrom jaxopt_lab.lab import OneOf\n'
            'CONFIG_SPEC = {"optimizer.name": OneOf(optim.names)}\n')
    (tmp_path / "words.py").write_text(text)
    (tmp_path / "calls.py").write_text(text + 'optim.register("mine", lambda learning_rate: None)\n')
    assert project.declared(tmp_path / "words.py").registry_keys == frozenset()
    assert project.declared(tmp_path / "calls.py").registry_keys == {"optimizer.name"}


def _experiments_with_tables(repo_root):
    for path in sorted((repo_root / "experiments").glob("*.py")):
        described = project.declared(path)
        if described is not None and described.defaults is not None:
            yield path, described


def test_every_checked_key_of_a_shipped_experiment_has_a_default(repo_root):
    for path in sorted((repo_root / "experiments").glob("*.py")):  # so a config error never imports one
        assert project.declared(path).complete, f"{path.stem}: ast cannot follow its CONFIG_SPEC"
    for path, described in _experiments_with_tables(repo_root):
        # a key with a `*` segment checks only the entries that state it: its collection needs the default
        checked = {key.partition(".*")[0] for key in described.spec}
        assert checked <= set(described.defaults), (path.stem, checked - set(described.defaults))
        for key, (value, text) in described.defaults.items():
            rule = described.spec.get(key)
            assert rule is None or rule.allows(value), (path.stem, key, value, rule.describe())
            ast.parse(repr(value))  # a literal that prints back as one


def test_every_shipped_config_states_only_keys_its_experiment_declares(repo_root, monkeypatch):
    monkeypatch.chdir(repo_root)
    tables = {path.stem: described for path, described in _experiments_with_tables(repo_root)}
    checked = 0
    for path in project.config_files():
        cfg = config_lib.load_config_module(path).get_config()
        described = tables.get(cfg.get("experiment"))
        if described is not None:
            known = project.known_keys(described, cfg.experiment)
            config_lib.check_keys(cfg, known, cfg.experiment)  # raises naming the key
            config_lib.with_defaults(cfg, config_lib.defaults_from(described.defaults),
                                     config_lib.whole_keys(described.defaults))  # and its type
            checked += 1
    assert checked > 0
