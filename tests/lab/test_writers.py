"""Metric writers: TensorBoard event files and W&B offline runs are read back and match metrics.jsonl."""

import struct

import pytest

from jaxopt_lab.lab import cli
from jaxopt_lab.lab import config as config_lib
from jaxopt_lab.lab import metrics as metrics_lib
from jaxopt_lab.lab.run import resume_run, start_run


def _config(root, writers):
    text = (root / "configs" / "toy.py").read_text()
    text = text.replace("    return c", f"    c.logging = ml_collections.ConfigDict({{'writers': {writers!r}}})\n"
                                       f"    return c")
    (root / "configs" / "logged.py").write_text(text)
    return root / "configs" / "logged.py"


def read_tensorboard(run_dir):
    """``[(step, tag, value)]`` from the TFRecord event files (length, crc, Event proto, crc)."""
    from tensorboardX.proto import event_pb2

    out = []
    for path in sorted((run_dir / "tensorboard").glob("events.out.tfevents.*")):
        data, i = path.read_bytes(), 0
        while i < len(data):
            (n,) = struct.unpack("<Q", data[i:i + 8])
            event = event_pb2.Event()
            event.ParseFromString(data[i + 12:i + 12 + n])
            i += 12 + n + 4
            out += [(event.step, v.tag, v.simple_value) for v in event.summary.value]
    return out


def read_wandb_history(path):
    """History rows of a W&B ``.wandb`` file: a 7-byte W&B header, then LevelDB-log records of
    ``wandb_internal_pb2.Record`` (checksum 4, length 2, type 1: full / first / middle / last)."""
    from wandb.proto import wandb_internal_pb2

    data, pos, records, partial = path.read_bytes(), 7, [], b""
    while pos + 7 <= len(data):
        if 32768 - pos % 32768 < 7:  # a block's tail too short for a header is padding
            pos += 32768 - pos % 32768
            continue
        length, kind = int.from_bytes(data[pos + 4:pos + 6], "little"), data[pos + 6]
        chunk, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        if kind == 1:
            records.append(chunk)
        elif kind in (2, 3):
            partial = (b"" if kind == 2 else partial) + chunk
        elif kind == 4:
            records.append(partial + chunk)
    rows = []
    for raw in records:
        record = wandb_internal_pb2.Record()
        record.ParseFromString(raw)
        if record.WhichOneof("record_type") == "history":
            rows.append({item.key or ".".join(item.nested_key): item.value_json
                         for item in record.history.item})
    return rows


def test_tensorboard_events_match_metrics_and_resume_purges_replayed_steps(toy_project, tmp_path):
    pytest.importorskip("tensorboardX")
    path = _config(toy_project, ("jsonl", "tensorboard"))
    cfg = config_lib.load_config(path, ["fail_at_step=13"])
    crashed = start_run(cfg, tmp_path)
    assert crashed.status == "failed"
    assert [s for s, tag, _ in read_tensorboard(crashed.run_dir)] == list(range(1, 13))
    # resume the same directory as if it had been killed (checkpoint at 10, steps 11-12 replayed)
    full_cfg = config_lib.load_config(path)
    run_dir = crashed.run_dir.with_name(crashed.run_dir.name.split("-")[0] + "-"
                                        + config_lib.config_hash(full_cfg))
    crashed.run_dir.rename(run_dir)
    (run_dir / "config.json").write_text(config_lib.config_to_json(full_cfg))
    assert resume_run(run_dir).status == "done"
    events = read_tensorboard(run_dir)
    records = metrics_lib.read_metrics(run_dir / "metrics.jsonl")
    latest = {}
    for step, tag, value in events:  # TensorBoard shows the last event of a step after a purge
        latest[(step, tag)] = value
    assert sorted(latest) == [(r["step"], "loss") for r in records]
    for r in records:
        assert latest[(r["step"], "loss")] == pytest.approx(r["loss"], rel=1e-6)


@pytest.mark.slow  # W&B starts a service process
def test_wandb_offline_history_matches_metrics(toy_project, tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_SILENT", "true")
    result = start_run(config_lib.load_config(_config(toy_project, ("jsonl", "wandb"))), tmp_path)
    assert result.status == "done", result["message"]
    (wandb_file,) = (result.run_dir / "wandb").glob("offline-run-*/*.wandb")
    rows = read_wandb_history(wandb_file)
    records = metrics_lib.read_metrics(result.run_dir / "metrics.jsonl")
    assert [int(r["_step"]) for r in rows] == [r["step"] for r in records]
    assert [float(r["loss"]) for r in rows] == pytest.approx([r["loss"] for r in records], rel=1e-12)


def test_unknown_or_missing_writer_is_a_config_error(toy_project, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(toy_project)
    _config(toy_project, ("jsonl", "mlflow"))
    assert cli.main(["run", "configs/logged.py", "--workdir", str(tmp_path / "runs")]) == 2
    assert "config key 'logging.writers' = ('jsonl', 'mlflow'): must hold only 'jsonl', 'tensorboard', " \
           "'wandb'" in capsys.readouterr().err
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "tensorboardX" else real(n, *a))
    _config(toy_project, ("tensorboard",))
    assert cli.main(["run", "configs/logged.py", "--workdir", str(tmp_path / "runs")]) == 2
    assert "'tensorboard' needs tensorboardX; pip install 'jaxopt-lab[tensorboard]'" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_writers_can_be_chosen_with_set_on_any_config_and_a_missing_library_is_refused_before_jax(monkeypatch):
    from jaxopt_lab.lab.project import project_root

    quickstart = project_root() / "configs" / "quickstart.py"
    cfg = config_lib.load_config(quickstart, ["logging.writers=jsonl,tensorboard"])
    assert tuple(cfg.logging.writers) == ("jsonl", "tensorboard")
    assert "logging" not in config_lib.load_config(quickstart)  # nothing added unasked

    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tensorboardX" else real(name, *a))
    with pytest.raises(config_lib.ConfigError, match=r"needs tensorboardX; pip install 'jaxopt-lab\[tensorboard\]'"):
        config_lib.load_config(quickstart, ["logging.writers=tensorboard"])
