"""Run directories under faults: damaged files on resume, two writers, kills, divergence, a full disk."""

import errno
import json
import os
import shutil

import pytest

from jaxopt_lab.lab import ConfigError, cli
from jaxopt_lab.lab import config as config_lib
from jaxopt_lab.lab import metrics as metrics_lib
from jaxopt_lab.lab.lock import RunLock, is_locked
from jaxopt_lab.lab.run import resume_run, run_status, start_run


def _load(root, *overrides):
    return config_lib.load_config(root / "configs" / "toy.py", list(overrides))


@pytest.fixture
def runs(toy_project, tmp_path):
    """An uninterrupted toy run, and a factory of copies of a run killed after step 12 (checkpoints at
    5 and 10, status left "running", as SIGKILL leaves it)."""
    full = start_run(_load(toy_project), tmp_path / "full")
    crashed = start_run(_load(toy_project, "fail_at_step=13"), tmp_path / "crashed")
    cfg = _load(toy_project)
    killed = crashed.run_dir.with_name(crashed.run_dir.name.split("-")[0] + "-" + config_lib.config_hash(cfg))
    crashed.run_dir.rename(killed)
    (killed / "config.json").write_text(config_lib.config_to_json(cfg) + "\n")
    (killed / "status.json").write_text(json.dumps({"status": "running", "message": ""}))
    (killed / "summary.json").unlink(missing_ok=True)
    counter = iter(range(100))

    def killed_copy():
        target = tmp_path / f"copy{next(counter)}" / "toy" / killed.name
        shutil.copytree(killed, target)
        return target

    return full, killed_copy


def _metrics_text(run_dir):
    return (run_dir / "metrics.jsonl").read_text()


def _garble_checkpoint(run_dir, step, how):
    files = sorted((p for p in (run_dir / "checkpoints" / str(step)).rglob("*") if p.is_file()),
                   key=lambda p: p.stat().st_size)
    if how == "truncate":
        os.truncate(files[-1], files[-1].stat().st_size // 3)
    else:
        for path in files:
            path.write_bytes(b"\x93garbage" * (1 + path.stat().st_size // 8))


def _rewrite_metrics(run_dir, fn):
    path = run_dir / "metrics.jsonl"
    path.write_text(fn(path.read_text().splitlines(keepends=True)))


RECOVERED = {
    "intact": lambda d: None,
    "metrics deleted": lambda d: (d / "metrics.jsonl").unlink(),
    "metrics empty": lambda d: (d / "metrics.jsonl").write_text(""),
    "metrics truncated to 4 rows": lambda d: _rewrite_metrics(d, lambda lines: "".join(lines[:4])),
    "metrics row garbled": lambda d: _rewrite_metrics(d, lambda lines: "".join(
        lines[:2] + ["{\"step\": 3, \"loss\": 0.9\n"] + lines[3:])),
    "metrics value edited": lambda d: _rewrite_metrics(d, lambda lines: "".join(
        lines[:6] + [lines[6].replace("\"loss\": ", "\"loss\": 1")] + lines[7:])),
    "torn last row": lambda d: _rewrite_metrics(d, lambda lines: "".join(lines) + "{\"step\": 13, \"lo"),
    "newest checkpoint truncated": lambda d: _garble_checkpoint(d, 10, "truncate"),
    "newest checkpoint garbled": lambda d: _garble_checkpoint(d, 10, "garble"),
    "every checkpoint garbled": lambda d: [_garble_checkpoint(d, s, "garble") for s in (5, 10)],
    "unfinished orbax folder": lambda d: (d / "checkpoints" / "15.orbax-checkpoint-tmp-1").mkdir(),
}


@pytest.mark.slow
def test_resume_recovers_exactly_from_damage(runs, capsys):
    full, killed_copy = runs
    for case, damage in RECOVERED.items():
        run_dir = killed_copy()
        damage(run_dir)
        result = resume_run(run_dir)
        assert result.status == "done", (case, result["message"])
        assert _metrics_text(run_dir) == _metrics_text(full.run_dir), case
        assert result.summary == full.summary, case
        assert not list((run_dir / "checkpoints").glob("*orbax-checkpoint-tmp*")), case
        out = capsys.readouterr().out
        assert "resumed a run that was interrupted" in out, case
        if "checkpoint" in case and "orbax" not in case:
            assert "is damaged" in out and (run_dir / "damaged_checkpoints").is_dir(), case
        if case.startswith("metrics"):
            assert "rebuilt its 10 rows from the checkpoint" in out, case
    assert len(RECOVERED) == 11


REFUSED = {
    "config.json garbage": (lambda d: (d / "config.json").write_text("{not json"), "is not valid JSON"),
    "config.json empty": (lambda d: (d / "config.json").write_text(""), "config.json is empty"),
    "config.json edited": (lambda d: (d / "config.json").write_text(
        (d / "config.json").read_text().replace('"steps": 20', '"steps": 40')),
        "config.json was changed after the run started"),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_resume_refuses_a_changed_or_unreadable_config(runs, capsys, case):
    _, killed_copy = runs
    run_dir = killed_copy()
    damage, message = REFUSED[case]
    damage(run_dir)
    before = _metrics_text(run_dir)
    assert cli.main(["run", "--resume", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert _metrics_text(run_dir) == before  # history untouched
    status = json.loads((run_dir / "status.json").read_text())
    assert status["status"] == "failed" and message in status["message"]
    assert not is_locked(run_dir)


def test_second_writer_is_refused_and_a_dead_owner_is_interrupted(runs, capsys):
    full, killed_copy = runs
    run_dir = killed_copy()
    # The kill left status "running" and a lock file whose owner is gone: interrupted, not running.
    (run_dir / ".lock").write_text("999999999 elsewhere 2026-01-01T00:00:00Z\n")
    assert run_status(run_dir)["status"] == "interrupted"
    assert cli.main(["list", "--runs", str(run_dir.parents[1])]) == 0
    assert "interrupted" in capsys.readouterr().out

    before = _metrics_text(run_dir)
    with RunLock(run_dir) as owner:  # a live writer (this process, through another open file)
        assert owner.stale_owner.startswith("999999999")
        assert run_status(run_dir)["status"] == "running"
        with pytest.raises(ConfigError, match=rf"is in use by process {os.getpid()} on "):
            resume_run(run_dir)
        assert _metrics_text(run_dir) == before
    result = resume_run(run_dir)  # the lock is free again
    assert result.status == "done" and _metrics_text(run_dir) == _metrics_text(full.run_dir)
    assert not is_locked(run_dir) and run_status(run_dir)["status"] == "done"


def test_diverged_run_writes_summary_and_figure_from_kept_rows(toy_project, tmp_path):
    result = start_run(_load(toy_project, "lr=1e10"), tmp_path)
    assert result.status == "diverged" and result.exit_code == 3
    records = metrics_lib.read_metrics(result.run_dir / "metrics.jsonl")
    assert [r["step"] for r in records] == [1, 2]
    summary = json.loads((result.run_dir / "summary.json").read_text())
    assert summary["diverged"] is True and summary["diverged_step"] == 2
    assert summary["diverged_metric"] == "loss"
    assert summary["last_finite"]["loss"] == records[0]["loss"]
    assert (result.run_dir / "figures" / "diverged.png").stat().st_size > 1000


def _enospc(path):
    return OSError(errno.ENOSPC, "No space left on device", path)


def test_disk_full_while_logging_is_one_line_and_status_failed(toy_project, tmp_path, monkeypatch, capsys):
    real_init, real_write, fds, calls = metrics_lib.MetricsWriter.__init__, os.write, [], []

    def init(self, path):
        real_init(self, path)
        fds.append(self._fd)

    def write(fd, data):  # the third record: a partial write, then the disk is full (errno, no name)
        if fd not in fds:
            return real_write(fd, data)
        calls.append(len(data))
        if len(calls) == 3:
            return real_write(fd, bytes(data[:10]))
        if len(calls) > 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", write)
    monkeypatch.setattr(metrics_lib.MetricsWriter, "__init__", init)
    monkeypatch.chdir(toy_project)
    assert cli.main(["run", "configs/toy.py", "--workdir", str(tmp_path)]) == 1
    out, err = capsys.readouterr()
    (run_dir,) = (tmp_path / "toy").iterdir()
    status = json.loads((run_dir / "status.json").read_text())
    assert status["status"] == "failed" and "traceback" not in status
    assert status["message"].startswith(f"disk full: could not write {run_dir / 'metrics.jsonl'} (")
    assert " free of " in status["message"]
    assert out.strip().splitlines()[-1] == f"failed: {run_dir} ({status['message']})"
    assert [r["step"] for r in metrics_lib.read_metrics_checked(run_dir / "metrics.jsonl")[0]] == [1, 2]
    assert metrics_lib.read_metrics_checked(run_dir / "metrics.jsonl")[1] == 0  # no torn line kept
    assert "Traceback" not in err and not err


def test_disk_full_in_a_checkpoint_removes_orbax_temporaries(toy_project, tmp_path, monkeypatch):
    import orbax.checkpoint as ocp

    def save(self, step, *args, **kwargs):
        tmp = self.directory / f"{step}.orbax-checkpoint-tmp-1234"
        tmp.mkdir(parents=True)
        raise ValueError("Error writing local file: No space left on device [OS error: 28]")

    monkeypatch.setattr(ocp.CheckpointManager, "save", save)
    result = start_run(_load(toy_project), tmp_path)
    assert result.status == "failed"
    assert result["message"].startswith(f"disk full: could not write {result.run_dir / 'checkpoints' / '5'}")
    assert not list((result.run_dir / "checkpoints").glob("*tmp*"))
    assert not is_locked(result.run_dir)


def test_disk_full_before_the_run_starts(toy_project, tmp_path, monkeypatch, capsys):
    real = metrics_lib.atomic_write_text

    def atomic_write_text(path, text):
        if str(path).endswith("env.json"):
            raise _enospc(str(path))
        real(path, text)

    monkeypatch.setattr(metrics_lib, "atomic_write_text", atomic_write_text)
    monkeypatch.chdir(toy_project)
    assert cli.main(["run", "configs/toy.py", "--workdir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("jaxopt-lab: error: disk full: could not write ") and "env.json" in err
    assert err.count("\n") == 1
