"""Run directories, the experiment ``Context``, status, divergence and resume.

A run of experiment ``E`` with config ``cfg`` lives in ``<workdir>/E/<UTC time>-<config hash>/``::

    config.json  env.json  status.json  metrics.jsonl  summary.json  figures/*.png  checkpoints/  .lock

``status.json`` says ``running``, ``done``, ``diverged`` (a logged value was not finite: the run stops at
that step, metrics kept, and a summary and a figure of the kept rows are written), ``failed`` (an
exception, or a full disk; its message is kept) or ``interrupted`` (Ctrl-C). A run whose status says
``running`` while no live process holds its lock was killed: :func:`run_status` reports it as
``interrupted``.

``resume_run(run_dir)`` takes the directory's lock (a second writer is refused), checks ``config.json``
against the hash in the directory's name, falls back past damaged checkpoints to the newest intact one,
checks ``metrics.jsonl`` against the copy stored in that checkpoint (rebuilding lost or garbled rows from
it) and drops the records logged after it, so a killed and resumed run ends with exactly the metrics of
an uninterrupted one -- or it stops with a one-line reason and continues nothing.

Only process 0 of a multi-host run (``jax.process_index() == 0``) writes the run directory's files;
every process takes part in orbax checkpoints.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import math
import os
import pathlib
import platform
import re
import shutil
import subprocess
import sys
import time
import traceback
from typing import Any, Iterator, Mapping, Optional, Union

import jax
import ml_collections

from . import config as config_lib
from . import metrics as metrics_lib
from . import writers as writers_lib
from .checkpoint import Checkpointer
from .lock import RunLock
from .lock import effective_status as run_status
from .metrics import disk_full_message, is_disk_full
from .project import load_experiment, project_root

__all__ = ["Context", "Diverged", "RunResult", "start_run", "resume_run", "execute", "run_status",
           "is_primary", "disk_full_message", "check_workdir", "EXIT_CODES"]

EXIT_CODES = {"done": 0, "failed": 1, "interrupted": 1, "config": 2, "diverged": 3}


def is_primary() -> bool:
    """Whether this process writes the run directory's files (process 0 of a multi-host run)."""
    return jax.process_index() == 0


class Diverged(RuntimeError):
    """Raised by :meth:`Context.log` when a logged value is not finite."""

    def __init__(self, step: int, key: str, value: float):
        super().__init__(f"diverged at step {step}: {key} = {value}")
        self.step, self.key, self.value = step, key, value


class RunResult(dict):
    """``{"run_dir", "status", "message", "summary"}`` of a finished run."""

    @property
    def run_dir(self) -> pathlib.Path:
        return pathlib.Path(self["run_dir"])

    @property
    def status(self) -> str:
        return self["status"]

    @property
    def summary(self) -> dict:
        return self["summary"]

    @property
    def exit_code(self) -> int:
        return EXIT_CODES.get(self["status"], 1)


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def _git_commit(root: pathlib.Path) -> Optional[str]:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                             timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def environment() -> dict:
    """Versions, devices and git commit: what ``env.json`` records."""
    versions = {}
    for package in ("jax", "jaxlib", "optax", "flax", "ott-jax", "orbax-checkpoint", "ml-collections",
                    "numpy", "jaxopt-lab"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    try:
        root = project_root()
    except config_lib.ConfigError:
        root = pathlib.Path.cwd()
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "versions": versions,
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "x64": bool(jax.config.jax_enable_x64),
        "git_commit": _git_commit(root),
        "argv": sys.argv,
    }


class _Progress:
    """A tqdm bar when stdout is a terminal; otherwise a plain line at the start ("compiling…"), then
    every 10% or 30 seconds."""

    def __init__(self, name: str, total: int, start: int = 0, stream=None):
        self.name, self.total = name, max(int(total), 1)
        self.stream = stream or sys.stdout
        self.started = time.perf_counter()
        self.last_step, self.last_print, self.last_fraction = start, self.started, start / self.total
        self.bar = None
        if self.stream.isatty():
            from tqdm import tqdm
            self.bar = tqdm(total=self.total, initial=start, desc=name, file=self.stream, leave=True,
                            postfix="compiling…")
        else:  # at once, so a run is never silent while the first chunk compiles
            print(f"[{name}] step {start}/{self.total} ({100 * start / self.total:.0f}%) compiling…",
                  file=self.stream, flush=True)

    def update(self, step: int, scalars: Mapping[str, Any]) -> None:
        shown = {k: v for k, v in scalars.items() if k != "step" and isinstance(v, (int, float))}
        if self.bar is not None:
            self.bar.update(max(step - self.last_step, 0))
            self.bar.set_postfix({k: f"{v:.4g}" for k, v in list(shown.items())[:4]}, refresh=False)
        else:
            now, fraction = time.perf_counter(), step / self.total
            if fraction - self.last_fraction >= 0.1 or now - self.last_print >= 30 or step >= self.total:
                values = " ".join(f"{k}={v:.4g}" for k, v in list(shown.items())[:6])
                print(f"[{self.name}] step {step}/{self.total} ({100 * fraction:.0f}%) {values} "
                      f"| {now - self.started:.1f}s", file=self.stream, flush=True)
                self.last_print, self.last_fraction = now, fraction
        self.last_step = step

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class Context:
    """What an experiment's ``run(cfg, ctx)`` uses to talk to its run directory.

    Attributes:
      run_dir: the run directory.
      key: ``jax.random.PRNGKey(cfg.seed)``.
      resumed: whether this run continues an earlier one.
    """

    def __init__(self, run_dir: Union[str, pathlib.Path], cfg: ml_collections.ConfigDict, *,
                 resumed: bool = False, stream=None, resume_step: Optional[int] = None):
        self.run_dir = pathlib.Path(run_dir)
        self.cfg = cfg
        self.key = jax.random.PRNGKey(cfg.seed)
        self.resumed = resumed
        self.primary = is_primary()
        self._records = metrics_lib.read_metrics(self.run_dir / "metrics.jsonl")  # as resume left it
        self._metrics, self._writers = None, []
        if self.primary:
            (self.run_dir / "figures").mkdir(parents=True, exist_ok=True)
            self._metrics = metrics_lib.MetricsWriter(self.run_dir / "metrics.jsonl")
            self._writers = writers_lib.make(cfg, self.run_dir, resumed=resumed, resume_step=resume_step)
        self._checkpointer = Checkpointer(self.run_dir / "checkpoints")
        self._progress: Optional[_Progress] = None
        self._stream = stream
        self._started, self._last_beat = time.perf_counter(), None
        self.last_step: Optional[int] = None

    # -- metrics ---------------------------------------------------------------------------------
    def log(self, step: int, **scalars: Any) -> None:
        """Append ``{"step": step, **scalars}`` to metrics.jsonl.

        A non-finite value is written too (the metrics are kept) and then stops the run with status
        ``diverged`` at this step.
        """
        record = {"step": int(step)}
        record.update({k: metrics_lib.to_scalar(v) for k, v in scalars.items()})
        if self._metrics is not None:
            self._metrics.write(record)
        for writer in self._writers:
            writer.write(int(step), record)
        self._records.append(record)
        self.last_step = int(step)
        if self._progress is not None:
            self._progress.update(int(step), record)
        elif self.primary:
            self._heartbeat(int(step))
        for key, value in record.items():
            if isinstance(value, float) and not math.isfinite(value):
                raise Diverged(int(step), key, value)

    def _heartbeat(self, step: int) -> None:
        """A run that declared no length (:meth:`progress`) still shows it is alive: a line at its first
        logged row and then at most every 10 seconds."""
        now = time.perf_counter()
        if self._last_beat is None or now - self._last_beat >= 10:
            print(f"[{self.run_dir.parent.name}] logged step {step} | {now - self._started:.1f}s",
                  file=self._stream or sys.stdout, flush=True)
            self._last_beat = now

    def metrics(self) -> list[dict]:
        """Every record logged so far in this run directory (across resumes)."""
        return [dict(r) for r in self._records]

    def progress(self, total: int, start: int = 0) -> None:
        """Declare the run's length; later ``log`` calls then drive a progress display."""
        if self._progress is not None:
            self._progress.close()
        if self.primary:
            self._progress = _Progress(self.run_dir.parent.name, total, start, self._stream)

    # -- state -----------------------------------------------------------------------------------
    def save_state(self, step: int, state: Any) -> None:
        """Checkpoint ``state`` as the state after ``step`` steps (log that step's metrics first)."""
        step = int(step)
        history = metrics_lib.encode_records(r for r in self._records if r["step"] <= step)
        self._checkpointer.save(step, state, history)

    def restore_state(self, template: Any) -> Optional[tuple[int, Any]]:
        """``(step, state)`` of the last checkpoint, shaped like ``template``; None if there is none."""
        return self._checkpointer.restore(template)

    # -- outputs ---------------------------------------------------------------------------------
    def figure(self, name: str, fig) -> pathlib.Path:
        """Save a matplotlib figure as ``figures/<name>.png`` (atomically) and close it."""
        import matplotlib.pyplot as plt

        path = self.run_dir / "figures" / f"{name}.png"
        if not self.primary:
            plt.close(fig)
            return path
        tmp = path.with_name(f".{path.stem}.tmp.png")
        try:
            fig.savefig(tmp, dpi=110, bbox_inches="tight")
            os.replace(tmp, path)
        except OSError as e:
            tmp.unlink(missing_ok=True)
            raise OSError(e.errno, e.strerror, str(path)) from e
        finally:
            plt.close(fig)
        return path

    def summary(self, **values: Any) -> dict:
        """Merge ``values`` into summary.json (written atomically); returns the whole summary."""
        path = self.run_dir / "summary.json"
        current = metrics_lib.read_json(path, {})
        current.update({k: _plain(v) for k, v in values.items()})
        if self.primary:
            metrics_lib.atomic_write_json(path, current)
        return current

    def close(self) -> None:
        if self._metrics is not None:
            self._metrics.close()
        for writer in self._writers:
            writer.close()
        self._checkpointer.close()
        if self._progress is not None:
            self._progress.close()


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "shape") and getattr(value, "ndim", 0) > 0:
        return [_plain(v) for v in value.tolist()]
    try:
        return metrics_lib.to_scalar(value)
    except (ValueError, TypeError):
        return str(value)


def _write_status(run_dir: pathlib.Path, status: str, message: str = "", **extra: Any) -> None:
    if is_primary():
        metrics_lib.atomic_write_json(run_dir / "status.json", {
            "status": status, "message": message, "updated": _now(), **extra})


def _try_write_status(run_dir: pathlib.Path, status: str, message: str = "", **extra: Any) -> bool:
    """``_write_status`` that reports instead of raising when the disk cannot take even that."""
    try:
        _write_status(run_dir, status, message, **extra)
        return True
    except OSError:
        return False


def check_workdir(workdir: Union[str, pathlib.Path]) -> pathlib.Path:
    """``ConfigError`` unless run directories can be created under ``workdir`` (before any work)."""
    workdir = pathlib.Path(workdir)
    existing = workdir
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        what = "is a file" if existing == workdir else f"is below {str(existing)!r}, which is a file"
        raise config_lib.ConfigError(f"--workdir {str(workdir)!r} {what}, not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise config_lib.ConfigError(f"--workdir {str(workdir)!r}: {str(existing)!r} is not writable")
    return workdir


def _new_run_dir(workdir: pathlib.Path, experiment: str, cfg_hash: str) -> pathlib.Path:
    check_workdir(workdir)
    base = workdir / experiment
    stamp = _shared(_now())
    if not is_primary():
        return base / f"{stamp}-{cfg_hash}"
    try:
        base.mkdir(parents=True, exist_ok=True)
        for i in range(1000):
            candidate = base / (f"{stamp}-{cfg_hash}" + (f"-{i}" if i else ""))
            try:
                candidate.mkdir()
                return candidate
            except FileExistsError:
                continue
    except OSError as e:
        if is_disk_full(e):
            raise
        raise config_lib.ConfigError(f"--workdir {str(workdir)!r}: cannot create a run directory "
                                     f"({e.strerror or e})") from None
    raise RuntimeError(f"cannot create a run directory under {base}")


def _shared(text: str) -> str:
    """``text`` as process 0 has it (so every host of a multi-host run names the same directory)."""
    if jax.process_count() == 1:
        return text
    import numpy as np
    from jax.experimental import multihost_utils

    codes = np.frombuffer(text.encode().ljust(64), dtype=np.uint8)
    return bytes(np.asarray(multihost_utils.broadcast_one_to_all(codes))).decode().strip()


def check_experiment(experiment, cfg: ml_collections.ConfigDict) -> None:
    """The experiment's ``CONFIG_SPEC``, its cross-key ``CONFIG_RULES`` and then its ``check_config(cfg)``
    (also the older name ``validate``), for the checks that need the import; a plain ``ValueError`` from
    those hooks is reported like a ``ConfigError``."""
    from .rules import check_rules

    config_lib.validate(cfg, getattr(experiment, "CONFIG_SPEC", {}))
    check_rules(cfg, getattr(experiment, "CONFIG_RULES", ()))
    writers_lib.check(cfg)
    hooks = [getattr(experiment, name, None) for name in ("check_config", "validate")]
    for i, fn in enumerate(hooks):
        if callable(fn) and fn not in hooks[:i]:  # `validate = check_config` runs once
            try:
                fn(cfg)
            except config_lib.ConfigError:
                raise
            except (ValueError, TypeError) as e:
                raise config_lib.ConfigError(f"experiment {cfg.experiment!r}: {e}") from None


def prepare(cfg: ml_collections.ConfigDict):
    """Validate ``cfg`` against its experiment (:func:`check_experiment`); returns the experiment."""
    experiment = load_experiment(cfg.experiment)
    check_experiment(experiment, cfg)
    return experiment


def _diverged_outputs(ctx: Context, error: Diverged) -> None:
    """A diverged run's summary (the last finite value of every metric, marked diverged) and a figure
    of the rows it kept."""
    records = ctx.metrics()
    last = {}
    for record in records:
        for key, value in record.items():
            if key != "step" and isinstance(value, (int, float)) and not isinstance(value, bool) \
                    and math.isfinite(value):
                last[key] = value
    ctx.summary(diverged=True, diverged_step=error.step, diverged_metric=error.key, last_finite=last)
    keys = [k for k in last if any(isinstance(r.get(k), (int, float)) for r in records)][:6]
    if not keys:
        return
    from . import plots

    fig, axes = plots.plt.subplots(len(keys), 1, figsize=(5.5, 2.2 * len(keys)), squeeze=False)
    for ax, key in zip(axes[:, 0], keys):
        steps, values = plots.metric_series(records, key)
        ax.plot(steps, values, marker="o" if len(steps) < 20 else None, ms=3)
        ax.axvline(error.step, color="red", ls="--", lw=1)
        ax.set_ylabel(key)
    axes[-1, 0].set_xlabel("step")
    axes[0, 0].set_title(f"diverged at step {error.step} ({error.key} = {error.value}); dashed: that step")
    fig.tight_layout()
    ctx.figure("diverged", fig)


def execute(experiment, cfg: ml_collections.ConfigDict, run_dir: pathlib.Path, *, resumed: bool,
            stream=None, note: str = "", resume_step: Optional[int] = None) -> RunResult:
    """Run ``experiment.run(cfg, ctx)`` in ``run_dir`` (whose lock the caller holds); record how it ended."""
    _write_status(run_dir, "running", note or ("resumed" if resumed else ""),
                  config_hash=config_lib.config_hash(cfg))
    try:
        ctx = Context(run_dir, cfg, resumed=resumed, stream=stream, resume_step=resume_step)
    except Exception as e:  # noqa: BLE001 -- e.g. a metric writer that cannot start
        message = disk_full_message(e) if is_disk_full(e) else f"{type(e).__name__}: {e}"
        _try_write_status(run_dir, "failed", message, traceback=traceback.format_exc())
        return RunResult(run_dir=str(run_dir), status="failed", message=message, summary={})
    status, message = "done", ""
    try:
        experiment.run(cfg, ctx)
    except Diverged as e:
        status, message = "diverged", str(e)
        try:
            _diverged_outputs(ctx, e)
        except OSError as err:
            message += f"; {disk_full_message(err) if is_disk_full(err) else err}"
        _try_write_status(run_dir, status, message, step=e.step)
    except KeyboardInterrupt:
        status, message = "interrupted", "interrupted (Ctrl-C)"
        _try_write_status(run_dir, status, message, step=ctx.last_step)
        raise
    except Exception as e:  # noqa: BLE001 -- recorded, then re-raised by the caller's choice
        status = "failed"
        if is_disk_full(e):
            ctx._checkpointer.remove_temporaries()
            message = disk_full_message(e)
            if not _try_write_status(run_dir, status, message, step=ctx.last_step):
                message += "; status.json could not be updated either"
        else:
            message = f"{type(e).__name__}: {e}"
            _try_write_status(run_dir, status, message, step=ctx.last_step,
                              traceback=traceback.format_exc())
    else:
        _write_status(run_dir, status, step=ctx.last_step)
    finally:
        ctx.close()
    summary = metrics_lib.read_json(run_dir / "summary.json", {}) if is_primary() else {}
    return RunResult(run_dir=str(run_dir), status=status, message=message, summary=summary)


def start_run(cfg: ml_collections.ConfigDict, workdir: Union[str, pathlib.Path] = "runs",
              stream=None) -> RunResult:
    """Complete ``cfg`` with its experiment's defaults (:func:`jaxopt_lab.lab.config.complete`), validate,
    create the run directory, run. ``ConfigError`` before any work if ``cfg`` is bad."""
    cfg = config_lib.complete(cfg)
    experiment = prepare(cfg)
    run_dir = _new_run_dir(pathlib.Path(workdir), cfg.experiment, config_lib.config_hash(cfg))
    lock = RunLock(run_dir).acquire() if is_primary() else None
    try:
        if is_primary():
            try:
                metrics_lib.atomic_write_text(run_dir / "config.json", config_lib.config_to_json(cfg) + "\n")
                metrics_lib.atomic_write_json(run_dir / "env.json", environment())
            except OSError as e:
                if is_disk_full(e):
                    _try_write_status(run_dir, "failed", disk_full_message(e))
                raise
        return execute(experiment, cfg, run_dir, resumed=False, stream=stream)
    finally:
        if lock is not None:
            lock.release()


_RUN_NAME = re.compile(r"^\d{8}T\d{6}Z-([0-9a-f]{8})(?:-\d+)?$")


def _read_config(run_dir: pathlib.Path) -> ml_collections.ConfigDict:
    path = run_dir / "config.json"
    text = path.read_text(errors="replace")
    if not text.strip():
        raise config_lib.ConfigError(f"cannot resume {str(run_dir)!r}: config.json is empty")
    try:
        cfg = config_lib.config_from_json(text)
    except (ValueError, TypeError) as e:
        raise config_lib.ConfigError(f"cannot resume {str(run_dir)!r}: config.json is not valid JSON "
                                     f"({e})") from None
    if not isinstance(cfg.get("experiment"), str):
        raise config_lib.ConfigError(f"cannot resume {str(run_dir)!r}: config.json names no experiment")
    match = _RUN_NAME.match(run_dir.name)
    if match and config_lib.config_hash(cfg) != match.group(1):
        raise config_lib.ConfigError(
            f"cannot resume {str(run_dir)!r}: config.json was changed after the run started (its hash is "
            f"{config_lib.config_hash(cfg)}, the directory's is {match.group(1)}); restore it, or start a "
            f"new run with the changed config")
    return cfg


def _recover_history(run_dir: pathlib.Path) -> tuple[Optional[int], list[str]]:
    """Pick the newest intact checkpoint and make ``metrics.jsonl`` exactly its history.

    Returns ``(step or None, notes)``; raises ``ConfigError`` when the metrics cannot be made exact.
    """
    notes = []
    checkpointer = Checkpointer(run_dir / "checkpoints")
    try:
        removed = checkpointer.remove_temporaries()
        if removed:
            notes.append(f"removed {len(removed)} unfinished checkpoint folder(s)")
        if jax.process_count() == 1:
            step, moved = checkpointer.newest_intact(run_dir / "damaged_checkpoints")
        else:  # several hosts: orbax restores jointly; damaged checkpoints are not moved by one host
            step, moved = checkpointer.latest_step(), []
        for bad, reason in moved:
            notes.append(f"checkpoint {bad} is damaged ({reason}); moved to damaged_checkpoints/")
        stored = checkpointer.metrics(step) if step is not None else ""
    finally:
        checkpointer.close()

    path = run_dir / "metrics.jsonl"
    have = path.read_bytes().decode(errors="replace") if path.exists() else ""
    if stored is None:  # a checkpoint without a copy of the metrics: the file must be sound up to it
        records, _ = metrics_lib.read_metrics_checked(path)
        intact = metrics_lib.read_metrics(path)  # stops at the first unreadable line
        kept = [r for r in intact if r["step"] <= step]
        if len(intact) != len(records) or not kept or [r["step"] for r in kept] != sorted(
                r["step"] for r in kept):
            raise config_lib.ConfigError(
                f"cannot resume {str(run_dir)!r}: metrics.jsonl is damaged and checkpoint {step} holds no "
                f"copy of the metrics to rebuild it from")
        stored = metrics_lib.encode_records(kept)
    if not have.startswith(stored):
        if path.exists():
            shutil.copyfile(path, run_dir / f"metrics.jsonl.damaged-{_now()}")
        notes.append(f"metrics.jsonl did not match checkpoint {step} (rows lost or garbled); rebuilt its "
                     f"{stored.count(chr(10))} rows from the checkpoint")
    if is_primary() and have != stored:
        metrics_lib.atomic_write_text(path, stored)
    return step, notes


def resume_run(run_dir: Union[str, pathlib.Path], stream=None) -> RunResult:
    """Continue ``run_dir`` from its newest intact checkpoint (from scratch if it has none).

    ``ConfigError`` (nothing changed but ``status.json``, which then says why) when the run directory is
    in use, its config was edited or unreadable, or its history cannot be recovered exactly.
    """
    run_dir = pathlib.Path(run_dir)
    if not (run_dir / "config.json").is_file():
        raise config_lib.ConfigError(f"--resume {str(run_dir)!r}: not a run directory (no config.json)")
    previous = run_status(run_dir)  # before taking the lock: a dead owner shows as interrupted
    lock = RunLock(run_dir).acquire() if is_primary() else None
    try:
        try:
            cfg = _read_config(run_dir)
            experiment = prepare(cfg)
            step, notes = _recover_history(run_dir)
        except config_lib.ConfigError as e:
            _try_write_status(run_dir, "failed", f"resume refused: {e}")
            raise
        was = previous.get("status", "unknown")
        note = f"resumed a run that was {was}, from " + (f"step {step}" if step is not None else
                                                          "the start (no intact checkpoint)")
        for line in [note, *notes]:
            if is_primary():
                print(f"[{run_dir.parent.name}] {line}", file=stream or sys.stdout, flush=True)
        return execute(experiment, cfg, run_dir, resumed=True, stream=stream,
                       note="; ".join([note, *notes]), resume_step=step)
    finally:
        if lock is not None:
            lock.release()
