"""Every config in configs/ loads and runs with its QUICK overrides; every reproduction runs --quick.

These are the project's smoke tests: a config or experiment that breaks shows up here by name.
Quick-mode reproductions check that each claim is *evaluated* on a measured number (PASS or FAIL at
that small size); the full-size verdicts come from `jaxopt-lab reproduce ID`.
"""

import json
import math

import pytest

from jaxopt_lab.lab import config as config_lib
from jaxopt_lab.lab import reproduce as rep
from jaxopt_lab.lab.project import config_files, project_root
from jaxopt_lab.lab.run import start_run

ROOT = project_root()
RUN_CONFIGS = [p for p in config_files() if "reproduce" not in p.relative_to(ROOT).parts]


def _id(path):
    return str(path.relative_to(ROOT / "configs"))


def test_every_config_has_a_docstring_command_and_quick_overrides():
    for path in config_files():
        module = config_lib.load_config_module(path)
        doc = (module.__doc__ or "").strip()
        assert doc.startswith("jaxopt-lab "), f"{_id(path)}: docstring must start with its command"
        assert isinstance(getattr(module, "QUICK", None), dict), f"{_id(path)}: no QUICK overrides"


@pytest.mark.slow
@pytest.mark.parametrize("path", RUN_CONFIGS, ids=_id)
def test_config_runs_quick(path, tmp_path):
    module = config_lib.load_config_module(path)
    cfg = config_lib.load_config(path)
    config_lib.apply_overrides(cfg, module.QUICK.items())
    result = start_run(cfg, tmp_path)
    status = json.loads((result.run_dir / "status.json").read_text())
    assert result.status == "done", status
    assert (result.run_dir / "summary.json").exists()


@pytest.mark.slow
@pytest.mark.parametrize("figure_id", rep.ids())
def test_reproduction_runs_quick_and_evaluates_every_claim(figure_id, tmp_path):
    result, verdicts = rep.reproduce(figure_id, quick=True, workdir=tmp_path)
    assert result.status == "done", json.loads((result.run_dir / "status.json").read_text())
    claims = json.loads((result.run_dir / "claims.json").read_text())
    assert claims["quick"] is True and len(claims["claims"]) == len(verdicts) > 0
    for verdict in verdicts:
        assert isinstance(verdict.value, (int, float)) and math.isfinite(verdict.value), verdict
        assert verdict.claim.quote.strip()


def test_lowrank_bench_rejects_timed_steps_that_reach_a_refresh(tmp_path, capsys, monkeypatch):
    from jaxopt_lab.lab import cli
    monkeypatch.chdir(ROOT)
    code = cli.main(["run", "configs/bench/lowrank.py", "--set", "timed_steps=40",
                     "--workdir", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert code == 2 and "'timed_steps' = 40" in err and "update_proj_gap = 200" in err
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_lowrank_bench_reports_flop_ratios_and_threaded_step_times(tmp_path):
    path = ROOT / "configs" / "bench" / "lowrank.py"
    cfg = config_lib.load_config(path)
    config_lib.apply_overrides(cfg, config_lib.load_config_module(path).QUICK.items())
    result = start_run(cfg, tmp_path)
    summary = json.loads((result.run_dir / "summary.json").read_text())
    # a projected step adds two r x m x n matmuls per matrix to Adam's three b x m x n
    assert summary["flops_ratio_to_adam_adam"] == 1.0
    assert summary["flops_ratio_to_adam_galore"] > 1.0
    assert summary["matmul_gflops"] > 0
    assert summary["plain_ms_galore"] > 0 and summary["refresh_ms_galore"] > 0
