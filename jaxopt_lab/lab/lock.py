"""One writer per run directory: an advisory lock file ``.lock`` holding the owner's pid.

The lock is an ``fcntl.flock`` on ``<run_dir>/.lock``, held for as long as the owning process runs; the
kernel releases it when that process exits or is killed, so a lock left behind by a dead owner is
recognised as stale without guessing from pids (which the system reuses). The file's content
(``pid host started``) only names the owner in messages.
"""

from __future__ import annotations

import datetime
import fcntl
import os
import pathlib
import socket
from typing import Optional, Union

from .config import ConfigError

__all__ = ["RunLock", "owner", "is_locked", "effective_status"]

LOCK_NAME = ".lock"


def _try_flock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def owner(run_dir: Union[str, pathlib.Path]) -> str:
    """The lock file's ``pid host started`` text (empty if there is none)."""
    try:
        return (pathlib.Path(run_dir) / LOCK_NAME).read_text().strip()
    except OSError:
        return ""


def is_locked(run_dir: Union[str, pathlib.Path]) -> bool:
    """Whether a live process holds ``run_dir``'s lock (a dead owner's lock is not held)."""
    path = pathlib.Path(run_dir) / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        if _try_flock(fd):
            fcntl.flock(fd, fcntl.LOCK_UN)
            return False
        return True
    finally:
        os.close(fd)


class RunLock:
    """Exclusive ownership of a run directory; ``acquire`` refuses (``ConfigError``) a live owner."""

    def __init__(self, run_dir: Union[str, pathlib.Path]):
        self.path = pathlib.Path(run_dir) / LOCK_NAME
        self._fd: Optional[int] = None
        self.stale_owner = ""  # the owner text of a dead process's lock taken over, if any

    def acquire(self) -> "RunLock":
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        if not _try_flock(fd):
            os.close(fd)
            who = owner(self.path.parent) or "another process"
            raise ConfigError(f"run directory {str(self.path.parent)!r} is in use by {_describe(who)}; "
                              f"wait for it to finish or stop it first")
        self.stale_owner = os.read(fd, 256).decode(errors="replace").strip()
        started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        os.lseek(fd, 0, os.SEEK_SET)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {socket.gethostname()} {started}\n".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            try:
                os.ftruncate(self._fd, 0)
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            finally:
                os.close(self._fd)
                self._fd = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _describe(who: str) -> str:
    parts = who.split()
    if len(parts) >= 3:
        return f"process {parts[0]} on {parts[1]} (since {parts[2]})"
    return who


def effective_status(run_dir: Union[str, pathlib.Path]) -> dict:
    """``status.json`` of ``run_dir``, with ``running`` turned into ``interrupted`` when no live process
    holds the directory's lock (its owner was killed)."""
    import json

    path = pathlib.Path(run_dir) / "status.json"
    try:
        status = json.loads(path.read_text()) if path.exists() else {}
    except (ValueError, OSError):
        status = {"status": "unknown", "message": "status.json is unreadable"}
    if not isinstance(status, dict):
        status = {"status": "unknown", "message": "status.json is unreadable"}
    if status.get("status") == "running" and not is_locked(run_dir):
        status = {**status, "status": "interrupted",
                  "message": "its process is gone and left no final status (killed, or the disk was full)"}
    return status
