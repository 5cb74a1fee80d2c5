"""reproduce --all (the cache of unchanged runs), --record and --list, and the source fingerprint."""

import json
import pathlib

import pytest

from jaxopt_lab.lab import cli, fingerprint


def _run_dirs(workdir: pathlib.Path) -> list:
    return sorted(p.parent for p in workdir.glob("*/*/claims.json"))


@pytest.mark.slow  # five toy runs
def test_all_reuses_an_unchanged_run_and_reruns_a_changed_one(toy_project, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(toy_project)
    work = tmp_path / "runs"
    assert cli.main(["reproduce", "--all", "--workdir", str(work)]) == 1  # a claim fails at full size
    out = capsys.readouterr().out
    assert "[reproduce --all 1/1] toy-claim: running" in out
    assert "toy-claim" in out.splitlines()[-2] and "1/2" in out and "FAIL" in out.splitlines()[-2]
    assert len(_run_dirs(work)) == 1

    assert cli.main(["reproduce", "--all", "--workdir", str(work)]) == 1  # same verdicts, not re-run
    assert "unchanged since" in capsys.readouterr().out and len(_run_dirs(work)) == 1

    experiment = toy_project / "experiments" / "toy.py"
    experiment.write_text(experiment.read_text() + "\n# a change to the code\n")
    assert cli.main(["reproduce", "--all", "--workdir", str(work)]) == 1
    assert "running" in capsys.readouterr().out and len(_run_dirs(work)) == 2

    config = toy_project / "configs" / "toy.py"  # the file the reproduction's config loads
    config.write_text(config.read_text().replace("c.lr = 0.5", "c.lr = 0.25"))
    assert cli.main(["reproduce", "--all", "--workdir", str(work)]) == 1
    assert len(_run_dirs(work)) == 3

    # --quick: a separate cache; exit 0 because every run finished (the verdicts are indicative)
    assert cli.main(["reproduce", "--all", "--quick", "--workdir", str(work)]) == 0
    assert "indicative" in capsys.readouterr().out


def test_record_harvests_finished_full_size_runs_and_list_shows_them(toy_project, tmp_path, capsys,
                                                                      monkeypatch):
    monkeypatch.chdir(toy_project)
    work = tmp_path / "runs"
    assert cli.main(["reproduce", "--list", "--workdir", str(work)]) == 0
    assert "no full-size run recorded" in capsys.readouterr().out
    cli.main(["reproduce", "toy-claim", "--workdir", str(work)])
    cli.main(["reproduce", "toy-claim", "--quick", "--workdir", str(work)])  # quick runs are not recorded
    cli.main(["reproduce", "toy-claim", "--set", "fail_at_step=3", "--workdir", str(work)])  # failed: skipped
    # finished, but with a changed config: not the reproduction's full-size run
    cli.main(["reproduce", "toy-claim", "--set", "lr=0.25", "--workdir", str(work)])
    damaged = work / "toy" / "20990101T000000Z-00000000"
    damaged.mkdir()
    (damaged / "claims.json").write_text("{not json")
    capsys.readouterr()

    assert cli.main(["reproduce", "--list", "--workdir", str(work)]) == 0
    out = capsys.readouterr().out
    assert "last full-size run: 1/2 claims pass, FAIL (not_too_fast)" in out and "cores" in out

    assert cli.main(["reproduce", "--record", str(work)]) == 0
    out = capsys.readouterr().out
    assert "damaged, skipped" in out and "ended 'failed', skipped" in out and "1 records written" in out
    record = json.loads((toy_project / "configs" / "reproduce" / "records" / "toy-claim.json").read_text())
    runs = {d: json.loads((d / "claims.json").read_text()) for d in _run_dirs(work) if d != damaged}
    (full_run,) = [d for d, c in runs.items()
                   if c["run_status"] == "done" and not c["quick"] and not c["overrides"]]
    assert record["run"] == full_run.name and record["passed"] == 1 and record["failed"] == 1
    assert record["wall_s"] > 0 and record["cores"] >= 1 and record["date"].endswith("UTC")

    assert cli.main(["reproduce", "--list", "--workdir", str(tmp_path / "empty")]) == 0  # from the record
    assert "recorded full-size run: 1/2 claims pass" in capsys.readouterr().out
    assert cli.main(["reproduce", "--record", str(tmp_path / "nowhere")]) == 2


def test_fingerprint_follows_jaxopt_lab_imports(repo_root, tmp_path):
    files = fingerprint.module_files(repo_root / "experiments" / "lazy_newton_rate.py")
    names = {str(f.relative_to(repo_root)) for f in files}
    assert "jaxopt_lab/lab/plots.py" in names  # `from jaxopt_lab.lab import plots` of a lazy package
    assert "jaxopt_lab/lab/config.py" in names  # its lazy name Range lives there
    assert any(n.startswith("jaxopt_lab/optim/curvature/") for n in names)
    assert "jaxopt_lab/sensing/solvers.py" not in names  # what it does not import is not part of it
    a, b = tmp_path / "a.py", tmp_path / "b.py"
    a.write_text("x = 1\n"), b.write_text("y = 2\n")
    before = fingerprint.content_hash([a, b])
    assert fingerprint.content_hash([b, a]) == before
    b.write_text("y = 3\n")
    assert fingerprint.content_hash([a, b]) != before


def test_the_files_of_a_reproduction_are_its_config_chain_and_imports(repo_root, monkeypatch):
    """Config files read only to learn the known keys are not part of a run's files."""
    from jaxopt_lab.lab import project
    from jaxopt_lab.lab import reproduce as rep

    monkeypatch.chdir(repo_root)
    project._shipped_keys.cache_clear()  # the first plan in a process reads every shipped config
    first, again = rep.plan("fira-vs-galore", quick=True), rep.plan("fira-vs-galore", quick=True)
    assert first.files == again.files and first.code_hash == again.code_hash
    configs = {str(f.relative_to(repo_root)) for f in first.files if f.is_relative_to(repo_root / "configs")}
    assert configs == {"configs/reproduce/fira_vs_galore.py", "configs/lowrank/lm_pretrain.py"}
    assert repo_root / "experiments" / "lm_pretrain.py" in first.files
