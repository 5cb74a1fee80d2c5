"""Checkpoints of a run's state pytree, on orbax (``checkpoints/<step>/``).

Each checkpoint holds two orbax items: ``state`` (the pytree) and ``metrics`` (the text of ``metrics.jsonl`` up
to that step), so a resumed run can verify ``metrics.jsonl`` against the checkpoint and rebuild
rows that were lost or garbled. Saves are synchronous: ``save`` returns once the step is on disk, so a
kill after it can always resume from it. orbax writes each step to a temporary directory and renames it
when complete, so a kill during a save leaves the previous step as the latest; a checkpoint damaged
later (truncated or garbled files) is found by :meth:`Checkpointer.newest_intact` and moved aside.
"""

from __future__ import annotations

import errno
import logging
import pathlib
import shutil
from typing import Any, Optional

import jax
import orbax.checkpoint as ocp

from .metrics import is_disk_full

__all__ = ["Checkpointer"]

_TMP_GLOB = "*.orbax-checkpoint-tmp*"


def _replicated():
    import numpy as np
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    return NamedSharding(Mesh(np.asarray(jax.devices()), ("all",)), PartitionSpec())


def _is_host_local(x: Any) -> bool:
    return isinstance(x, jax.Array) and x.is_fully_addressable


def _to_global(tree: Any) -> Any:
    """On several hosts, orbax saves only global arrays: a host-local leaf (identical on every host, as
    an unsharded experiment's state is) becomes a replicated global array. One host: unchanged."""
    if jax.process_count() == 1:
        return tree
    import numpy as np

    sharding = _replicated()

    def convert(x):
        if not _is_host_local(x):
            return x
        host = np.asarray(x)
        return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])

    return jax.tree.map(convert, tree)


def _to_local(tree: Any, template: Any) -> Any:
    """The inverse of :func:`_to_global` for the leaves that were host-local in ``template``."""
    if jax.process_count() == 1:
        return tree
    return jax.tree.map(lambda x, t: jax.device_put(x.addressable_data(0), t.sharding)
                        if _is_host_local(t) else x, tree, template)


class _HeldLogs(logging.Filter):
    """Holds what orbax logs (through absl) during a save; passes it on afterwards unless dropped."""

    def __init__(self):
        super().__init__()
        self.records, self.logger = [], logging.getLogger("absl")

    def filter(self, record):
        self.records.append(record)
        return False

    def drop(self):
        self.records = []

    def __enter__(self):
        self.logger.addFilter(self)
        return self

    def __exit__(self, *exc):
        self.logger.removeFilter(self)
        for record in self.records:
            self.logger.handle(record)


class Checkpointer:
    """A thin wrapper over ``orbax.checkpoint.CheckpointManager`` for one run directory."""

    def __init__(self, directory: pathlib.Path, max_to_keep: int = 2):
        self.directory = pathlib.Path(directory).resolve()
        self._manager = None
        self._max_to_keep = max_to_keep

    @property
    def manager(self) -> ocp.CheckpointManager:
        if self._manager is None:  # orbax is created lazily: runs without checkpoints never touch it
            options = ocp.CheckpointManagerOptions(max_to_keep=self._max_to_keep, create=True,
                                                   enable_async_checkpointing=False)
            self._manager = ocp.CheckpointManager(self.directory, options=options,
                                                  item_names=("state", "metrics"))
        return self._manager

    def steps(self) -> list[int]:
        if not self.directory.exists():
            return []
        return sorted(int(p.name) for p in self.directory.iterdir() if p.is_dir() and p.name.isdigit())

    def latest_step(self) -> Optional[int]:
        steps = self.steps()
        return steps[-1] if steps else None

    def save(self, step: int, state: Any, metrics: str = "") -> None:
        """Save ``state`` and ``metrics`` (the text of ``metrics.jsonl`` up to ``step``) as ``step``."""
        # Wrapped in a dict: orbax's standard handler refuses a bare array as the whole tree.
        with _HeldLogs() as held:
            try:
                self.manager.save(step, args=ocp.args.Composite(
                    state=ocp.args.StandardSave({"state": _to_global(state)}),
                    metrics=ocp.args.JsonSave({"jsonl": metrics})), force=True)
                self.manager.wait_until_finished()
            except Exception as e:
                self.remove_temporaries()
                if is_disk_full(e):
                    held.drop()  # orbax's worker threads log the same failure with their tracebacks
                    raise OSError(errno.ENOSPC, "No space left on device",
                                  str(self.directory / str(step))) from e
                raise

    def restore(self, template: Any, step: Optional[int] = None) -> Optional[tuple[int, Any]]:
        step = self.latest_step() if step is None else step
        if step is None:
            return None
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, {"state": _to_global(template)})
        restored = self.manager.restore(step, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract)))
        return step, _to_local(restored["state"]["state"], template)

    def metrics(self, step: int) -> Optional[str]:
        """The ``metrics.jsonl`` text stored with checkpoint ``step`` (None for one without it)."""
        if not (self.directory / str(step) / "metrics").exists():
            return None
        restored = self.manager.restore(step, args=ocp.args.Composite(metrics=ocp.args.JsonRestore()))
        return str(restored["metrics"]["jsonl"])

    def newest_intact(self, quarantine: pathlib.Path) -> tuple[Optional[int], list]:
        """The newest checkpoint that restores completely; damaged newer ones are moved to ``quarantine``.

        Returns ``(step or None, [(step, reason), ...] moved aside)``.
        """
        moved = []
        for step in reversed(self.steps()):
            try:
                self.metrics(step)
                # read every array back: a truncated or garbled file fails here
                self.manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore()))
                return step, moved
            except Exception as e:  # noqa: BLE001 -- any failure to read it back means damaged
                quarantine.mkdir(parents=True, exist_ok=True)
                target = quarantine / str(step)
                if target.exists():
                    shutil.rmtree(target)
                shutil.move(str(self.directory / str(step)), target)
                moved.append((step, f"{type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''}"))
                self._reset()
        return None, moved

    def remove_temporaries(self) -> list[pathlib.Path]:
        """Delete orbax's temporary folders left by an interrupted or failed save."""
        found = list(self.directory.glob(_TMP_GLOB)) if self.directory.exists() else []
        for path in found:
            shutil.rmtree(path, ignore_errors=True)
        return found

    def _reset(self) -> None:
        if self._manager is not None:
            self._manager.close()
            self._manager = None

    def close(self) -> None:
        self._reset()
