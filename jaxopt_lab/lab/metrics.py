"""Files of a run directory: atomic JSON writes and the append-only ``metrics.jsonl``.

Every JSON file is written to a temporary name in the same directory and renamed over the target, so a
reader (or a run killed mid-write) never sees a half-written file. Metrics are one JSON record per line,
flushed and fsynced per record; on resume, :func:`truncate_after` drops records past the last
checkpoint (and a torn last line, should the kill have landed mid-write).
"""

from __future__ import annotations

import errno
import json
import math
import os
import pathlib
import shutil
from typing import Any, Mapping, Optional, Union

import numpy as np

__all__ = ["atomic_write_text", "atomic_write_json", "read_json", "to_scalar", "MetricsWriter",
           "read_metrics", "read_metrics_checked", "encode_records",
           "truncate_after", "is_disk_full", "disk_full_message"]

PathLike = Union[str, pathlib.Path]


def atomic_write_text(path: PathLike, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file and a rename; on failure (e.g. a full disk) the
    temporary file is removed and the ``OSError`` names ``path``."""
    path = pathlib.Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise OSError(e.errno, e.strerror, str(path)) from e


def _json_default(value):
    if isinstance(value, (np.generic, np.ndarray)) or hasattr(value, "__array__"):
        arr = np.asarray(value)
        return arr.item() if arr.ndim == 0 else arr.tolist()
    if isinstance(value, (set, tuple)):
        return list(value)
    if isinstance(value, pathlib.Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def atomic_write_json(path: PathLike, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def read_json(path: PathLike, default: Any = None) -> Any:
    path = pathlib.Path(path)
    if not path.exists():
        return default
    return json.loads(path.read_text())


def to_scalar(value: Any) -> Union[float, int, bool, str, None]:
    """A Python scalar from a JAX/numpy scalar (blocking on the device value)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    arr = np.asarray(value)
    if arr.ndim != 0:
        raise ValueError(f"expected a scalar, got an array of shape {arr.shape}")
    return arr.item()


def _encode(record: Mapping[str, Any]) -> str:
    # NaN/inf are kept (a diverged run must keep its last, non-finite metric) as JSON's NaN/Infinity,
    # which Python's json reads back.
    return json.dumps(dict(record), sort_keys=False, default=_json_default)


class MetricsWriter:
    """Appends one JSON record per line to ``metrics.jsonl``; written unbuffered and fsynced per record.

    A record that cannot be written whole (a full disk) is cut off again, so the file never keeps a
    torn line, and the ``OSError`` names the file.
    """

    def __init__(self, path: PathLike):
        self.path = pathlib.Path(path)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def write(self, record: Mapping[str, Any]) -> None:
        data = (_encode(record) + "\n").encode()
        start = os.lseek(self._fd, 0, os.SEEK_END)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view):]
            os.fsync(self._fd)
        except OSError as e:
            try:
                os.ftruncate(self._fd, start)
            except OSError:
                pass
            raise OSError(e.errno, e.strerror, str(self.path)) from e

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def read_metrics(path: PathLike) -> list[dict]:
    """All complete records of a metrics file (a torn last line is ignored)."""
    path = pathlib.Path(path)
    if not path.exists():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return records


def read_metrics_checked(path: PathLike) -> tuple[list[dict], int]:
    """``(records, n_bad)``: the records that parse, and how many lines do not (a torn or garbled line,
    anywhere in the file)."""
    path = pathlib.Path(path)
    if not path.exists():
        return [], 0
    records, bad = [], 0
    for line in path.read_bytes().decode(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            bad += 1
            continue
        if isinstance(record, dict) and isinstance(record.get("step"), int):
            records.append(record)
        else:
            bad += 1
    return records, bad


def encode_records(records) -> str:
    return "".join(_encode(r) + "\n" for r in records)


def truncate_after(path: PathLike, step: Optional[int]) -> int:
    """Keep only complete records with ``record["step"] <= step`` (none if ``step`` is None).

    Returns the number of records kept.
    """
    kept = [r for r in read_metrics(path) if step is not None and r.get("step", -1) <= step]
    atomic_write_text(path, "".join(_encode(r) + "\n" for r in kept))
    return len(kept)


def is_finite(value: Any) -> bool:
    return not isinstance(value, float) or math.isfinite(value)


def is_disk_full(error: BaseException) -> bool:
    """Whether ``error`` (or an error it was raised from) is ENOSPC / "No space left on device"."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if getattr(error, "errno", None) == errno.ENOSPC or "No space left on device" in str(error):
            return True
        error = error.__cause__ or error.__context__
    return False


def disk_full_message(error: BaseException) -> str:
    """One line: which file could not be written and how much space is left there."""
    path = None
    e = error
    while e is not None and path is None:
        path = getattr(e, "filename", None)
        e = e.__cause__
    where = pathlib.Path(path) if path else pathlib.Path.cwd()
    probe = where
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        usage = shutil.disk_usage(probe)
        space = f"{_bytes(usage.free)} free of {_bytes(usage.total)}"
    except OSError:
        space = "free space unknown"
    return f"disk full: could not write {path or 'a file'} ({space})"


def _bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
