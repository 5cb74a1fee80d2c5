"""Bad configs, files and arguments: each one line on stderr, exit 2, nothing written, before any work."""

import os
import pathlib
import sys
import textwrap
import types

import pytest

from jaxopt_lab.lab import ConfigError, cli

TOY = "configs/toy.py"


def _variant(root: pathlib.Path, name: str, replace: dict) -> str:
    """A copy of the toy config with text substitutions, written as configs/<name>.py."""
    text = (root / TOY).read_text()
    for old, new in replace.items():
        assert old in text
        text = text.replace(old, new)
    (root / "configs" / f"{name}.py").write_text(text)
    return f"configs/{name}.py"


def _file(root: pathlib.Path, name: str, text: str) -> str:
    (root / "configs" / f"{name}.py").write_text(textwrap.dedent(text))
    return f"configs/{name}.py"


def _cases(root: pathlib.Path, tmp: pathlib.Path):
    """``(argv, expected message part)`` for every bad input; ``argv`` without --workdir."""
    as_file = tmp / "a_file"
    as_file.write_text("")
    c = []
    c.append(([_variant(root, "typo_top", {"c.lr = 0.5": "c.lrr = 0.5"})],
              "unknown config key 'lrr' for experiment 'toy'; did you mean"))
    c.append(([_variant(root, "extra_key", {"c.steps = 20": "c.steps = 20\n    c.stpes = 3"})],
              "unknown config key 'stpes' for experiment 'toy'; did you mean steps?"))
    c.append(([_variant(root, "nested_typo", {"c.steps = 20": "c.steps = 20\n    c.opt = "
                                              "ml_collections.ConfigDict({'lr': 1.0})"})],
              "unknown config key 'opt.lr' for experiment 'toy'"))
    c.append(([_variant(root, "missing_key", {"    c.steps = 20\n": ""})],
              "config key 'steps' is missing (experiment 'toy' needs it: an integer >= 1)"))
    c.append(([_file(root, "syntax", "def get_config(:\n    pass\n")], "syntax error at line 1"))
    c.append(([_file(root, "raises", """
        import ml_collections
        def get_config():
            return 1 / 0
        """)], "get_config() raised at line 4: ZeroDivisionError: division by zero"))
    c.append(([_file(root, "missing_module", "import no_such_module_xyz\n")],
              "imports module 'no_such_module_xyz', which cannot be imported"))
    c.append(([_file(root, "module_raises", "raise RuntimeError('half-written')\n")],
              "line 1: RuntimeError: half-written"))
    c.append(([_file(root, "returns_dict", "def get_config():\n    return {}\n")],
              "must return an ml_collections.ConfigDict, got dict"))
    c.append(([TOY, "--set", f"seed={2 ** 70}"], "config key 'seed' = 1180591620717411303424: must be an "
                                                  "integer in [0, 2**32 - 1]"))
    c.append(([_variant(root, "big_seed", {"c.seed = 0": "c.seed = 2 ** 70"})], "config key 'seed'"))
    c.append(([TOY, "--set", "seed=-1"], "config key 'seed' = -1"))
    c.append(([TOY, "--set", "fail_at_step=30"], "config key 'fail_at_step' = 30: must be <= steps = 20"))
    c.append(([TOY, "--set", "tags=bad"], "experiment 'toy': tags ('bad',): 'bad' is not allowed"))
    c.append(([TOY, "--workdir", str(as_file)], f"--workdir {str(as_file)!r} is a file, not a directory"))
    c.append(([TOY, "--workdir", str(as_file / "runs")], "which is a file, not a directory"))
    return c


def test_every_bad_config_is_one_line_exit_2_and_writes_nothing(toy_project, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(toy_project)
    cases = _cases(toy_project, tmp_path)
    for argv, message in cases:
        workdir = tmp_path / "runs"
        if "--workdir" not in argv:
            argv = argv + ["--workdir", str(workdir)]
        code = cli.main(["run", *argv])
        err = capsys.readouterr().err
        assert code == 2, (argv, err)
        assert message in err, (argv, err)
        assert err.count("\n") == 1 and "Traceback" not in err, err
        assert not workdir.exists(), argv
    assert len(cases) == 16


def test_read_only_workdir(toy_project, tmp_path, monkeypatch, capsys):
    # As root, mode bits do not stop writes; a read-only mount does, which os.access reports.
    monkeypatch.chdir(toy_project)
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if str(p) == str(tmp_path)
                        else real_access(p, mode, **kw))
    assert cli.main(["run", TOY, "--workdir", str(tmp_path / "runs")]) == 2
    assert f"{str(tmp_path)!r} is not writable" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_typo_in_a_shipped_experiments_config_file(repo_root, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("JAXOPT_LAB_ROOT", raising=False)
    monkeypatch.chdir(repo_root)
    text = (repo_root / "configs" / "quickstart.py").read_text()
    config = tmp_path / "mine.py"
    config.write_text(text.replace("cfg.optimizer.learning_rate = 1e-3", "cfg.optimizer.lr = 1e-3"))
    assert cli.main(["run", str(config), "--workdir", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert ("unknown config key 'optimizer.lr' for experiment 'train_classifier'; did you mean "
            "optimizer.learning_rate?") in err
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("config, overrides, message", [
    ("scaledgd_conditioning", ["problem.rank=11"], "'problem.rank' = 11: must be <= problem.n = 10"),
    ("scaledgd_conditioning", ["k=1"], "'k' = 1: must be >= problem.rank = 2"),
    ("scaledgd_conditioning", ["kappas=(0.5,10.0)"], "'kappas' = (0.5, 10.0): must be a non-empty "
                                                     "sequence, each element a number >= 1.0"),
    ("incremental_learning", ["ks=(2,8)"], "'ks' = (2, 8): must be a tuple of widths containing the rank 4"),
    ("incremental_learning", ["problem.n=3"], "'problem.eigenvalues' = (1.0, 0.5, 0.25, 0.125): must be "
                                              "strictly decreasing with at most problem.n = 3"),
    ("overparam_slowdown", ["asym.k=2"], "'asym.k' = 2: must be > problem.rank = 2"),
    ("overparam_slowdown", ["problem.rank=21"], "'problem.rank' = 21: must be <= problem.n = 20"),
    ("robust_subgradient", ["widths=(1,4)"], "'widths' = (1, 4): must be widths >= problem.rank = 2"),
    ("robust_subgradient", ["compare_width=1"], "'compare_width' = 1: must be >= problem.rank = 2"),
])
def test_sensing_cross_field_checks(repo_root, tmp_path, monkeypatch, capsys, config, overrides, message):
    monkeypatch.delenv("JAXOPT_LAB_ROOT", raising=False)
    monkeypatch.chdir(repo_root)
    argv = ["run", f"configs/reproduce/{config}.py", "--workdir", str(tmp_path / "runs")]
    assert cli.main(argv + [a for o in overrides for a in ("--set", o)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "runs").exists()


# --distributed: the CLI side (the initializer itself is jaxopt_lab.train.distributed's).

@pytest.mark.parametrize("flags, message", [
    (["--coordinator", "h:1"], "--coordinator needs --distributed"),
    (["--distributed", "--coordinator", "h:1"], "also needs --num-processes, --process-id"),
    (["--distributed", "--coordinator", "h:1", "--num-processes", "2", "--process-id", "2"],
     "--process-id 2: must be in 0..1"),
    (["--distributed", "--coordinator", "h:1", "--num-processes", "0", "--process-id", "0"],
     "--num-processes 0: must be an integer >= 1"),
])
def test_distributed_flags(toy_project, tmp_path, monkeypatch, capsys, flags, message):
    monkeypatch.chdir(toy_project)
    assert cli.main(["run", TOY, *flags, "--workdir", str(tmp_path / "runs")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def _fake_initializer(monkeypatch, initialize):
    train = types.ModuleType("jaxopt_lab.train")
    module = types.ModuleType("jaxopt_lab.train.distributed")
    module.initialize = initialize
    train.distributed = module
    monkeypatch.setitem(sys.modules, "jaxopt_lab.train", train)
    monkeypatch.setitem(sys.modules, "jaxopt_lab.train.distributed", module)


def test_distributed_unreachable_coordinator_is_one_line(toy_project, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(toy_project)

    def initialize(coordinator_address=None, num_processes=None, process_id=None, timeout_s=60):
        raise ConfigError(f"--distributed: no coordinator at {coordinator_address} within {timeout_s} s")

    _fake_initializer(monkeypatch, initialize)
    argv = ["sweep", TOY, "--seeds", "2", "--distributed", "--coordinator", "10.255.255.1:1234",
            "--num-processes", "2", "--process-id", "1", "--distributed-timeout", "3",
            "--workdir", str(tmp_path / "runs")]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err == "jaxopt-lab: error: --distributed: no coordinator at 10.255.255.1:1234 within 3 s\n"
    assert not (tmp_path / "runs").exists()


def test_distributed_passes_the_options_then_runs(toy_project, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(toy_project)
    calls = []
    _fake_initializer(monkeypatch, lambda **kw: calls.append(kw))
    assert cli.main(["run", TOY, "--distributed", "--set", "steps=3",
                     "--workdir", str(tmp_path / "runs")]) == 0
    assert calls == [{"coordinator_address": None, "num_processes": None, "process_id": None,
                      "timeout_s": 60}]
    assert len(list((tmp_path / "runs" / "toy").iterdir())) == 1
