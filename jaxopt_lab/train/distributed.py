"""Several hosts: join this process to a ``jax.distributed`` job before any device is touched."""

from __future__ import annotations

import socket
import time
from typing import Optional

import jax

from jaxopt_lab.lab.config import ConfigError

__all__ = ["initialize"]


def initialize(coordinator_address: Optional[str] = None, num_processes: Optional[int] = None,
               process_id: Optional[int] = None, timeout_s: int = 60) -> None:
    """``jax.distributed.initialize`` with a clear failure.

    With all arguments None, JAX detects the cluster (SLURM, TPU pods, MPI, ...); otherwise pass all of
    ``coordinator_address`` ("host:port" of process 0), ``num_processes`` and ``process_id``. Raises
    ``ConfigError`` (one line) when the arguments are incomplete or out of range, when no cluster is
    detected, or when a process other than 0 cannot reach the coordinator within ``timeout_s`` seconds —
    never hangs. (Process 0 runs the coordinator; if the others do not join within ``timeout_s`` seconds,
    XLA ends it with its own fatal error: a non-zero exit, not a hang.)
    After it, ``jax.devices()`` lists every process's devices and ``jax.process_index()`` is this one's.
    """
    given = {"coordinator_address": coordinator_address, "num_processes": num_processes,
             "process_id": process_id}
    if any(v is not None for v in given.values()) and any(v is None for v in given.values()):
        missing = [k for k, v in given.items() if v is None]
        raise ConfigError(f"--distributed: {', '.join(missing)} missing; give all of coordinator address, "
                          f"number of processes and process id, or none (cluster auto-detection)")
    if num_processes is not None and (num_processes < 1 or not 0 <= process_id < num_processes):
        raise ConfigError(f"--distributed: process id {process_id} with {num_processes} processes: "
                          f"need num_processes >= 1 and 0 <= process_id < num_processes")
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, int) or timeout_s < 1:
        raise ConfigError(f"--distributed: timeout_s = {timeout_s!r}: must be an integer >= 1 (seconds)")
    if jax.distributed.is_initialized():
        return
    if coordinator_address is None:
        coordinator_address, num_processes, process_id = _detect_cluster(timeout_s)
        if coordinator_address is None:
            raise ConfigError("--distributed: no cluster detected (SLURM, TPU pod, MPI, ...); give "
                              "--coordinator HOST:PORT, --num-processes N and --process-id I")
    if coordinator_address is not None and process_id not in (None, 0):
        # XLA's client ends the whole process (a fatal log, not an exception) when its registration times
        # out, so first make sure, from Python, that the coordinator listens.
        _wait_for(coordinator_address, timeout_s)
    try:
        jax.distributed.initialize(coordinator_address, num_processes, process_id,
                                   initialization_timeout=timeout_s)
    except (RuntimeError, ValueError) as e:  # XlaRuntimeError is a RuntimeError
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        where = coordinator_address or "auto-detected cluster"
        raise ConfigError(f"--distributed: could not join the job at {where} within {timeout_s} s "
                          f"({reason[:200]})") from None


def _detect_cluster(timeout_s: int):
    """(coordinator address, number of processes, process id) from the cluster environment (SLURM, TPU,
    MPI, ...), all None where JAX detects no cluster."""
    try:
        from jax._src.clusters import ClusterEnv  # the detection jax.distributed.initialize runs itself

        address, n, i, _ = ClusterEnv.auto_detect_unset_distributed_params(None, None, None, None, None,
                                                                            timeout_s)
        return address, n, i
    except Exception:  # noqa: BLE001 -- no cluster (or a JAX without this helper): JAX reports it below
        return None, None, None


def _wait_for(address: str, timeout_s: int) -> None:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"--coordinator {address!r}: must be host:port")
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=1.0):
                return
        except OSError as e:
            if time.monotonic() >= deadline:
                raise ConfigError(f"--distributed: no coordinator listening at {address} after {timeout_s} s "
                                  f"({e.strerror or type(e).__name__}); start process 0 first or check the "
                                  f"address") from None
            time.sleep(0.5)
