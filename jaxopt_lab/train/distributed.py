"""Several hosts: join this process to a ``jax.distributed`` job before any device is touched."""

from __future__ import annotations

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
    detected, or when the coordinator cannot be reached within ``timeout_s`` seconds — never hangs.
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
    try:
        jax.distributed.initialize(coordinator_address, num_processes, process_id,
                                   initialization_timeout=timeout_s)
    except (RuntimeError, ValueError) as e:  # XlaRuntimeError is a RuntimeError
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        where = coordinator_address or "auto-detected cluster"
        raise ConfigError(f"--distributed: could not join the job at {where} within {timeout_s} s "
                          f"({reason[:200]})") from None
