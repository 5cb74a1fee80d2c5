"""Run directories, status, divergence, failure, determinism, progress, and SIGKILL + resume."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from jaxopt_lab.lab import config as config_lib
from jaxopt_lab.lab import metrics as metrics_lib
from jaxopt_lab.lab.run import resume_run, start_run

QUICKSTART_FAST = ["train.steps=60", "train.log_every=20", "train.checkpoint_every=20",
                   "model.hidden=(32,)"]


def _load(path, overrides=()):
    return config_lib.load_config(path, list(overrides))


@pytest.mark.slow
def test_quickstart_run_directory(repo_root, tmp_path):
    cfg = _load(repo_root / "configs" / "quickstart.py", QUICKSTART_FAST)
    result = start_run(cfg, tmp_path)
    run_dir = result.run_dir
    assert result.status == "done" and result.exit_code == 0
    assert run_dir.parent == tmp_path / "train_classifier"
    assert run_dir.name.endswith(config_lib.config_hash(cfg))
    assert json.loads((run_dir / "config.json").read_text()) == json.loads(config_lib.config_to_json(cfg))
    env = json.loads((run_dir / "env.json").read_text())
    assert env["versions"]["jax"] and env["devices"]
    assert json.loads((run_dir / "status.json").read_text())["status"] == "done"
    records = metrics_lib.read_metrics(run_dir / "metrics.jsonl")
    assert [r["step"] for r in records] == [20, 40, 60]
    assert records[-1]["train_loss"] < records[0]["train_loss"]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["final_test_accuracy"] == records[-1]["test_accuracy"]
    assert (run_dir / "figures" / "loss.png").stat().st_size > 1000
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()
                  if p.name.isdigit()) == ["40", "60"]  # max_to_keep=2
    assert not [p for p in run_dir.rglob(".*tmp*")]  # atomic writes leave no temporaries


@pytest.mark.slow  # three quickstart runs; the quick tier keeps one real run (test_quickstart_run_directory)
def test_same_config_and_seed_give_bit_identical_metrics(repo_root, tmp_path):
    runs = [start_run(_load(repo_root / "configs" / "quickstart.py", QUICKSTART_FAST), tmp_path / str(i))
            for i in range(2)]
    first, second = [(r.run_dir / "metrics.jsonl").read_text() for r in runs]
    assert first == second
    other = start_run(_load(repo_root / "configs" / "quickstart.py", QUICKSTART_FAST + ["seed=1"]),
                      tmp_path / "other")
    assert (other.run_dir / "metrics.jsonl").read_text() != first


@pytest.mark.slow
def test_divergence_stops_with_status_and_keeps_metrics(repo_root, tmp_path):
    cfg = _load(repo_root / "configs" / "quickstart.py",
                ["train.steps=60", "optimizer.name=sgd", "optimizer.learning_rate=1e6",
                 "train.log_every=10", "train.checkpoint_every=0"])
    result = start_run(cfg, tmp_path)
    status = json.loads((result.run_dir / "status.json").read_text())
    assert result.status == "diverged" and result.exit_code == 3
    assert status["status"] == "diverged" and "not finite" not in status["message"]
    records = metrics_lib.read_metrics(result.run_dir / "metrics.jsonl")
    assert records and records[-1]["step"] == status["step"]
    assert records[-1]["train_loss"] != records[-1]["train_loss"]  # the NaN itself is kept
    assert status["step"] < 60  # stopped at that step, not at the end


def test_exception_marks_run_failed_and_keeps_metrics(toy_project, tmp_path):
    cfg = _load(toy_project / "configs" / "toy.py", ["fail_at_step=4"])
    result = start_run(cfg, tmp_path)
    status = json.loads((result.run_dir / "status.json").read_text())
    assert result.status == "failed" and result.exit_code == 1
    assert "boom at step 4" in status["message"] and "Traceback" in status["traceback"]
    assert [r["step"] for r in metrics_lib.read_metrics(result.run_dir / "metrics.jsonl")] == [1, 2, 3]


def test_plain_progress_lines_when_not_a_terminal(toy_project, tmp_path):
    import io

    stream = io.StringIO()
    start_run(_load(toy_project / "configs" / "toy.py"), tmp_path, stream=stream)
    lines = stream.getvalue().splitlines()
    assert lines[0] == "[toy] step 0/20 (0%) compiling…"  # at once, before the first step
    assert lines and all(line.startswith("[toy] step ") for line in lines)
    assert lines[-1].startswith("[toy] step 20/20 (100%)")
    assert len(lines) <= 11  # every 10% (or 30 s), not every step


def test_progress_bar_on_a_terminal(toy_project, tmp_path):
    import io

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    stream = Terminal()
    start_run(_load(toy_project / "configs" / "toy.py"), tmp_path, stream=stream)
    text = stream.getvalue()
    assert "20/20" in text and "100%|" in text  # tqdm's bar, not the plain lines
    assert "[toy] step" not in text


def test_resume_in_process_truncates_to_checkpoint(toy_project, tmp_path):
    cfg = _load(toy_project / "configs" / "toy.py")
    full = start_run(cfg, tmp_path / "full")
    crashed = start_run(_load(toy_project / "configs" / "toy.py", ["fail_at_step=13"]), tmp_path / "c")
    assert crashed.status == "failed"
    # The crashed run's config differs (fail_at_step); give the directory the original config and
    # its hash, as if the crash had been a kill.
    run_dir = crashed.run_dir.with_name(crashed.run_dir.name.split("-")[0] + "-" + config_lib.config_hash(cfg))
    crashed.run_dir.rename(run_dir)
    (run_dir / "config.json").write_text(config_lib.config_to_json(cfg))
    resumed = resume_run(run_dir)
    assert resumed.status == "done"
    assert ((resumed.run_dir / "metrics.jsonl").read_text()
            == (full.run_dir / "metrics.jsonl").read_text())
    assert resumed.summary == full.summary


def _cli(*args, **kw):
    return [sys.executable, "-m", "jaxopt_lab.lab.cli", *args]


@pytest.mark.slow
def test_sigkill_mid_run_then_resume_matches_uninterrupted(repo_root, tmp_path):
    sets = ["train.steps=6000", "train.log_every=100", "train.checkpoint_every=500",
            "model.hidden=(32,)", "optimizer.learning_rate=0.003"]
    args = [a for s in sets for a in ("--set", s)]
    ref = subprocess.run(_cli("run", "configs/quickstart.py", *args, "--workdir", str(tmp_path / "ref")),
                         cwd=repo_root, capture_output=True, text=True, timeout=600)
    assert ref.returncode == 0, ref.stderr
    (ref_dir,) = (tmp_path / "ref" / "train_classifier").iterdir()

    proc = subprocess.Popen(_cli("run", "configs/quickstart.py", *args, "--workdir",
                                 str(tmp_path / "killed")), cwd=repo_root,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    run_dir = None
    while time.time() < deadline and proc.poll() is None:
        dirs = list((tmp_path / "killed" / "train_classifier").glob("*"))
        if dirs:
            run_dir = dirs[0]
            done = [p for p in (run_dir / "checkpoints").glob("*") if p.name.isdigit()]
            if done:  # a finished checkpoint exists: kill somewhere after it
                break
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert run_dir is not None
    status = json.loads((run_dir / "status.json").read_text())
    assert status["status"] == "running", "the run finished before it could be killed"
    killed_records = metrics_lib.read_metrics(run_dir / "metrics.jsonl")
    assert killed_records[-1]["step"] < 6000

    resumed = subprocess.run(_cli("run", "--resume", str(run_dir)), cwd=repo_root,
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((run_dir / "status.json").read_text())["status"] == "done"
    assert (run_dir / "metrics.jsonl").read_text() == (ref_dir / "metrics.jsonl").read_text()
    assert (json.loads((run_dir / "summary.json").read_text())
            == json.loads((ref_dir / "summary.json").read_text()))


@pytest.mark.slow
def test_two_processes_share_one_run_directory_written_by_process_0(toy_project, tmp_path):
    """`run --distributed` over two local CPU processes: one run directory (same name on both), metrics
    written once and equal to a one-process run's, orbax checkpoints of the (host-local) state saved
    jointly."""
    pytest.importorskip("jaxopt_lab.train.distributed")
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "JAXOPT_LAB_ROOT": str(toy_project)}
    env.pop("XLA_FLAGS", None)

    def both(*args):
        procs = [subprocess.Popen(_cli(*args, "--distributed", "--coordinator", f"127.0.0.1:{port}",
                                       "--num-processes", "2", "--process-id", str(i)),
                                  cwd=toy_project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True) for i in range(2)]
        outs = [p.communicate(timeout=300) for p in procs]
        assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outs]
        return [o[0].strip().splitlines()[-1] for o in outs]

    lines = both("run", "configs/toy.py", "--workdir", str(tmp_path / "runs"))
    assert lines[0] == lines[1] and lines[0].startswith("done: ")
    (run_dir,) = (tmp_path / "runs" / "toy").iterdir()
    assert [r["step"] for r in metrics_lib.read_metrics(run_dir / "metrics.jsonl")] == list(range(1, 21))
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["15", "20"]
    reference = start_run(_load(toy_project / "configs" / "toy.py"), tmp_path / "one")
    assert (run_dir / "metrics.jsonl").read_text() == (reference.run_dir / "metrics.jsonl").read_text()


def test_a_run_without_a_declared_length_still_prints_progress(tmp_path):
    import io

    import ml_collections

    from jaxopt_lab.lab.run import Context

    stream = io.StringIO()
    cfg = ml_collections.ConfigDict({"experiment": "toy", "seed": 0})
    ctx = Context(tmp_path / "toy" / "run", cfg, stream=stream)
    ctx.log(1, loss=1.0)
    ctx.log(2, loss=0.5)  # within 10 s of the first line: no second line
    ctx.close()
    assert stream.getvalue().startswith("[toy] logged step 1 |") and stream.getvalue().count("\n") == 1
