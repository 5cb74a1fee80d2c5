"""Project roots: a user's experiments and configs beside the built-in ones; configs by name or path."""

import textwrap

import pytest

from jaxopt_lab.lab import cli, project
from jaxopt_lab.lab import config as config_lib


@pytest.fixture
def user_project(tmp_path, monkeypatch):
    monkeypatch.delenv("JAXOPT_LAB_ROOT", raising=False)
    root = tmp_path / "mine"
    (root / "experiments").mkdir(parents=True)
    (root / "configs").mkdir()
    (root / "experiments" / "constant.py").write_text(textwrap.dedent('''
        """Logs a constant."""
        def run(cfg, ctx):
            ctx.log(1, value=cfg.value)
            ctx.summary(value=cfg.value)
        '''))
    (root / "configs" / "constant.py").write_text(textwrap.dedent('''
        import ml_collections
        def get_config():
            return ml_collections.ConfigDict({"experiment": "constant", "seed": 0, "value": 1.5})
        '''))
    return root


def test_user_project_beside_the_builtin_one(user_project, repo_root, monkeypatch, capsys):
    monkeypatch.chdir(user_project)
    assert project.project_roots() == [user_project, repo_root]
    assert {"constant", "train_classifier"} <= set(project.experiment_names())
    # a built-in config by name, and a user's config shadowing nothing
    assert project.resolve_config("quickstart") == repo_root / "configs" / "quickstart.py"
    assert project.resolve_config("configs/constant.py").resolve() == user_project / "configs" / "constant.py"
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    assert "  constant                 Logs a constant." in out
    assert f"  configs/quickstart.py  ({repo_root})" in out and "  quickstart-sweep" in out


def test_absolute_config_path_finds_its_own_project(user_project, tmp_path, monkeypatch, capsys):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = user_project / "configs" / "constant.py"
    assert cli.main(["run", str(config), "--workdir", str(tmp_path / "runs")]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("done: ")
    assert config_lib.load_config(config).value == 1.5


def test_unknown_config_name_is_one_line(user_project, monkeypatch, capsys):
    monkeypatch.chdir(user_project)
    assert cli.main(["run", "quickstrat"]) == 2
    assert "config file 'quickstrat' does not exist" in capsys.readouterr().err
