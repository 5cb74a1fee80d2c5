"""Metric writers: where ``ctx.log`` sends each record besides ``metrics.jsonl``.

A config chooses them with ``logging.writers`` (default ``("jsonl",)``)::

    cfg.logging = ml_collections.ConfigDict()
    cfg.logging.writers = ("jsonl", "tensorboard", "wandb")
    cfg.logging.wandb_project = "my-project"   # optional; default: the experiment's name
    cfg.logging.wandb_mode = "offline"          # optional; "online" needs a W&B login

``jsonl`` is always written (resume and the reproductions read it). ``tensorboard`` writes event files to
``<run_dir>/tensorboard/`` with tensorboardX (``pip install jaxopt-lab[tensorboard]``); on resume, events
after the checkpoint are purged so the curves match an uninterrupted run. ``wandb`` logs to Weights &
Biases (``pip install jaxopt-lab[wandb]``), offline by default, into ``<run_dir>/wandb/``. Each writer has
the same two methods, :meth:`Writer.write` and :meth:`Writer.close`.
"""

from __future__ import annotations

import importlib.util
import math
import pathlib
import time
from typing import Any, Mapping, Optional

from .config import ConfigError

__all__ = ["Writer", "KNOWN", "requested", "check", "make"]

# writer -> (module it needs, extra that installs it)
KNOWN = {"jsonl": (None, None), "tensorboard": ("tensorboardX", "tensorboard"), "wandb": ("wandb", "wandb")}


class Writer:
    """One destination for metrics records."""

    def write(self, step: int, scalars: Mapping[str, Any]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


def _numbers(scalars: Mapping[str, Any]) -> dict:
    return {k: float(v) for k, v in scalars.items()
            if k != "step" and isinstance(v, (int, float)) and not isinstance(v, bool)}


class TensorBoardWriter(Writer):
    def __init__(self, run_dir: pathlib.Path, resume_step: Optional[int]):
        from tensorboardX import SummaryWriter

        # purge_step drops events logged after the checkpoint by the interrupted run
        purge = None if resume_step is None else resume_step + 1
        # a unique suffix: a resume within the same second must not overwrite the first event file
        self._writer = SummaryWriter(logdir=str(run_dir / "tensorboard"), purge_step=purge,
                                     filename_suffix=f".{time.time_ns()}")

    def write(self, step, scalars):
        for key, value in _numbers(scalars).items():
            if math.isfinite(value):
                self._writer.add_scalar(key, value, global_step=int(step))
        self._writer.flush()

    def close(self):
        self._writer.close()


class WandbWriter(Writer):
    def __init__(self, run_dir: pathlib.Path, cfg, resumed: bool):
        import wandb

        logging_cfg = cfg.get("logging", {})
        self._run = wandb.init(
            project=logging_cfg.get("wandb_project") or cfg.experiment, name=run_dir.name,
            id=run_dir.name.replace(":", "-"), dir=str(run_dir), mode=logging_cfg.get("wandb_mode", "offline"),
            config=cfg.to_dict(), resume="allow" if resumed else None, reinit=True)

    def write(self, step, scalars):
        self._run.log(_numbers(scalars), step=int(step))

    def close(self):
        import wandb

        self._run.finish()
        wandb.teardown()  # waits until W&B's service has written the run's file completely


def requested(cfg) -> tuple:
    """The writers ``cfg`` asks for (``jsonl`` always included)."""
    logging_cfg = cfg.get("logging") or {}
    names = logging_cfg.get("writers", ("jsonl",))
    names = (names,) if isinstance(names, str) else tuple(names)
    return ("jsonl",) + tuple(n for n in names if n != "jsonl")


def check(cfg) -> None:
    """``ConfigError`` for an unknown writer or one whose library is not installed (before any work)."""
    writers = (cfg.get("logging") or {}).get("writers", ("jsonl",))
    for name in requested(cfg):
        if name not in KNOWN:
            raise ConfigError(f"config key 'logging.writers' = {writers!r}: must hold only "
                              f"{', '.join(map(repr, KNOWN))}")
        module, extra = KNOWN[name]
        if module is not None and importlib.util.find_spec(module) is None:
            raise ConfigError(f"config key 'logging.writers' = {writers!r}: {name!r} needs {module}; "
                              f"pip install 'jaxopt-lab[{extra}]'")
    mode = (cfg.get("logging") or {}).get("wandb_mode", "offline")
    if mode not in ("offline", "online", "disabled"):
        raise ConfigError(f"config key 'logging.wandb_mode' = {mode!r}: must be one of 'offline', "
                          f"'online', 'disabled'")


def make(cfg, run_dir: pathlib.Path, *, resumed: bool = False,
         resume_step: Optional[int] = None) -> list[Writer]:
    """The writers besides ``metrics.jsonl`` (which the Context writes itself)."""
    out = []
    for name in requested(cfg):
        if name == "tensorboard":
            out.append(TensorBoardWriter(run_dir, resume_step if resumed else None))
        elif name == "wandb":
            out.append(WandbWriter(run_dir, cfg, resumed))
    return out
