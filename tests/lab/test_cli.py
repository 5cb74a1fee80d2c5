"""The CLI: --help on every command, `list` shows what exists, `run` end to end."""

import os
import subprocess
import sys


import pytest

from jaxopt_lab import optim
from jaxopt_lab.lab import cli
from jaxopt_lab.lab import reproduce as rep
from jaxopt_lab.lab.project import experiment_names


@pytest.mark.parametrize("command", [[], ["run"], ["sweep"], ["reproduce"], ["list"]])
def test_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(command + ["--help"])
    assert exit_info.value.code == 0
    assert "usage: jaxopt-lab" in capsys.readouterr().out


def test_list_shows_experiments_configs_optimizers_reproductions(repo_root, capsys, monkeypatch):
    monkeypatch.chdir(repo_root)
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    for name in experiment_names():
        assert f"  {name} " in out
    assert "configs/quickstart.py" in out
    for name in optim.names():
        assert f"  {name} " in out
    for figure_id in rep.ids():
        assert f"  {figure_id}" in out
    assert "quickstart-sweep" in out


def test_run_needs_a_config_and_resume_takes_no_overrides(capsys, tmp_path):
    assert cli.main(["run"]) == 2
    assert cli.main(["run", "--resume", str(tmp_path)]) == 2
    assert cli.main(["run", "--resume", str(tmp_path), "--set", "seed=1"]) == 2
    err = capsys.readouterr().err
    assert "needs a CONFIG" in err and "not a run directory" in err and "--resume takes only" in err


@pytest.mark.slow
def test_console_script_runs_the_quickstart(repo_root, tmp_path):
    proc = subprocess.run(["jaxopt-lab", "run", "configs/quickstart.py", "--set", "train.steps=40",
                           "--set", "train.log_every=20", "--set", "train.checkpoint_every=20",
                           "--workdir", str(tmp_path)],
                          cwd=repo_root, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1].startswith("done: ")
    (run_dir,) = (tmp_path / "train_classifier").iterdir()
    assert (run_dir / "figures" / "loss.png").exists()



def test_help_list_show_and_config_errors_import_no_jax(repo_root):
    """They answer in well under a second of CPU: no jax, optax, orbax, flax or matplotlib."""
    code = ("import sys, io, contextlib\n"
            "from jaxopt_lab.lab import cli\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    assert cli.main(['list']) == 0 and cli.main(['reproduce', '--list']) == 0\n"
            "    assert cli.main(['show', 'quickstart']) == 0 and cli.main(['show', 'train_classifier']) == 0\n"
            "    for bad in ('train.stepz=3', 'train.steps=-3', 'optimizer.name=adamm'):\n"
            "        assert cli.main(['run', 'configs/quickstart.py', '--set', bad]) == 2\n"
            "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
            "('jax', 'jaxlib', 'orbax', 'optax', 'matplotlib', 'flax'))\n"
            "print(heavy)\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=repo_root, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": str(repo_root)})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"
    assert proc.stderr.count("jaxopt-lab: error:") == 3, proc.stderr


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith("jaxopt-lab 0.")


def test_list_reads_the_optimizer_registry_without_importing_it():
    from jaxopt_lab.lab import catalog

    listed = {e.name: e for e in catalog.optimizers()}
    assert sorted(listed) == optim.names()
    for name in optim.names():
        i = optim.info(name)
        assert listed[name].summary == i.paper and listed[name].extra == (i.family, tuple(i.extra_args))


def test_the_optimizer_arguments_read_from_the_sources_are_the_factories_signatures():
    """Ours from the decorated factory, optax's through its re-exports and functools.partial: what a config
    may state beside an optimizer's name is known without importing jax."""
    import inspect

    from jaxopt_lab.lab import catalog

    read = catalog.optimizer_parameters()
    assert sorted(read) == optim.names()
    for name in optim.names():
        assert read[name] == tuple(inspect.signature(optim.info(name).factory).parameters), name


def test_list_shows_experiments_that_cannot_be_imported(toy_project, monkeypatch, capsys):
    (toy_project / "experiments" / "needs_pkg.py").write_text('"""Needs a package."""\nimport no_such_pkg\n')
    (toy_project / "experiments" / "broken.py").write_text('"""Broken."""\ndef run(cfg, ctx:\n')
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    assert "needs_pkg                Needs a package.  [cannot import: needs 'no_such_pkg', not installed]" in out
    assert "broken" in out and "[cannot import: syntax error at line 2" in out
    assert "toy                      Toy: gradient descent" in out


def test_show_prints_each_value_with_its_source(toy_project, monkeypatch, capsys):
    monkeypatch.chdir(toy_project)
    assert cli.main(["show", "configs/toy.py", "--set", "lr=0.25"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("lr ") and "= 0.25" in line and line.endswith("# --set") for line in lines)
    assert any(line.startswith("steps ") and line.endswith("# configs/toy.py") for line in lines)


def test_run_quick_applies_the_config_files_quick_overrides_before_set(repo_root, tmp_path):
    from jaxopt_lab.lab.config import ConfigError, load_config, load_config_module

    quickstart = repo_root / "configs" / "quickstart.py"
    quick = load_config_module(quickstart).QUICK
    cfg = load_config(quickstart, ["train.log_every=10"], quick=True)
    assert cfg.train.steps == quick["train.steps"] != load_config(quickstart).train.steps
    assert cfg.train.log_every == 10  # --set wins over QUICK
    plain = tmp_path / "plain.py"
    plain.write_text("import ml_collections\n\ndef get_config():\n    c = ml_collections.ConfigDict()\n"
                     "    c.experiment = 'train_classifier'\n    c.seed = 0\n    return c\n")
    with pytest.raises(ConfigError, match="declares no QUICK"):
        load_config(plain, check=False, quick=True)
