"""Configs: loading, type-checked overrides, validation, hashing; errors are one line, exit 2."""

import subprocess
import sys

import ml_collections
import pytest

from jaxopt_lab.lab import ConfigError, OneOf, Range, cli
from jaxopt_lab.lab import config as config_lib


def test_overrides_are_converted_to_the_field_type(toy_project):
    cfg = config_lib.load_config(toy_project / "configs" / "toy.py",
                                 ["lr=0.25", "steps=7", "tags=x,y,z", "seed=3"])
    assert cfg.lr == 0.25 and isinstance(cfg.lr, float)
    assert cfg.steps == 7 and isinstance(cfg.steps, int)
    assert cfg.tags == ("x", "y", "z")
    assert cfg.seed == 3


@pytest.mark.parametrize("override, message", [
    ("lrr=1", "unknown config key 'lrr' for experiment 'toy'; did you mean lr"),
    ("steps=1.5", "--set steps=1.5: expected an int"),
    ("lr=fast", "--set lr=fast: expected a float"),
    ("noequals", "expected KEY=VALUE"),
])
def test_bad_overrides(toy_project, override, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        config_lib.load_config(toy_project / "configs" / "toy.py", [override])


def test_ranges_and_choices():
    assert Range(0, 1).allows(0) and not Range(0, 1, open_low=True).allows(0)
    assert not Range(1, integer=True).allows(1.0) and Range(1, integer=True).allows(3)
    assert not Range(0).allows(float("nan")) and not Range(0).allows(True)
    cfg = ml_collections.ConfigDict({"seed": 0, "opt": {"name": "adma", "lr": -1.0}})
    with pytest.raises(ConfigError, match=r"'opt.lr' = -1.0: must be a number > 0"):
        config_lib.validate(cfg, {"opt.lr": Range(0, open_low=True)})
    with pytest.raises(ConfigError, match=r"'opt.name' = 'adma': must be one of .*did you mean 'adam'"):
        config_lib.validate(cfg, {"opt.name": OneOf(lambda: ["adam", "sgd"])})
    cfg.seed = -1
    with pytest.raises(ConfigError, match="seed"):
        config_lib.validate(cfg, {})


def test_hash_is_content_based_and_json_round_trips(toy_project):
    a = config_lib.load_config(toy_project / "configs" / "toy.py")
    b = config_lib.load_config(toy_project / "configs" / "toy.py")
    assert config_lib.config_hash(a) == config_lib.config_hash(b)
    c = config_lib.load_config(toy_project / "configs" / "toy.py", ["lr=0.3"])
    assert config_lib.config_hash(a) != config_lib.config_hash(c)
    back = config_lib.config_from_json(config_lib.config_to_json(a))
    assert back.to_dict() == a.to_dict()
    assert config_lib.config_hash(back) == config_lib.config_hash(a)


@pytest.mark.parametrize("argv, message", [
    (["run", "configs/toy.py", "--set", "lr=-2"], "config key 'lr' = -2.0: must be a number > 0"),
    (["run", "configs/toy.py", "--set", "nope=1"], "unknown config key 'nope'"),
    (["run", "configs/toy.py", "--set", "experiment=toyy"], "unknown experiment; must be one of toy"),
    (["run", "configs/missing.py"], "does not exist"),
    (["reproduce", "toy-clam"], "unknown reproduction 'toy-clam'; did you mean toy-claim"),
])
def test_cli_bad_config_is_one_line_and_exit_2_before_any_work(toy_project, monkeypatch, capsys,
                                                                 argv, message, tmp_path):
    monkeypatch.chdir(toy_project)
    code = cli.main(argv + ["--workdir", str(tmp_path / "runs")] if argv[0] == "run" else argv)
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "runs").exists()  # nothing was written


def test_console_script_reports_config_errors_without_traceback(toy_project, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "jaxopt_lab.lab.cli", "run", "configs/toy.py",
                           "--set", "steps=0", "--workdir", str(tmp_path)],
                          cwd=toy_project, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("jaxopt-lab: error: config key 'steps' = 0: must be an integer >= 1")
