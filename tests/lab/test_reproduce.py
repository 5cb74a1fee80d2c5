"""Reproductions: claims, claims.json, the PASS/FAIL table, --list, exit codes."""

import json

import pytest

from jaxopt_lab.lab import Claim, cli
from jaxopt_lab.lab import reproduce as rep


def test_claim_comparisons():
    s = {"acc": 0.93, "base": 0.9, "nan": float("nan")}
    assert Claim("c", "q", "acc", ">", 0.9).check(s).passed
    assert not Claim("c", "q", "acc", ">", "base", margin=0.05).check(s).passed
    assert Claim("c", "q", "acc", ">", "base", margin=0.02).check(s).passed
    assert Claim("c", "q", "acc", "~", 1.0, rtol=0.1).check(s).passed
    assert not Claim("c", "q", "acc", "~", 1.0, rtol=0.05).check(s).passed
    assert Claim("c", "q", "acc", "<=", 0.93).check(s).passed
    missing = Claim("c", "q", "absent", ">", 0).check(s)
    assert not missing.passed and "missing" in missing.note
    assert not Claim("c", "q", "nan", "<", 1.0).check(s).passed
    with pytest.raises(ValueError, match="op"):
        Claim("c", "q", "acc", "=>", 1.0)


def test_reproduce_writes_claims_and_reports_failures(toy_project, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(toy_project)
    assert rep.ids() == ["toy-claim"]
    code = cli.main(["reproduce", "toy-claim", "--workdir", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 1  # one claim fails on purpose: reported, not hidden
    assert "PASS  converges" in out and "FAIL  not_too_fast" in out and "1 passed, 1 failed" in out
    (run_dir,) = (tmp_path / "toy").iterdir()
    claims = json.loads((run_dir / "claims.json").read_text())
    assert claims["id"] == "toy-claim" and claims["quick"] is False
    assert [c["result"] for c in claims["claims"]] == ["PASS", "FAIL"]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert claims["claims"][0]["value"] == summary["final"]


def test_quick_mode_applies_the_quick_overrides(toy_project, tmp_path, monkeypatch):
    monkeypatch.chdir(toy_project)
    result, verdicts = rep.reproduce("toy-claim", quick=True, workdir=tmp_path)
    assert json.loads((result.run_dir / "config.json").read_text())["steps"] == 2
    assert not verdicts[0].passed  # 2 steps are not enough to converge: the claim says so
    claims = json.loads((result.run_dir / "claims.json").read_text())
    assert claims["quick"] is True and claims["wall_s"] > 0 and claims["cores"] >= 1
    assert len(claims["config_hash"]) == 8 and len(claims["code_hash"]) == 16


def test_quick_mode_is_a_smoke_test(toy_project, tmp_path, capsys, monkeypatch):
    """--quick exits 0 when the run finished, whatever the (indicative) verdicts; 1 when it did not."""
    monkeypatch.chdir(toy_project)
    assert cli.main(["reproduce", "toy-claim", "--quick", "--workdir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "FAIL*  converges" in out and "indicative" in out and "loading" in out.splitlines()[0]
    assert cli.main(["reproduce", "toy-claim", "--quick", "--set", "fail_at_step=1",
                     "--workdir", str(tmp_path)]) == 1


def test_list(toy_project, capsys, monkeypatch):
    monkeypatch.chdir(toy_project)
    assert cli.main(["reproduce", "--list"]) == 0
    assert "toy-claim" in capsys.readouterr().out


def test_failed_run_fails_every_claim(toy_project, tmp_path, monkeypatch):
    monkeypatch.chdir(toy_project)
    result, verdicts = rep.reproduce("toy-claim", workdir=tmp_path, overrides=["fail_at_step=3"])
    assert result.status == "failed"
    assert not any(v.passed for v in verdicts) and "run failed" in verdicts[0].note
